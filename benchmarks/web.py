"""The web tier under concurrency: gunicorn + PostgreSQL, measured from outside with wrk.

    python benchmarks/web.py [--configs sync:5:1,gthread:2:8] [--clients 16,64]
        [--requests 2000] [--seconds 8] [--database lt_web_bench] [--reuse-db] [--keep-db]

Creates a fresh PostgreSQL database (dropped first; `--reuse-db` keeps a seeded one),
migrates, and seeds it with the other benchmarks' builders: the evidence benchmark's org
(an engineer with 5,000 evidence items and 2,000 imported candidates; a manager with 10
leads and 190 reports, benchmarks/evidence.build) and a draft packet of 2,000 items
(benchmarks/packets.fill). Then, for each gunicorn configuration (`class:workers:threads`),
it starts `gunicorn -c gunicorn.conf.py ladder_tracker.wsgi` on a free port with the
production settings, signs in (a database session, the cookie a browser would send),
warms every endpoint up, and for each number of concurrent clients runs wrk against each
endpoint in turn, bounded by `--requests` and `--seconds` (whichever comes first):

- evidence list: GET /api/v1/evidence/?page=1 (the engineer, page size 50)
- team page: GET /team/ (the manager, 200 reports; an HTML page)
- packet detail: GET /api/v1/packets/{id}/ (2,000 items)
- coverage: GET /api/v1/packets/{id}/coverage/
- trivial: GET /api/v1/people/me/

Printed per endpoint: requests, req/s, p50/p95/p99 and max latency, errors (socket
errors, timeouts, any answer but 200), and p95 / the trivial endpoint's p95 at the same
concurrency. Targets (printed, not asserted): 0 errors; p95 ≤ 3× the trivial p95 at 16
clients. The machine's cores are shared by the server, PostgreSQL and the client: each run
prints the CPU the gunicorn processes, the database's backends and wrk itself used, as a
share of all cores. Exit code 0 whenever every run completed.

wrk is a Debian package (`make bench-web` installs it when missing); latencies are wrk's
own histogram (send to last byte). `--seconds 8` and 2 configurations keep the default run
under ~5 minutes on 2 cores, seeding included.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRK_THREADS = 2  # one per core: more only adds the client's own scheduling to the latencies

# The production settings, with what they require set to throwaway values; the same in
# this process (seeding, the session) and in gunicorn: the session's auth hash is keyed by
# SECRET_KEY.
SERVER_ENV = {
    "DJANGO_SETTINGS_MODULE": "ladder_tracker.settings.production",
    "SECRET_KEY": "bench-web-only-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMN",
    "SECRETS_ENCRYPTION_KEY": "bench-web-only",
    "ALLOWED_HOSTS": "127.0.0.1",
    "SITE_URL": "https://ladder.example.com",
    "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    "LOG_LEVEL": "WARNING",
    # the rate limit still runs (its cost is part of the latency) but is never reached
    "API_THROTTLE_USER": "100000000/minute",
}

# Counts every answer but a 200 (a redirect to the login page is an error here too), stops
# each wrk thread after its share of the request budget, and prints one JSON line.
WRK_SCRIPT = """
local threads = {}
counter = 0
bad = 0
limit = %(limit)d

function setup(thread)
  table.insert(threads, thread)
end

function response(status, headers, body)
  counter = counter + 1
  if status ~= 200 then bad = bad + 1 end
  if counter >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local not_200 = 0
  for _, t in ipairs(threads) do not_200 = not_200 + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %%d, "duration_us": %%d, "not_200": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50": %%d, "p95": %%d, ' ..
    '"p99": %%d, "max": %%d}\\n',
    summary.requests, summary.duration, not_200, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max))
