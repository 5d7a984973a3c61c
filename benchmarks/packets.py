"""Packet latency and PDF cost: p50/p95 of GET /api/v1/packets/{id}/ and
/api/v1/packets/{id}/coverage/ for a packet with 2,000 evidence items, next to a trivial
authenticated endpoint (GET /api/v1/people/me/) measured interleaved in the same run; then
the PDF export of a 200-item submitted packet, in a process of its own: seconds and peak RSS.

    python benchmarks/packets.py [--items 2000] [--pdf-items 200] [--requests 200]
                                 [--database-url URL]

Runs in-process through Django's test client (the full middleware, auth, view, serializer
and database path; no network), against a fresh SQLite file by default or the database you
name (flushed first). Prints the numbers and the ratios; it judges nothing (exit code 0
whenever every measurement ran).

Peak RSS: Linux carries a process's ru_maxrss across fork and exec, so a child started
straight from this (large) process would report at least this process's peak. The PDF
child is therefore started through `sh`, which forks it: its getrusage(RUSAGE_SELF)
ru_maxrss is its own. VmHWM from /proc/self/status is printed next to it as a cross-check.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def django_setup(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "ladder_tracker.settings.base"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # the rate limit still runs (its cost is part of the latency) but is never reached
    os.environ.setdefault("API_THROTTLE_USER", "1000000/minute")
    os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
    # Run as a script, this folder is sys.path[0], and benchmarks/markdown.py would shadow
    # the markdown package (DRF imports it): the project root instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["*"]


def fill(packet, n: int) -> None:
    """n accepted evidence items of the packet's owner, each linked to and offered for one
    expectation of the target level (round robin), written with bulk_create."""
    from tests.factories import packet_fill

    packet_fill(
        packet,
        n,
        title="Evidence {i}: retraining job, drift alerts and docs",
        description="Did a thing **well**.",
        description_html="<p>Did a thing <strong>well</strong>.</p>",
        url="https://git.example.com/ml/pull/{i}",
        note="Why item {i} shows it",
        spread_days=600,
    )


def setup_data(items: int, pdf_items: int) -> dict:
    """The ladder, a manager and two of his reports (made with the test suite's builders,
    tests/factories.py), an open cycle, a draft packet of `items` items and a submitted one
    of `pdf_items`."""
    from apps.ladders.services import ladder_load_file
    from apps.packets.services import packet_create, packet_submit
    from tests.factories import PersonFactory, PromotionCycleFactory

    version = ladder_load_file(
        path=ROOT / "fixtures/ladders/ai-ml-engineer.yaml", publish=True
    ).version
    boss = PersonFactory(user__username="boss", name="Bo Boss", ladder=version.ladder, level=4)
    people = {
        name: PersonFactory(
            user__username=name, name=name.title(), ladder=version.ladder, level=2, manager=boss
        )
        for name in ("bench", "pdfbench")
    }
    cycle = PromotionCycleFactory(
        name="Bench", opens_in_days=-1, deadline_in=timedelta(days=30), decision_in_days=60
    )
    big = packet_create(person=people["bench"], actor=people["bench"].user, cycle=cycle)
    fill(big, items)
    small = packet_create(person=people["pdfbench"], actor=people["pdfbench"].user, cycle=cycle)
    fill(small, pdf_items)
    packet_submit(packet_id=small.pk, actor=people["pdfbench"].user)
    return {"big": big, "small": small, "user": people["bench"].user}


def rss_kb(field: str) -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) if match else None


def pdf_child(database_url: str, packet_id: int) -> int:
    """In the child: export the packet's PDF through the API twice (cold, then warm) and
    print one JSON line with the timings and this process's memory."""
    django_setup(database_url)
    from django.test import Client

    from apps.packets.models import Packet

    packet = Packet.objects.select_related("person__user").get(pk=packet_id)
    client = Client()
    client.force_login(packet.person.user)
    path = f"/api/v1/packets/{packet_id}/export/?format=pdf"
    rss_before = rss_kb("VmRSS")
    timings = []
    size = 0
    for _ in range(2):
        t0 = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - t0)
        assert response.status_code == 200 and response.content.startswith(b"%PDF")
        size = len(response.content)
    print(json.dumps({
        "cold_s": timings[0], "warm_s": timings[1], "bytes": size,
        "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "hwm_kb": rss_kb("VmHWM"), "rss_before_kb": rss_before,
    }))  # fmt: skip
    return 0


