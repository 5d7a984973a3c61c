"""Evidence list latency: p50/p95 of GET /api/v1/evidence/ (5,000 items, page size 50) next
to a trivial authenticated endpoint (GET /api/v1/people/me/) measured in the same run.

    python benchmarks/evidence.py [--items 5000] [--requests 300] [--database-url URL]
        [--profile-to FILE]   # cProfile of extra evidence-list requests, after the timing

Target: ratio (evidence p50 / trivial p50) ≤ 2. The data is made with the test suite's
builders (tests/factories.py). Runs in-process through Django's test
client (the full middleware, auth, view, serializer and database path; no network), against
a fresh SQLite file by default or the database you name.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--profile-to", default="", help="write a cProfile of 300 list requests")
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
    for path in targets.values():  # warm up caches, connections, imports
        for _ in range(10):
            assert client.get(path).status_code == 200
    timings: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(args.requests):
        for name, path in targets.items():  # interleaved: both see the same machine state
            t0 = time.perf_counter()
            response = client.get(path)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
    if args.profile_to:
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(lambda: [client.get(targets["evidence list"]) for _ in range(300)])
        profiler.dump_stats(args.profile_to)
    body = client.get(targets["evidence list"]).json()
    assert body["count"] == args.items and len(body["results"]) == 50

    print(
        f"evidence benchmark: {args.items} items, page size 50, {args.requests} requests each,"
        f" {connection.vendor}, python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    print(f"{'endpoint':<22}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
    for name, values in timings.items():
        print(
            f"{name:<22}{percentile(values, 0.5):>10.2f}{percentile(values, 0.95):>10.2f}"
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