end
"""


# The garbage collector settings a configuration may name (gunicorn.conf.py's are "tuned").
GC_MODES = {
    "tuned": {},
    "pygc": {"GUNICORN_GC_FREEZE": "0", "GUNICORN_GC_THRESHOLD": ""},  # Python's own
    "freeze": {"GUNICORN_GC_THRESHOLD": ""},  # gc.freeze(), Python's thresholds
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_recreate(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def django_setup(database_url: str) -> None:
    os.environ.update(SERVER_ENV)
    os.environ["DATABASE_URL"] = database_url
    # Run as a script, this folder is sys.path[0], and benchmarks/markdown.py would shadow
    # the markdown package (DRF imports it): the project root instead.
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seed(*, items: int, candidates: int, packet_items: int) -> None:
    """The evidence benchmark's data (engineer `bench`, manager `boss` and his org) and a
    draft packet of `packet_items` items of its own engineer, `packets`."""
    from apps.ladders.models import LadderVersion
    from apps.packets.services import packet_create
    from benchmarks.evidence import build
    from benchmarks.packets import fill
    from tests.factories import PersonFactory, PromotionCycleFactory

    build(items=items, candidates=candidates)
    version = LadderVersion.objects.get(status=LadderVersion.Status.PUBLISHED)
    owner = PersonFactory(
        user__username="packets", name="Pat Packets", ladder=version.ladder, level=2
    )
    cycle = PromotionCycleFactory(
        name="Web bench", opens_in_days=-1, deadline_in=timedelta(days=30), decision_in_days=60
    )
    packet = packet_create(person=owner, actor=owner.user, cycle=cycle)
    fill(packet, packet_items)


def session_cookie(username: str) -> str:
    """A signed-in session of `username` in the database, as the Cookie header's value."""
    from django.conf import settings
    from django.test import Client

    from apps.people.models import Person

    client = Client()
    client.force_login(Person.objects.get(user__username=username).user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def proc_cpu_s(pid: int) -> float:
    """utime + stime of one process, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return int(kb) / 1024


def children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


class CpuMeter:
    """CPU seconds of the gunicorn master and workers, and of the database's backends,
    between two readings. Backends opened or closed in between count partly; with
    persistent connections (CONN_MAX_AGE) that is rare."""

    def __init__(self, master: int, database: str, conn) -> None:
        self.master, self.database, self.conn = master, database, conn

    def _backends(self) -> list[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ).fetchall()
        return [r[0] for r in rows]

    def read(self) -> dict[int, float]:
        pids = [self.master, *children(self.master)]
        server = {pid: proc_cpu_s(pid) for pid in pids}
        db = {-pid: proc_cpu_s(pid) for pid in self._backends()}
        return server | db

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
        server = db = 0.0
        for pid, value in after.items():
            d = value - before.get(pid, 0.0)
            if pid < 0:
                db += d
            else:
                server += d
        return server, db


def gunicorn_start(config: tuple, port: int, database_url: str):
    kind, workers, threads, gc_mode = config
    env = (
        os.environ
        | SERVER_ENV
        | {
            "DATABASE_URL": database_url,
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
            "GUNICORN_WORKER_CLASS": kind,
            # "pygc": Python's own collector settings, not gunicorn.conf.py's
            **(
                {"GUNICORN_GC_FREEZE": "0", "GUNICORN_GC_THRESHOLD": ""}
                if gc_mode == "pygc"
                else {}
            ),
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_ACCESS_LOG": "",
        }
    )
    fd, log = tempfile.mkstemp(prefix="bench-web-gunicorn-", suffix=".log")
    with open(fd, "wb") as out:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "ladder_tracker.wsgi",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{Path(log).read_text()}")
        try:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/people/me/",
                    headers={"X-Forwarded-Proto": "https"},  # no redirect to https
                ),
                timeout=2,
            )
        except urllib.error.HTTPError:
            break  # an answer (401 without a session): it is up
        except OSError:
            time.sleep(0.2)
            continue
        break
    else:
        proc.kill()
        raise SystemExit(f"gunicorn did not answer in 60 s:\n{Path(log).read_text()}")
    # every worker up (each answers once it has imported the app)
    while len(children(proc.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.2)
    return proc, log


def gunicorn_stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def check(url: str, cookie: str, expect: str, timeout: float = 30) -> None:
    """The endpoint answers 200 with what it should (a benchmark of a broken page measures
    nothing)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie, "X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read().decode()
        assert response.status == 200, (url, response.status)
    assert expect in body, (url, expect, body[:300])


def wrk_run(url: str, cookie: str, *, clients: int, requests: int, seconds: float) -> dict:
    threads = min(WRK_THREADS, clients)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % {"limit": max(1, -(-requests // threads))})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            "-H",
            f"Cookie: {cookie}",
            "-H",
            "X-Forwarded-Proto: https",
            url,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(script.name)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK ")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    result = json.loads(line[4:])
    result["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def drain(base: str, cookie: str) -> float:
    """Wait until the server has worked off what the last run left queued: wrk stops with
    up to one request per client in flight (in the listen backlog or read by a worker), and
    gunicorn answers them to closed sockets. One request behind them comes back when they
    are done. Returns the seconds it took."""
    t0 = time.monotonic()
    check(f"{base}/api/v1/people/me/", cookie, '"level"', timeout=120)
    time.sleep(0.2)
    return time.monotonic() - t0


def errors(r: dict) -> int:
    return r["connect"] + r["read"] + r["write"] + r["timeout"] + r["not_200"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--configs",
        default="sync:5:1,gthread:2:8",
        help="gunicorn configurations, class:workers:threads[:gc], comma-separated; gc:"
        " tuned (gunicorn.conf.py's, the default), pygc (Python's own), freeze (gc.freeze only)",
    )
    parser.add_argument("--clients", default="16,64", help="concurrent clients (connections)")
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint and run")
    parser.add_argument("--seconds", type=int, default=8, help="per endpoint and run")
    parser.add_argument("--warmup-seconds", type=int, default=2)
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="lt_web_bench")
    parser.add_argument("--reuse-db", action="store_true", help="keep a seeded database")
    parser.add_argument("--keep-db", action="store_true", help="do not drop it at the end")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--candidates", type=int, default=2000)
    parser.add_argument("--packet-items", type=int, default=2000)
    parser.add_argument("--only", default="", help="comma-separated endpoint name prefixes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench-web does)")
    configs = []
    for spec in args.configs.split(","):
        kind, workers, threads, *gc_mode = spec.split(":")
        configs.append((kind, int(workers), int(threads), gc_mode[0] if gc_mode else "tuned"))
        if configs[-1][3] not in GC_MODES:
            raise SystemExit(f"unknown gc mode in {spec!r}: one of {', '.join(GC_MODES)}")
    levels = [int(c) for c in args.clients.split(",")]

    t_start = time.monotonic()
    database_url = f"{args.server_url}/{args.database}"
    load_before = os.getloadavg()
    import psycopg

    seeded = False
    if args.reuse_db:
        try:
            with psycopg.connect(database_url) as conn:
                seeded = bool(
                    conn.execute("SELECT 1 FROM auth_user WHERE username = 'packets'").fetchone()
                )
        except psycopg.Error:
            seeded = False
    if not seeded:
        database_recreate(args.server_url, args.database)
    django_setup(database_url)
    from django.core.management import call_command
    from django.db import connection

    from apps.packets.models import Packet

    if not seeded:
        call_command("migrate", verbosity=0)
        seed(items=args.items, candidates=args.candidates, packet_items=args.packet_items)
        # What autovacuum does within a minute of a bulk load on a live server:
        # statistics for the planner and a visibility map for index-only counts.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    # The production settings serve the collected, hashed static files (the pages' links
    # name them). Collecting takes ~25 s here (whitenoise compresses every file): only when
    # a source file is newer than the manifest.
    from django.conf import settings

    manifest = Path(settings.STATIC_ROOT) / "staticfiles.json"
    sources = [p for d in ("ladder_tracker", "apps") for p in (ROOT / d).rglob("static/**/*")]
    newest = max((p.stat().st_mtime for p in sources if p.is_file()), default=0.0)
    if not manifest.exists() or manifest.stat().st_mtime < newest:
        call_command("collectstatic", "--noinput", verbosity=0)
    seed_s = time.monotonic() - t_start
    packet = Packet.objects.get(person__user__username="packets")
    cookies = {who: session_cookie(who) for who in ("bench", "boss", "packets")}
    connection.close()

    endpoints = {
        "evidence list": ("/api/v1/evidence/?page=1", "bench", '"results"'),
        "team page": ("/team/", "boss", "200 of 200 people"),
        f"packet detail ({args.packet_items})": (
            f"/api/v1/packets/{packet.pk}/",
            "packets",
            f'"id":{packet.pk}',
        ),
        "coverage": (f"/api/v1/packets/{packet.pk}/coverage/", "packets", '"overall"'),
        "trivial (people/me)": ("/api/v1/people/me/", "bench", '"level"'),
    }
    trivial = "trivial (people/me)"
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        endpoints = {
            n: e
            for n, e in endpoints.items()
            if n == trivial or any(n.startswith(w) for w in wanted)
        }

    print(
        f"web benchmark: {os.cpu_count()} cpus, python {sys.version.split()[0]}, "
        f"load average {'/'.join(f'{x:.2f}' for x in load_before)} before; "
        f"{'seeded' if not seeded else 'reused'} {args.database} in {seed_s:.0f} s; "
        f"wrk -t{WRK_THREADS}, each run ≤ {args.requests} requests or {args.seconds:g} s"
    )
    results: dict[tuple, dict] = {}
    rss: dict[tuple, float] = {}
    meter_conn = psycopg.connect(f"{args.server_url}/postgres", autocommit=True)
    for index, config in enumerate(configs):
        port = free_port()
        proc, log = gunicorn_start(config, port, database_url)
        base = f"http://127.0.0.1:{port}"
        meter = CpuMeter(proc.pid, args.database, meter_conn)
        try:
            for _name, (path, who, expect) in endpoints.items():
                check(base + path, cookies[who], expect)
                wrk_run(
                    base + path,
                    cookies[who],
                    clients=max(levels),
                    requests=10**6,
                    seconds=args.warmup_seconds,
                )
                drain(base, cookies["bench"])
            for clients in levels:
                for name, (path, who, _expect) in endpoints.items():
                    before = meter.read()
                    r = wrk_run(
                        base + path,
                        cookies[who],
                        clients=clients,
                        requests=args.requests,
                        seconds=args.seconds,
                    )
                    r["server_cpu_s"], r["db_cpu_s"] = meter.delta(before, meter.read())
                    r["drain_s"] = drain(base, cookies["bench"])
                    results[(index, clients, name)] = r
            rss[index] = sum(rss_mb(pid) for pid in children(proc.pid))
        finally:
            gunicorn_stop(proc)
        gunicorn_log = Path(log).read_text()
        os.unlink(log)
        if "Traceback" in gunicorn_log or "[CRITICAL]" in gunicorn_log:
            print(f"gunicorn log ({config}):\n{gunicorn_log[-3000:]}")
    meter_conn.close()

    cores = os.cpu_count() or 1
    for index, config in enumerate(configs):
        kind, workers, threads, gc_mode = config
        label = f"{kind}, {workers} workers x {threads} threads, gc {gc_mode}"
        for clients in levels:
            t95 = results[(index, clients, trivial)]["p95"]
            print(f"\n{label}, {clients} clients (workers' RSS at the end: {rss[index]:.0f} MB)")
            print(
                f"{'endpoint':<22}{'reqs':>6}{'req/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
                f"{'max ms':>9}{'errors':>7}{'p95/triv':>9}  cpu% srv/db/client  target"
            )
            for name in endpoints:
                r = results[(index, clients, name)]
                wall = r["duration_us"] / 1e6
                share = [
                    100 * r[k] / (wall * cores)
                    for k in ("server_cpu_s", "db_cpu_s", "client_cpu_s")
                ]
                ratio = r["p95"] / t95
                verdicts = [f"errors {'PASS' if errors(r) == 0 else 'MISS'}"]
                if name != trivial and clients == min(levels):
                    verdicts.append(f"p95 <= 3x {'PASS' if ratio <= 3 else 'MISS'}")
                print(
                    f"{name:<22}{r['requests']:>6}{r['requests'] / wall:>8.1f}"
                    f"{r['p50'] / 1000:>9.1f}{r['p95'] / 1000:>9.1f}{r['p99'] / 1000:>9.1f}"
                    f"{r['max'] / 1000:>9.1f}{errors(r):>7}{ratio:>8.2f}x"
                    f"  {share[0]:>4.0f}/{share[1]:>3.0f}/{share[2]:>3.0f}"
                    f"           {', '.join(verdicts)}"
                )
    print(
        f"\ncpu%: the share of all {cores} cores the gunicorn processes, the database's"
        " backends and wrk (the client, on the same machine) used during the run."
        f" Load average {'/'.join(f'{x:.2f}' for x in os.getloadavg())} after;"
        f" {time.monotonic() - t_start:.0f} s in all."
    )
    if not args.keep_db:
        database_drop(args.server_url, args.database)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