def measure_pdf(database_url: str, packet_id: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--database-url", database_url,
           "--pdf-child", str(packet_id)]  # fmt: skip
    # through sh, which forks the child: see the module docstring (peak RSS)
    out = subprocess.run(["sh", "-c", '"$@"; exit $?', "sh", *cmd], capture_output=True,
                         text=True, check=False, cwd=ROOT)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"PDF child failed:\n{out.stdout}\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--pdf-items", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--gc-like-gunicorn",
        action="store_true",
        help="after the warm-up, tune the collector as gunicorn.conf.py does in each worker",
    )
    parser.add_argument("--pdf-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.pdf_child:
        return pdf_child(args.database_url, args.pdf_child)

    tmp = tempfile.mkdtemp(prefix="bench-packets-")
    database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
    django_setup(database_url)
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    if connection.vendor == "postgresql":
        call_command("flush", "--noinput", verbosity=0)
    call_command("migrate", verbosity=0)
    data = setup_data(args.items, args.pdf_items)
    big = data["big"]
    if connection.vendor == "postgresql":
        # planner statistics for the rows just bulk-loaded, as autovacuum would have them on a
        # live database (without: row estimates of 1 and nested loops, ~25x slower coverage)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    client = Client()
    client.force_login(data["user"])
    targets = {
        f"packet detail ({args.items})": f"/api/v1/packets/{big.pk}/",
        f"coverage ({args.items})": f"/api/v1/packets/{big.pk}/coverage/",
        "trivial (people/me)": "/api/v1/people/me/",
    }
    for path in targets.values():  # warm up caches, connections, imports
        for _ in range(5):
            assert client.get(path).status_code == 200
    detail = client.get(targets[f"packet detail ({args.items})"]).json()
    assert len(detail["items"]) == args.items
    timings: dict[str, list[float]] = {name: [] for name in targets}
    # The garbage collector's full passes during the timed requests: a large response's
    # objects set them off, and each walks everything the process holds (the tail that
    # benchmarks/README.md, "make bench-web", traces). Python's own collector settings
    # unless --gc-like-gunicorn: gunicorn.conf.py's post_worker_init, as in a worker.
    if args.gc_like_gunicorn:
        import runpy

        runpy.run_path(str(ROOT / "gunicorn.conf.py"))["post_worker_init"](None)
    full_passes: list[float] = []
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            full_passes.append((time.perf_counter() - started.pop()) * 1000)

    gc.callbacks.append(on_gc)
    for _ in range(args.requests):
        for name, path in targets.items():  # interleaved: all see the same machine state
            t0 = time.perf_counter()
            response = client.get(path)
            timings[name].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200
    gc.callbacks.remove(on_gc)
    connection.close()  # the PDF child reads the same database
    pdf = measure_pdf(database_url, data["small"].pk)

    print(
        f"packets benchmark: {args.items} items, {args.requests} requests each, "
        f"{connection.vendor}, python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'endpoint':<24}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'mean ms':>10}"
        f"{'p50 ratio':>11}"
    )
    trivial = timings["trivial (people/me)"]
    t50 = percentile(trivial, 0.5)
    for name, values in timings.items():
        print(
            f"{name:<24}{percentile(values, 0.5):>10.2f}{percentile(values, 0.95):>10.2f}"
            f"{percentile(values, 0.99):>10.2f}{statistics.mean(values):>10.2f}"
            f"{percentile(values, 0.5) / t50:>10.2f}x"
        )
    ratios = {}
    for name, values in timings.items():
        if values is trivial:
            continue
        ratios[name] = (
            percentile(values, 0.5) / t50,
            percentile(values, 0.95) / percentile(trivial, 0.95),
        )
        print(f"ratio {name} / trivial: p50 {ratios[name][0]:.2f}, p95 {ratios[name][1]:.2f}")
    print(
        f"full GC passes during the {args.requests * len(targets)} timed requests"
        f" ({'gunicorn.conf.py' if args.gc_like_gunicorn else 'Python'}'s settings): "
        f"{len(full_passes)}"
        + (
            f", {statistics.median(full_passes):.0f} ms median, {max(full_passes):.0f} ms max"
            if full_passes
            else ""
        )
    )
    mb = 1024
    print(
        f"PDF export ({args.pdf_items} items, own process): cold {pdf['cold_s']:.2f} s, "
        f"warm {pdf['warm_s']:.2f} s, {pdf['bytes'] / 1024:.0f} KiB; peak RSS "
        f"{pdf['maxrss_kb'] / mb:.0f} MB (getrusage; VmHWM {(pdf['hwm_kb'] or 0) / mb:.0f} MB,"
        f" {(pdf['rss_before_kb'] or 0) / mb:.0f} MB before the first export)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
