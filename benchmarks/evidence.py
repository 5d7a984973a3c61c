"""Evidence list latency: p50/p95 of GET /api/v1/evidence/ (5,000 items, page size 50) next
to a trivial authenticated endpoint (GET /api/v1/people/me/) measured in the same run; the
inbox of 2,000 imported candidates (GET /evidence/inbox/, the page, 25 rows; a filtered
page 2; GET /api/v1/evidence/?status=candidate&q=…&sort=priority); the team overview
(GET /api/v1/team/ and the page /team/) of a manager with 200 reports on two levels; and
an empty page (/evidence/trash/), the floor of any page, for reference.

    python benchmarks/evidence.py [--items 5000] [--requests 100] [--rounds 3]
        [--database-url URL] [--keep-db FILE]  # build the data once into FILE, then reuse it
        [--only "team,inbox page"]             # some endpoints (and the trivial one)
        [--profile-to FILE --profile-endpoint NAME]  # cProfile 300 requests, after the timing

Targets: ratio (evidence p50 / trivial p50) ≤ 2; team overview, inbox page and inbox API
p95 ≤ 3× the trivial p95. Requests run in rounds, each endpoint in turn; each round's p95
is divided by the trivial p95 of the same round and the median over the rounds is the
figure (the machine is shared: the load average is printed, and the CPU time per request
beside the wall time). It prints the numbers and judges nothing (exit code 0).
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


def build(*, items: int, candidates: int) -> None:
    """The benchmark's data, made with the test suite's builders (tests/factories.py)."""
    from django.utils import timezone

    from apps.evidence.models import Evidence, EvidenceLink
    from apps.ladders.models import Expectation, Skill
    from apps.ladders.services import ladder_load_file
    from apps.packets.models import Packet, PacketItem
    from servicenow.models import Connection, Source, WorkItem
    from tests.factories import PersonFactory, PromotionCycleFactory, evidence_bulk_create

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
        items,
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
    conn = Connection.objects.create(name="bench", instance_url="https://bench.service-now.com")
    source = Source.objects.create(connection=conn, name="incidents", table="incident")
    now = timezone.now()
    WorkItem.objects.bulk_create(
        WorkItem(
            connection=conn, source=source, table="incident", sys_id=f"{i:032x}",
            number=f"INC{i:07d}", short_description=f"Incident {i}", state=rng.choice("1267"),
            priority=str(rng.randint(1, 5)), sys_updated_on=now, person=person,
        )
        for i in range(candidates)
    )  # fmt: skip
    labels = {"1": "New", "2": "In Progress", "6": "Resolved", "7": "Closed"}
    made = Evidence.objects.bulk_create(
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
        for ev in made[::3]
        for exp in rng.sample(expectations, 2)
    )

    # A manager with 10 leads and 190 engineers below them, each with 8 linked items and a
    # packet in the current cycle for one in five: the overview reads all of it.
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
        made = evidence_bulk_create(report, 8, start=date(2026, 1, 1), spread_days=300)
        EvidenceLink.objects.bulk_create(
            EvidenceLink(evidence=item, expectation=exp)
            for item in made
            for exp in rng.sample(level3, 1)
        )
        if i % 5 == 0:
            packet = Packet.objects.create(
                person=report, cycle=cycle, ladder_version=version, from_level=2, target_level=3
            )
            PacketItem.objects.bulk_create(
                PacketItem(packet=packet, expectation=exp, evidence=made[n % 8], position=n)
                for n, exp in enumerate(level3[:5])
            )


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100, help="per endpoint and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--keep-db", default="", help="a SQLite file: built once, reused by later runs"
    )
    parser.add_argument("--only", default="", help="comma-separated endpoint name prefixes")
    parser.add_argument("--profile-to", default="", help="write a cProfile of 300 requests")
    parser.add_argument(
        "--profile-endpoint", default="evidence list", help='what --profile-to profiles: "team"'
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-evidence-")
    if args.keep_db:
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(args.keep_db).resolve()}"
    else:
        os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "ladder_tracker.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # the rate limit still runs (its cost is part of the latency) but is never reached
    os.environ.setdefault("API_THROTTLE_USER", "1000000/minute")
    # Run as a script, this folder is sys.path[0], and benchmarks/markdown.py would shadow
    # the markdown package (DRF imports it): the project root instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from apps.people.models import Person

    settings.ALLOWED_HOSTS = ["*"]
    load_before = load()
    if connection.vendor == "postgresql":
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    if not Person.objects.filter(user__username="bench").exists():
        build(items=args.items, candidates=args.candidates)
        if connection.vendor == "postgresql":
            # What autovacuum does within a minute of a bulk load on a live server:
            # statistics for the planner and a visibility map for index-only counts.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM ANALYZE")
    person = Person.objects.select_related("user").get(user__username="bench")
    boss = Person.objects.select_related("user").get(user__username="boss")

    client = Client()
    client.force_login(person.user)
    manager = Client()
    manager.force_login(boss.user)
    targets = {
        "trivial (people/me)": ("/api/v1/people/me/", client),
        # the floor of any page: an empty one through the same base template, nav and
        # middleware as the inbox (the session, the nav's inbox badge, CSP)
        "trivial page (trash)": ("/evidence/trash/", client),
        "evidence list": ("/api/v1/evidence/?page=1", client),
        "team overview (200)": ("/api/v1/team/", manager),
        "team page (200)": ("/team/", manager),
        "inbox page (2000)": ("/evidence/inbox/", client),
        "inbox page filtered": (
            "/evidence/inbox/?q=INC00&state=6&sort=priority&page=2",
            client,
        ),
        "inbox API (2000)": (
            "/api/v1/evidence/?status=candidate&q=INC00&sort=priority",
            client,
        ),
    }
    trivial = "trivial (people/me)"
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        targets = {
            name: t
            for name, t in targets.items()
            if name == trivial or any(name.startswith(w) for w in wanted)
        }

    # What each endpoint must answer (a benchmark of a broken page measures nothing).
    body = client.get("/api/v1/evidence/?page=1").json()
    assert body["count"] == args.items + args.candidates and len(body["results"]) == 50
    assert len(manager.get("/api/v1/team/").json()) == 200
    assert "200 of 200 people" in manager.get("/team/").content.decode()
    inbox_page = client.get("/evidence/inbox/").content.decode()
    assert inbox_page.count('class="card inbox-item"') == 25
    assert f"{args.candidates} candidates" in inbox_page
    sizes = {}
    for name, (path, who) in targets.items():  # warm up caches, connections, imports
        for _ in range(10):
            response = who.get(path)
            assert response.status_code == 200, (name, response.status_code)
        sizes[name] = len(response.content)

    # Rounds of interleaved requests (each endpoint in turn: all see the same machine
    # state); each round's p95 is divided by the trivial endpoint's p95 of the same round,
    # and the medians over the rounds are reported.
    # The CPU time of the process is timed too: SQLite runs in it, so that is the whole
    # request's work, and it moves much less than the wall time with other processes' load.
    rounds: list[dict[str, list[float]]] = []
    cpu_rounds: list[dict[str, list[float]]] = []
    for _ in range(args.rounds):
        timings: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.requests):
            for name, (path, who) in targets.items():
                c0, t0 = time.process_time(), time.perf_counter()
                response = who.get(path)
                timings[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)
                assert response.status_code == 200
        rounds.append(timings)
        cpu_rounds.append(cpu)
    if args.profile_to:
        import cProfile

        profiler = cProfile.Profile()
        name = next(n for n in targets if n.startswith(args.profile_endpoint))
        path, who = targets[name]
        profiler.runcall(lambda: [who.get(path) for _ in range(300)])
        profiler.dump_stats(args.profile_to)

    print(
        f"evidence benchmark: {args.items} items, {args.candidates} candidates, {args.rounds}"
        f" rounds x {args.requests} interleaved requests per endpoint, {connection.vendor},"
        f" python {sys.version.split()[0]}, {os.cpu_count()} cpus,"
        f" load average {load_before} before, {load()} after"
    )
    print(
        f"{'endpoint':<22}{'p50 ms':>9}{'p95 ms':>9}{'KB':>7}"
        f"{'p95/trivial':>13}{'(rounds)':>20}{'cpu p95':>9}{'cpu ratio':>10}  target"
    )
    median = statistics.median
    for name in targets:
        p50 = median(percentile(r[name], 0.5) for r in rounds)
        p95 = median(percentile(r[name], 0.95) for r in rounds)
        ratios = sorted(percentile(r[name], 0.95) / percentile(r[trivial], 0.95) for r in rounds)
        spread = ", ".join(f"{x:.2f}" for x in ratios)
        if name == trivial or name.startswith("trivial page"):
            verdict = "(reference)" if name != trivial else ""
        elif name == "evidence list":
            ratio50 = median(percentile(r[name], 0.5) / percentile(r[trivial], 0.5) for r in rounds)
            verdict = f"p50 ratio {ratio50:.2f} <= 2: {'PASS' if ratio50 <= 2 else 'MISS'}"
        else:
            verdict = f"<= 3: {'PASS' if median(ratios) <= 3 else 'MISS'}"
        cpu95 = median(percentile(r[name], 0.95) for r in cpu_rounds)
        cpu_ratio = median(
            percentile(r[name], 0.95) / percentile(r[trivial], 0.95) for r in cpu_rounds
        )
        print(
            f"{name:<22}{p50:>9.2f}{p95:>9.2f}{sizes[name] / 1024:>7.0f}"
            f"{median(ratios):>12.2f}x{spread:>20}{cpu95:>9.2f}{cpu_ratio:>9.2f}x  {verdict}"
        )
    print(
        "p95/trivial: wall-clock p95 over the trivial endpoint's in the same round, median of"
        " the rounds (the targets); cpu: the same with the process's CPU time per request"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
