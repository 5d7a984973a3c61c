"""Evidence list latency: p50/p95 of GET /api/v1/evidence/ (5,000 items, page size 50) next
to a trivial authenticated endpoint (GET /api/v1/people/me/) measured in the same run, and
the team overview (GET /api/v1/team/) of a manager with 200 reports on two levels.

    python benchmarks/evidence.py [--items 5000] [--requests 300] [--database-url URL]
        [--profile-to FILE]   # cProfile of extra evidence-list requests, after the timing

and the inbox of 2,000 imported candidates (GET /evidence/inbox/, the page, 25 rows with
their expectation pickers; and GET /api/v1/evidence/?status=candidate&q=…&sort=priority).

Targets: ratio (evidence p50 / trivial p50) ≤ 2; team overview p95 ≤ 3× the trivial p95;
inbox page and inbox API p95 ≤ 3× the trivial p95.
The data is made with the test suite's builders (tests/factories.py). Runs in-process
through Django's test client (the full middleware, auth, view, serializer and database
path; no network), against a fresh SQLite file by default or the database you name.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile-to", default="", help="write a cProfile of 300 list requests")
    parser.add_argument(
        "--profile-endpoint", default="evidence list", help='what --profile-to profiles: "team"'
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-evidence-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "ladder_tracker.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # the rate limit still runs (its cost is part of the latency) but is never reached
    os.environ.setdefault("API_THROTTLE_USER", "1000000/minute")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = ["*"]
    if connection.vendor == "postgresql":
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    from apps.evidence.models import Evidence, EvidenceLink
    from apps.ladders.models import Expectation, Skill
    from apps.ladders.services import ladder_load_file
    from tests.factories import PersonFactory, evidence_bulk_create

    version = ladder_load_file(
        path=ROOT / "fixtures/ladders/ai-ml-engineer.yaml", publish=True
    ).version
    person = PersonFactory(
        user__username="bench", name="Bench Mark", ladder=version.ladder, level=2
    )
    rng = random.Random(1)
    expectations = list(Expectation.objects.filter(version=version))
    skills = list(Skill.objects.filter(version=version))
    made = evidence_bulk_create(
        person,
        args.items,
        title="Evidence {i}",
        description="Did a thing **well**.",
        description_html="<p>Did a thing <strong>well</strong>.</p>",
        start=date(2025, 1, 1),
        spread_days=600,
    )
    ids = [e.pk for e in made]
    EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence_id=pk, expectation=exp, rationale="because")
        for pk in ids
        for exp in rng.sample(expectations, 2)
    )
    through = Evidence.skills.through
    through.objects.bulk_create(
        through(evidence_id=pk, skill_id=rng.choice(skills).pk) for pk in ids
    )

    # The inbox: imported candidates of the same person, each on its own work item, one in
    # three with two rule suggestions (the picker ticks them).
    from django.utils import timezone

    from servicenow.models import Connection, Source, WorkItem

    conn = Connection.objects.create(name="bench", instance_url="https://bench.service-now.com")
    source = Source.objects.create(connection=conn, name="incidents", table="incident")
    now = timezone.now()
    WorkItem.objects.bulk_create(
        WorkItem(
            connection=conn, source=source, table="incident", sys_id=f"{i:032x}",
            number=f"INC{i:07d}", short_description=f"Incident {i}", state=rng.choice("1267"),
            priority=str(rng.randint(1, 5)), sys_updated_on=now, person=person,
        )
        for i in range(args.candidates)
    )  # fmt: skip
    labels = {"1": "New", "2": "In Progress", "6": "Resolved", "7": "Closed"}
    candidates = Evidence.objects.bulk_create(
        Evidence(
            person=person, title=f"{wi.number}: {wi.short_description}",
            occurred_on=date(2025, 1, 1) + timedelta(days=i % 600), url="",
            source=Evidence.Source.SERVICENOW, status=Evidence.Status.CANDIDATE, work_item=wi,
            snapshot={"number": wi.number, "short_description": wi.short_description,
                      "state": wi.state, "priority": wi.priority, "table": "incident",
                      "url": wi.record_url,
                      "display": {"state": labels[wi.state]}},
        )
        for i, wi in enumerate(WorkItem.objects.filter(connection=conn).order_by("id"))
    )  # fmt: skip
    EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence=ev, expectation=exp, origin=EvidenceLink.Origin.SUGGESTED)
        for ev in candidates[::3]
        for exp in rng.sample(expectations, 2)
    )

    # A manager with 10 leads and 190 engineers below them, each with 8 linked items and a
    # packet in the current cycle for one in five: the overview reads all of it.
    from apps.packets.models import Packet, PacketItem
    from tests.factories import PromotionCycleFactory

    boss = PersonFactory(user__username="boss", name="Big Boss", ladder=version.ladder, level=5)
    leads = [
        PersonFactory(name=f"Lead {i}", manager=boss, ladder=version.ladder, level=4)
        for i in range(10)
    ]
    reports = [
        PersonFactory(name=f"Report {i}", manager=leads[i % 10], ladder=version.ladder, level=2)
        for i in range(190)
    ]
    cycle = PromotionCycleFactory()
    level3 = [e for e in expectations if e.level.number == 3]
    for i, report in enumerate(reports):
        items = evidence_bulk_create(report, 8, start=date(2026, 1, 1), spread_days=300)
        EvidenceLink.objects.bulk_create(
            EvidenceLink(evidence=item, expectation=exp)
            for item in items
            for exp in rng.sample(level3, 1)
        )
        if i % 5 == 0:
            packet = Packet.objects.create(
                person=report, cycle=cycle, ladder_version=version, from_level=2, target_level=3
            )
            PacketItem.objects.bulk_create(
                PacketItem(packet=packet, expectation=exp, evidence=items[n % 8], position=n)
                for n, exp in enumerate(level3[:5])
            )
    manager = Client()
    manager.force_login(boss.user)

    if connection.vendor == "postgresql":
        # What autovacuum does within a minute of a bulk load on a live server: statistics
        # for the planner and a visibility map for index-only counts.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    client = Client()
    client.force_login(person.user)
    targets = {
        "evidence list": "/api/v1/evidence/?page=1",
        "trivial (people/me)": "/api/v1/people/me/",
    }
    clients = {name: client for name in targets}
    targets["team overview (200)"] = "/api/v1/team/"
    clients["team overview (200)"] = manager
    inbox = {
        "inbox page (2000)": "/evidence/inbox/",
        "inbox page filtered": "/evidence/inbox/?q=INC00&state=6&sort=priority&page=2",
        "inbox API (2000)": "/api/v1/evidence/?status=candidate&q=INC00&sort=priority",
    }
    targets.update(inbox)
    clients.update({name: client for name in inbox})
    for name, path in targets.items():  # warm up caches, connections, imports
        for _ in range(10):
            assert clients[name].get(path).status_code == 200
    assert len(manager.get(targets["team overview (200)"]).json()) == 200
    timings: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.requests):
        for name, path in targets.items():  # interleaved: all see the same machine state
            t0 = time.perf_counter()
            response = clients[name].get(path)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
    if args.profile_to:
        import cProfile

        profiler = cProfile.Profile()
        name = next(n for n in targets if n.startswith(args.profile_endpoint))
        profiler.runcall(lambda: [clients[name].get(targets[name]) for _ in range(300)])
        profiler.dump_stats(args.profile_to)
    body = client.get(targets["evidence list"]).json()
    assert body["count"] == args.items + args.candidates and len(body["results"]) == 50
    inbox_page = client.get(targets["inbox page (2000)"]).content.decode()
    assert inbox_page.count('class="card inbox-item"') == 25
    assert f"{args.candidates} candidates" in inbox_page

    print(
        f"evidence benchmark: {args.items} items, page size 50, {args.requests} requests each,"
        f" {connection.vendor}, python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    print(f"{'endpoint':<24}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, values in timings.items():
        print(
            f"{name:<24}{percentile(values, 0.5):>10.2f}{percentile(values, 0.95):>10.2f}"
            f"{statistics.mean(values):>10.2f}"
        )
    ratio50 = percentile(timings["evidence list"], 0.5) / percentile(
        timings["trivial (people/me)"], 0.5
    )
    ratio95 = percentile(timings["evidence list"], 0.95) / percentile(
        timings["trivial (people/me)"], 0.95
    )
    verdict = "PASS" if ratio50 <= 2 else "MISS"
    print(
        f"ratio evidence/trivial: p50 {ratio50:.2f}, p95 {ratio95:.2f} (target p50 <= 2: {verdict})"
    )
    team95 = percentile(timings["team overview (200)"], 0.95) / percentile(
        timings["trivial (people/me)"], 0.95
    )
    verdict = "PASS" if team95 <= 3 else "MISS"
    print(f"ratio team overview/trivial: p95 {team95:.2f} (target <= 3: {verdict})")
    trivial95 = percentile(timings["trivial (people/me)"], 0.95)
    for name in inbox:
        ratio = percentile(timings[name], 0.95) / trivial95
        verdict = "PASS" if ratio <= 3 else "MISS"
        print(f"ratio {name}/trivial: p95 {ratio:.2f} (target <= 3: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
