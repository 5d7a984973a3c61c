"""Publishing a new ladder version while evidence links exist: seconds and queries of
`load_ladder tests/fixtures/ladders/ai-ml-engineer-v2.yaml --publish`, which moves every
link of the ladder to the new version by code (apps/evidence/services
evidence_links_follow_version), for N links spread over the level-1..5 expectations.

    python benchmarks/ladder_publish.py [--links 20000] [--people 50] [--database-url URL]

A fresh SQLite file by default, or the database you name (flushed first). Prints the
numbers; it judges nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# the project root, not this folder (its markdown.py would shadow the markdown package)
sys.path[0] = str(ROOT)

from benchmarks.packets import django_setup  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--links", type=int, default=20000)
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-ladder-publish-")
    django_setup(args.database_url or f"sqlite:///{tmp}/bench.sqlite3")
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.evidence.models import EvidenceLink
    from apps.ladders.models import Expectation
    from apps.ladders.services import ladder_load_file
    from tests.factories import PersonFactory, evidence_bulk_create

    if connection.vendor == "postgresql":
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    v1 = ladder_load_file(path=ROOT / "fixtures/ladders/ai-ml-engineer.yaml", publish=True).version
    expectations = list(Expectation.objects.filter(version=v1))
    per_person = max(1, args.links // (2 * args.people))
    links = []
    for p in range(args.people):
        person = PersonFactory(user__username=f"bench{p}", ladder=v1.ladder, level=2)
        for i, ev in enumerate(evidence_bulk_create(person, per_person)):
            links += [
                EvidenceLink(evidence=ev, expectation=expectations[(2 * i + j) % len(expectations)])
                for j in range(2)
            ]
    EvidenceLink.objects.bulk_create(links, batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        ladder_load_file(path=ROOT / "tests/fixtures/ladders/ai-ml-engineer-v2.yaml", publish=True)
    seconds = time.perf_counter() - start
    flagged = EvidenceLink.objects.exclude(ladder_change="").count()
    print(
        f"{connection.vendor}: published v2 over {len(links):,} links in {seconds:.2f} s, "
        f"{len(queries)} queries; {flagged:,} links flagged removed or reworded"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
