"""Sync benchmark: a full ServiceNow sync of N incidents from the emulator into SQLite and
PostgreSQL, against the floor (the same pages fetched and JSON-decoded, nothing stored) and
against PySNC's GlideRecord fetching the same table (the peer). A "write only" row per
database times the database half alone: the same rows, prepared before the clock starts,
upserted and committed page by page (what storing costs here, whatever the code around it).

    make bench-sync                       # both sizes, both databases, PySNC
    .venv/bin/python -m benchmarks.sync [--sizes 10000,100000] [--repeat N]
        [--skip-postgres] [--skip-pysnc] [--profile DIR]

Every measurement runs in a fresh subprocess, so its peak RSS (VmHWM) is its own; the
emulator and the dataset generator run in processes of their own too. PySNC lives in a
separate venv (var/bench-venv, made by `make bench-sync`), never in the project's .venv.

The script exits 0 when every measurement ran, whatever the targets say (it measures, it
does not judge); non-zero only when a measurement crashed. Only the standard library is
imported at module level: the PySNC role runs under the bench venv's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PYTHON = ROOT / ".venv" / "bin" / "python"
BENCH_VENV_PYTHON = ROOT / "var" / "bench-venv" / "bin" / "python"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "ladder_bench"
PG_TEMPLATE = "ladder_bench_template"
PG_URL = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
USERNAME, PASSWORD = "integration", "integration-pass"
PAGE_SIZE = 1000
LADDER = ROOT / "fixtures" / "ladders" / "ai-ml-engineer.yaml"
OWNER_LEVEL = 2
OVERLAP_SECONDS = 300  # Source.overlap_seconds' default, which the benchmark source keeps
DATASET_END = datetime(2026, 1, 1, tzinfo=UTC)  # fixed: same bytes every run
RESULT_MARK = "BENCH-RESULT "
CHILD_TIMEOUT = 1800

TARGET_RATIO = 1.5
TARGET_RSS_GROWTH = 0.20
TARGET_INCREMENTAL_REQUESTS = 2


# --- helpers shared by every role (standard library only) --------------------------------


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: VmHWM, the high-water mark of its own address space.

    Not ru_maxrss: on Linux that one survives fork and exec (the kernel folds the pre-exec
    address space, a copy of the parent's, into it), so every child would report at least
    the parent's peak. ru_maxrss only where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of its children that have ended (a
    full run's fetching process, joined when the run ends)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime, children.ru_utime + children.ru_stime


def emit(result: dict) -> None:
    print(RESULT_MARK + json.dumps(result), flush=True)


def work_item_fields() -> list[str]:
    """The fields the sync asks for with a default incident source: WORK_ITEM_FIELDS plus
    the default attribution field (servicenow.sync.fields imports no Django). The sync role
    checks this against WorkItemWriter(...).fields."""
    sys.path.insert(0, str(ROOT))
    from servicenow.sync.fields import DEFAULT_ATTRIBUTION_FIELDS, WORK_ITEM_FIELDS

    return sorted(set(WORK_ITEM_FIELDS) | set(DEFAULT_ATTRIBUTION_FIELDS))


# --- roles run in subprocesses -----------------------------------------------------------


def role_floor(args: argparse.Namespace) -> None:
    """The pages a full sync reads, fetched and decoded the same way, stored nowhere."""
    sys.path.insert(0, str(ROOT))
    from servicenow.client import ClientConfig, ServiceNowClient, field_value
    from servicenow.query import keyset_query, parse_timestamp

    fields = work_item_fields()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def key(row: dict) -> tuple[datetime, str]:
        raw = field_value(row.get("sys_updated_on"))
        return (parse_timestamp(raw) if raw else epoch, field_value(row.get("sys_id")))

    rss_start = peak_rss_mb()
    started = time.perf_counter()
    client = ServiceNowClient(
        # The benchmark's emulator listens on loopback over plain http.
        ClientConfig(instance_url=args.url, username=USERNAME, password=PASSWORD, allow_local=True)
    )
    upper = datetime.now(UTC).replace(microsecond=0)  # as sync_run_start fixes it
    after: tuple[datetime, str] | None = None
    expected: int | None = None
    seen = rows = pages = 0
    first = True
    while True:  # iter_keyset_pages without the prefetch thread and the hidden-row probes
        page = client.get_page(
            "incident",
            query=keyset_query(base="", after=after, upper=upper),
            fields=fields,
            limit=PAGE_SIZE,
            count=first,
        )
        if first:
            expected, first = page.total_count, False
        if not page.rows:
            break
        pages += 1
        keys = {key(row) for row in page.rows}
        last = max(keys)
        after = last if after is None else max(after, last)
        seen += len(keys)
        rows += len(page.rows)
        if expected is not None and seen >= expected:
            break
    # The delete poll a work-item source with track_deletes makes after its rows.
    client.get_page(
        "sys_audit_delete",
        query=keyset_query(
            base="tablename=incident",
            after=(upper - timedelta(seconds=OVERLAP_SECONDS), ""),
            upper=upper,
            ts_field="sys_created_on",
        ),
        fields=["sys_id", "documentkey", "tablename", "sys_created_on"],
        limit=PAGE_SIZE,
        count=True,
    )
    wall = time.perf_counter() - started
    emit(
        {
            "wall": wall,
            "rows": rows,
            "pages": pages,
            "requests": client.request_count,
            "rss_start": rss_start,
            "rss_peak": peak_rss_mb(),
        }
    )
    client.close()


def benchmark_source(url: str, *, owners: bool = False):
    """The connection and default incident source every database role uses (Django set up).
    With `owners`, the instance's users are synced first (untimed) through a users source,
    so every incident assigned to one of them is owned: candidates and events are written,
    as in any organisation that syncs its people."""
    from servicenow.models import Connection, Source
    from servicenow.services import connection_save, source_save

    connection = connection_save(
        connection=Connection(
            name="Benchmark instance",
            instance_url=url,
            auth_type=Connection.AuthType.BASIC,
            username=USERNAME,
            page_size=PAGE_SIZE,
        ),
        password=PASSWORD,
    )
    if owners:
        from servicenow.models import SyncRun
        from servicenow.services import sync_run_request
        from servicenow.sync.runs import sync_run_attempt

        users = source_save(
            source=Source(
                connection=connection, name="users", table="sys_user", kind=Source.Kind.USERS
            )
        )
        run = sync_run_request(source=users, mode=SyncRun.Mode.FULL, enqueue=False)
        if sync_run_attempt(run_id=run.pk) != "done":
            raise RuntimeError("the users sync before the benchmark failed")
        from apps.ladders.models import Ladder
        from apps.people.models import Person

        Person.objects.update(ladder=Ladder.objects.get(), level=OWNER_LEVEL)
    source = source_save(
        source=Source(
            connection=connection, name="incident", table="incident", kind=Source.Kind.WORK_ITEMS
        )
    )
    return source


def role_sync(args: argparse.Namespace) -> None:
    """A full sync, then an incremental one with nothing changed, in a migrated database."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from servicenow.models import SyncRun, WorkItem
    from servicenow.services import sync_run_request
    from servicenow.sync.progress import Counters
    from servicenow.sync.runs import sync_run_attempt
    from servicenow.sync.workitems import WorkItemWriter

    source = benchmark_source(args.url, owners=args.owners > 0)
    # What a worker process imports when it starts (ladder_tracker/celery.py), not the run.
    from apps.evidence.suggestions import warm_up

    warm_up()
    sync_fields = WorkItemWriter(source=source, counters=Counters()).fields

    def timed_run(mode: str, profile_to: str | None = None) -> tuple[SyncRun, float, str]:
        # One stream, in this process: a full run is never split into backfill windows here
        # (role_backfill measures those, on real workers).
        windows = 1 if mode == SyncRun.Mode.FULL else None
        run = sync_run_request(source=source, mode=mode, enqueue=False, windows=windows)
        profiler = None
        if profile_to:
            import cProfile

            profiler = cProfile.Profile()
        started = time.perf_counter()
        if profiler is not None:
            outcome = profiler.runcall(sync_run_attempt, run_id=run.pk)
        else:
            outcome = sync_run_attempt(run_id=run.pk)
        wall = time.perf_counter() - started
        if profiler is not None:
            profiler.dump_stats(profile_to)
        run.refresh_from_db()
        if run.status != SyncRun.Status.SUCCEEDED:
            raise RuntimeError(f"{mode} run {run.pk} {outcome}: {run.status} {run.error}")
        return run, wall, outcome

    rss_start = peak_rss_mb()
    cpu_start = cpu_seconds()
    full, wall, _ = timed_run(SyncRun.Mode.FULL, args.profile_to)
    cpu_self, cpu_children = (b - a for a, b in zip(cpu_start, cpu_seconds(), strict=True))
    rss_peak = peak_rss_mb()
    stored = WorkItem.objects.filter(source=source).count()
    owned = WorkItem.objects.filter(source=source, person__isnull=False).count()
    incr, incr_wall, _ = timed_run(SyncRun.Mode.INCREMENTAL)
    emit(
        {
            "wall": wall,
            "rows": full.rows_seen,
            "stored": stored,
            "owned": owned,
            "evidence_created": full.evidence_created,
            "pages": full.pages,
            "requests": full.requests,
            "rss_start": rss_start,
            "rss_peak": rss_peak,
            "rss_after_incremental": peak_rss_mb(),
            "cpu": cpu_self,
            "cpu_children": cpu_children,
            "incremental": {
                "wall": incr_wall,
                "requests": incr.requests,
                "pages": incr.pages,
                "rows": incr.rows_seen,
                "updated": incr.updated,
                "skipped_stale": incr.skipped_stale,
            },
            "fields": list(sync_fields),
        }
    )


def role_backfill(args: argparse.Namespace) -> None:
    """A full run split into --windows backfill windows, carried by the Celery workers the
    parent started (at most --workers at a time): from the request to the run's end."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from apps.evidence.suggestions import warm_up
    from servicenow.models import SyncRun, WorkItem
    from servicenow.services import sync_run_request

    source = benchmark_source(args.url, owners=args.owners > 0)
    warm_up()
    rss_start = peak_rss_mb()
    started = time.perf_counter()
    run = sync_run_request(
        source=source, mode=SyncRun.Mode.FULL, windows=args.windows, workers=args.workers
    )
    while True:
        run.refresh_from_db()
        if run.status not in SyncRun.ACTIVE:
            break
        if time.perf_counter() - started > CHILD_TIMEOUT - 60:
            raise RuntimeError(f"backfill run {run.pk} still {run.status}")
        time.sleep(0.02)
    wall = time.perf_counter() - started
    if run.status != SyncRun.Status.SUCCEEDED:
        raise RuntimeError(f"backfill run {run.pk}: {run.status} {run.error}")
    emit(
        {
            "wall": wall,
            "rows": run.rows_seen,
            "stored": WorkItem.objects.filter(source=source).count(),
            "owned": WorkItem.objects.filter(source=source, person__isnull=False).count(),
            "evidence_created": run.evidence_created,
            "pages": run.pages,
            "requests": run.requests,
            "windows": run.window_count,
            "rss_start": rss_start,
            "rss_peak": peak_rss_mb(),
        }
    )


def role_write(args: argparse.Namespace) -> None:
    """The database half alone: the same rows, paged and prepared as the sync would before
    the clock starts, then only the per-page upsert and commit (no HTTP, no JSON, no
    per-row Python). What storing costs on this machine whatever the code around it."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import transaction

    from ladder_tracker.bulk import rows_upsert
    from servicenow.models import WorkItem
    from servicenow.sync.progress import Counters
    from servicenow.sync.workitems import CONFLICT, KEEP, WorkItemWriter

    source = benchmark_source(args.url)
    writer = WorkItemWriter(source=source, counters=Counters())
    with open(args.dataset, encoding="utf-8") as handle:
        rows = json.load(handle)["tables"]["incident"]
    rows.sort(key=lambda r: (r["sys_updated_on"], r["sys_id"]))
    fields = writer.fields
    pages = []
    for start in range(0, len(rows), PAGE_SIZE):
        page = writer.prepare(
            [{f: r[f] for f in fields if f in r} for r in rows[start : start + PAGE_SIZE]]
        )
        pages.append([version.data.values for version in page.newest.values()])
    del rows
    rss_start = peak_rss_mb()
    started = time.perf_counter()
    for values in pages:
        with transaction.atomic():
            rows_upsert(
                WorkItem, values, conflict=CONFLICT, keep=KEEP, statistics=writer.statistics
            )
    wall = time.perf_counter() - started
    emit(
        {
            "wall": wall,
            "rows": sum(len(p) for p in pages),
            "stored": WorkItem.objects.filter(source=source).count(),
            "rss_start": rss_start,
            "rss_peak": peak_rss_mb(),
        }
    )


def role_pysnc(args: argparse.Namespace) -> None:
    """PySNC's GlideRecord reading the same table and fields, 1000 rows a request."""
    import pysnc
    import pysnc.client

    notes = []
    if args.url.startswith("http://"):
        # pysnc.utils.get_instance refuses plain http ("Must provide https:// url"), and the
        # emulator serves plain http on loopback. Only that URL check is replaced; every
        # request still goes through PySNC's own session, retries and paging.
        pysnc.client.get_instance = lambda instance: instance.rstrip("/")
        notes.append("http:// allowed by replacing pysnc.client.get_instance")
    fields = work_item_fields()
    rss_start = peak_rss_mb()
    started = time.perf_counter()
    client = pysnc.ServiceNowClient(args.url, (USERNAME, PASSWORD))
    gr = client.GlideRecord("incident", batch_size=PAGE_SIZE, rewindable=False)
    gr.fields = list(fields)
    gr.display_value = False  # raw values, as the sync asks (PySNC's default is "all")
    gr.exclude_reference_link = True
    # The emulator's stored order: ORDERBYsys_id (PySNC's default) would make the emulator
    # sort the whole table for every page, which a real instance does with an index.
    gr.order_by("sys_updated_on")
    gr.query()
    count = 0
    for _record in gr:
        count += 1
    wall = time.perf_counter() - started
    emit(
        {
            "wall": wall,
            "rows": count,
            "rss_start": rss_start,
            "rss_peak": peak_rss_mb(),
            "version": getattr(pysnc, "__version__", "?"),
            "notes": notes,
        }
    )


def role_dataset(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from servicenow.emulator.generate import generate_dataset, write_dataset

    # With owners, the first `owners` users carry e-mail addresses and take ~90% of the
    # assignments; users=owners leaves no one else, so every assigned incident is owned.
    owners = [f"engineer{i}@bench.example" for i in range(args.owners)]
    dataset = generate_dataset(
        incidents=args.size,
        users=args.owners or 200,
        people_emails=owners,
        other_tables=False,
        witnesses=False,
        seed=1,
        end=DATASET_END,
    )
    write_dataset(dataset, args.out)
    emit({"incidents": len(dataset["tables"]["incident"])})


ROLES = {  # what a child process runs: --role NAME
    "dataset": role_dataset, "floor": role_floor, "sync": role_sync, "write": role_write,
    "pysnc": role_pysnc, "backfill": role_backfill,
}  # fmt: skip


# --- the parent --------------------------------------------------------------------------


class MeasurementError(Exception):
    pass


def child_env(database_url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELERY_")}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="ladder_tracker.settings.base",
        LOG_LEVEL="WARNING",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def run_child(python: Path, role_args: list[str], env: dict[str, str]) -> dict:
    cmd = [str(python), "-m", "benchmarks.sync", *role_args]
    proc = subprocess.run(  # noqa: S603 (our own interpreter and script)
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise MeasurementError(f"{' '.join(role_args[:3])} exited {proc.returncode}:\n{tail}")


def manage(args: list[str], database_url: str) -> None:
    proc = subprocess.run(  # noqa: S603
        [str(PROJECT_PYTHON), "manage.py", *args],
        cwd=ROOT,
        env=child_env(database_url),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    if proc.returncode:
        raise MeasurementError(f"manage.py {' '.join(args)} failed:\n{proc.stderr[-3000:]}")


def template_setup(database_url: str) -> None:
    """Migrate, and publish the ladder the owners are placed on (their candidates then get
    suggestions, as in an organisation that uses the ladder)."""
    manage(["migrate", "--noinput", "-v0"], database_url)
    manage(["load_ladder", "--publish", "-v0", str(LADDER)], database_url)


class EmulatorProcess:
    def __init__(self, dataset_path: Path, latency_ms: float = 0.0):
        latency = ["--latency-ms", str(latency_ms), "--jitter-ms", str(latency_ms / 10)]
        self.proc = subprocess.Popen(  # noqa: S603
            [str(PROJECT_PYTHON), "-m", "servicenow.emulator", "--port", "0",
             "--dataset", str(dataset_path), *(latency if latency_ms else [])],
            cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        self.url = ""
        deadline = time.monotonic() + 300
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "listening on" in line:
                self.url = line.rsplit("listening on", 1)[1].strip()
                break
            if time.monotonic() > deadline:
                break
        if not self.url:
            self.stop()
            raise MeasurementError("the emulator did not start")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the emulator has used so far: what serving costs it,
        on the same two cores as the process measured."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Postgres:
    """ladder_bench, recreated for every measurement from a template migrated once."""

    def __init__(self) -> None:
        import psycopg

        self.psycopg = psycopg
        self.version = ""

    def admin(self, *statements: str) -> None:
        with self.psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            for statement in statements:
                conn.execute(statement)

    def prepare_template(self) -> None:
        with self.psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            self.version = conn.execute("SHOW server_version").fetchone()[0]
        self.admin(
            f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)",
            f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)",
            f"CREATE DATABASE {PG_TEMPLATE}",
        )
        template_setup(PG_URL.replace(PG_DB, PG_TEMPLATE))

    def fresh(self) -> str:
        self.admin(
            f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)",
            f"CREATE DATABASE {PG_DB} TEMPLATE {PG_TEMPLATE}",
        )
        return PG_URL

    def drop_template(self) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {PG_TEMPLATE} WITH (FORCE)")


class Sqlite:
    """A fresh file per measurement, copied from a file migrated once."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.template = tmp / "template.sqlite3"
        self.count = 0

    def prepare_template(self) -> None:
        template_setup(f"sqlite:///{self.template}")
        for suffix in ("-wal", "-shm"):
            if Path(f"{self.template}{suffix}").exists():
                raise MeasurementError("the migrated SQLite template still has a WAL file")

    def fresh(self) -> str:
        self.count += 1
        path = self.tmp / f"bench-{self.count}.sqlite3"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def machine_info(pysnc_python: Path | None) -> list[str]:
    import sqlite3

    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        mem = "?"
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        f"nproc {affinity} (cpu_count {os.cpu_count()}), {cpu or platform.processor()}, RAM {mem}",
        f"python {platform.python_version()} ({sys.executable}), {platform.platform()}",
        f"SQLite {sqlite3.sqlite_version}",
        f"load average {load_average()} at the start (anything else running skews the numbers)",
    ]
    if pysnc_python:
        lines.append(f"peer interpreter {pysnc_python}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sync",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", default="10000,100000", help="incident counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (median)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-pysnc", action="store_true")
    parser.add_argument(
        "--owners",
        type=int,
        default=40,
        help="people synced before the incidents, who own them (0: nobody owns an incident)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="cProfile each full sync into DIR/sync-<db>-<size>.pstats (slows the sync down)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=200.0,
        help="the latency run: every request answered this late (jitter a tenth of it); 0 skips",
    )
    parser.add_argument(
        "--latency-size", type=int, default=50000, help="incidents in the latency run"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="Celery worker processes for the backfill"
    )
    parser.add_argument(
        "--windows", type=int, default=16, help="windows the latency run's backfill is split in"
    )
    # Internal: the subprocess roles.
    parser.add_argument("--role", choices=list(ROLES), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.role:
        ROLES[args.role](args)
        return 0
    return run_benchmark(args)


def run_benchmark(args: argparse.Namespace) -> int:
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    repeat = max(1, args.repeat)
    crashed: list[str] = []
    notes: list[str] = []

    pysnc_python: Path | None = None
    if args.skip_pysnc:
        notes.append("pysnc (peer) skipped: --skip-pysnc")
    elif not BENCH_VENV_PYTHON.exists():
        notes.append(
            f"pysnc (peer) skipped: {BENCH_VENV_PYTHON} not found (`make bench-sync` makes it)"
        )
    else:
        check = subprocess.run(  # noqa: S603
            [str(BENCH_VENV_PYTHON), "-c", "import pysnc"], capture_output=True, text=True
        )
        if check.returncode:
            notes.append(f"pysnc (peer) skipped: not importable in {BENCH_VENV_PYTHON}")
        else:
            pysnc_python = BENCH_VENV_PYTHON

    print("ServiceNow sync benchmark (benchmarks/sync.py)")
    for line in machine_info(pysnc_python):
        print("  " + line)
    print(
        f"  case: {args.owners} people synced first, at level {OWNER_LEVEL} of the published "
        "ladder, who own the incidents (candidates, events and suggestions written)"
        if args.owners
        else "  case: nobody owns an incident (--owners 0: work items only)"
    )
    print(
        f"  sizes {', '.join(size_label(n) for n in sizes)}; page size {PAGE_SIZE}; "
        f"repeat {repeat} (median wall, max RSS); every measurement in a fresh process",
        flush=True,
    )

    tmp = Path(tempfile.mkdtemp(prefix="ladder-bench-"))
    databases: dict[str, Sqlite | Postgres] = {}
    postgres: Postgres | None = None
    try:
        sqlite = Sqlite(tmp)
        sqlite.prepare_template()
        databases["sqlite"] = sqlite
        if args.skip_postgres:
            notes.append("postgresql skipped: --skip-postgres")
        else:
            try:
                postgres = Postgres()
                postgres.prepare_template()
                databases["postgresql"] = postgres
                print(f"  PostgreSQL {postgres.version} at {PG_URL}", flush=True)
            except Exception as exc:  # unreachable server, missing rights, no psycopg
                postgres = None
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                notes.append(
                    f"postgresql skipped: {PG_URL} not usable ({type(exc).__name__}: {reason})"
                )
        for note in notes:
            print("  " + note)
        print(flush=True)

        results: dict[tuple[int, str], dict] = {}
        for size in sizes:
            results.update(measure_size(size, repeat, tmp, databases, pysnc_python, args, crashed))
        latency: dict[str, dict] = {}
        if args.latency_ms > 0:
            latency = measure_latency(tmp, databases, args, crashed)
    finally:
        if postgres is not None:
            try:
                postgres.drop_template()
            except Exception as exc:  # noqa: BLE001 (cleanup; report and go on)
                print(f"could not drop {PG_TEMPLATE}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nload average {load_average()} at the end")
    print_table(sizes, list(databases), pysnc_python is not None, results)
    print_targets(sizes, list(databases), pysnc_python is not None, results)
    if latency:
        print_latency(latency, args)
    if crashed:
        print("\nCRASHED:")
        for message in crashed:
            print("  " + message.replace("\n", "\n    "))
        return 1
    return 0


def make_dataset(size: int, owners: int, path: Path) -> None:
    """The emulator's dataset, made in a process of its own: the parent stays small."""
    role = ["--role", "dataset", "--size", str(size), "--owners", str(owners), "--out", str(path)]
    run_child(PROJECT_PYTHON, role, child_env())


def measure_size(
    size: int,
    repeat: int,
    tmp: Path,
    databases: dict,
    pysnc_python: Path | None,
    args: argparse.Namespace,
    crashed: list[str],
) -> dict[tuple[int, str], dict]:
    label = size_label(size)
    started = time.perf_counter()
    dataset_path = tmp / f"dataset-{size}.json"
    make_dataset(size, args.owners, dataset_path)
    emulator = EmulatorProcess(dataset_path)
    print(
        f"[{label}] dataset {dataset_path.stat().st_size / 2**20:.1f} MB, emulator at "
        f"{emulator.url} ({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    samples: dict[str, list[dict]] = {}
    try:
        warm_up(emulator.url)
        for rep in range(repeat):
            configs: list[tuple[str, Path, list[str], Sqlite | Postgres | None]] = [
                ("floor", PROJECT_PYTHON, ["--role", "floor"], None)
            ]
            for name, db in databases.items():
                role = ["--role", "sync", "--owners", str(args.owners)]
                if args.profile:
                    Path(args.profile).mkdir(parents=True, exist_ok=True)
                    target = Path(args.profile).resolve() / f"sync-{name}-{label}.pstats"
                    role += ["--profile-to", str(target)]
                configs.append((name, PROJECT_PYTHON, role, db))
                write_role = ["--role", "write", "--dataset", str(dataset_path)]
                configs.append((f"{name} write", PROJECT_PYTHON, write_role, db))
            if pysnc_python is not None:
                configs.append(("pysnc", pysnc_python, ["--role", "pysnc"], None))
            for name, python, role, db in configs:
                try:
                    env = child_env(db.fresh() if db is not None else None)
                    cpu_before = emulator.cpu_seconds()
                    result = run_child(python, [*role, "--url", emulator.url], env)
                    # Includes the untimed users sync before an owned run (a few requests).
                    result["emulator_cpu"] = emulator.cpu_seconds() - cpu_before
                except (MeasurementError, subprocess.TimeoutExpired) as exc:
                    crashed.append(f"{label} {name}: {exc}")
                    print(f"[{label}] {name}: CRASHED (details at the end)", flush=True)
                    continue
                samples.setdefault(name, []).append(result)
                owned = (
                    f", {result['owned']} owned, {result['evidence_created']} candidates"
                    if "owned" in result
                    else ""
                )
                cpu = (
                    f", CPU {result['cpu']:.2f} s here + {result['cpu_children']:.2f} s "
                    "fetching process"
                    if "cpu" in result
                    else ""
                )
                print(
                    f"[{label}] {name}{f' #{rep + 1}' if repeat > 1 else ''}: "
                    f"{result['wall']:.2f} s, {result['rows']} rows{owned}, "
                    f"peak RSS {result['rss_peak']:.0f} MB, "
                    f"emulator CPU {result['emulator_cpu']:.2f} s{cpu}",
                    flush=True,
                )
    finally:
        emulator.stop()
        dataset_path.unlink(missing_ok=True)
    out = {}
    for name, runs in samples.items():
        merged = dict(runs[0])
        merged["wall"] = statistics.median(r["wall"] for r in runs)
        merged["walls"] = [r["wall"] for r in runs]
        merged["rss_peak"] = max(r["rss_peak"] for r in runs)
        merged["emulator_cpu"] = statistics.median(r["emulator_cpu"] for r in runs)
        if "incremental" in merged:
            merged["incremental"] = dict(merged["incremental"])
            merged["incremental"]["requests"] = max(r["incremental"]["requests"] for r in runs)
        out[(size, name)] = merged
    return out


class Workers:
    """`--workers` Celery worker processes (prefork, one process each, as deployed) on one
    database and a Redis broker of the benchmark's own, started before the clock."""

    BROKER = "redis://127.0.0.1:6379/9"

    def __init__(self, database_url: str, count: int, log: Path):
        env = child_env(database_url)
        env.update(CELERY_BROKER_URL=self.BROKER, CONN_MAX_AGE="0")
        self.env = env
        self.log = log.open("w")
        self.proc = subprocess.Popen(  # noqa: S603
            [str(PROJECT_PYTHON), "-m", "celery", "-A", "ladder_tracker", "worker",
             f"--concurrency={count}", "--prefetch-multiplier=1", "--without-gossip",
             "--without-mingle", "--loglevel=WARNING", "--purge"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        ping = [str(PROJECT_PYTHON), "-m", "celery", "-A", "ladder_tracker", "inspect", "ping"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a worker answers (sklearn imported: warm)
            probe = subprocess.run(ping, cwd=ROOT, env=env, capture_output=True, timeout=60)  # noqa: S603
            if probe.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(1)
        self.stop()
        raise MeasurementError(f"the Celery workers did not start (see {log})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def measure_latency(tmp: Path, databases: dict, args: argparse.Namespace, crashed: list[str]):
    """The same sync against an instance `--latency-ms` away: the floor (pages one after
    another, as a single stream must), the single-stream sync, and a backfill on
    `--workers` workers (PostgreSQL and a broker: it needs several writers)."""
    size, ms = args.latency_size, args.latency_ms
    label = f"{size_label(size)} @{ms:.0f}ms"
    dataset_path = tmp / "dataset-latency.json"
    make_dataset(size, args.owners, dataset_path)
    emulator = EmulatorProcess(dataset_path, latency_ms=ms)
    out: dict[str, dict] = {}

    def measure(name, role, database_url=None):
        try:
            cpu_before = emulator.cpu_seconds()
            result = run_child(
                PROJECT_PYTHON, [*role, "--url", emulator.url], child_env(database_url)
            )
            result["emulator_cpu"] = emulator.cpu_seconds() - cpu_before
        except (MeasurementError, subprocess.TimeoutExpired) as exc:
            crashed.append(f"{label} {name}: {exc}")
            print(f"[{label}] {name}: CRASHED (details at the end)", flush=True)
            return
        out[name] = result
        print(f"[{label}] {name}: {result['wall']:.2f} s, {result['rows']} rows", flush=True)

    try:
        warm_up(emulator.url)
        measure("floor", ["--role", "floor"])
        for name, db in databases.items():
            measure(f"{name} single stream", ["--role", "sync", "--owners", str(args.owners)],
                    db.fresh())  # fmt: skip
        pg = databases.get("postgresql")
        if pg is None:
            print(f"[{label}] backfill skipped: it needs PostgreSQL", flush=True)
        else:
            url = pg.fresh()
            try:
                workers = Workers(url, args.workers, tmp / "workers.log")
            except MeasurementError as exc:
                crashed.append(f"{label} backfill: {exc}")
            else:
                try:
                    env_role = ["--role", "backfill", "--owners", str(args.owners)]
                    env_role += ["--windows", str(args.windows), "--workers", str(args.workers)]
                    try:
                        cpu_before = emulator.cpu_seconds()
                        env = dict(workers.env)
                        result = run_child(PROJECT_PYTHON, [*env_role, "--url", emulator.url], env)
                        result["emulator_cpu"] = emulator.cpu_seconds() - cpu_before
                        out["postgresql backfill"] = result
                        print(
                            f"[{label}] postgresql backfill ({result['windows']} windows, "
                            f"{args.workers} workers): {result['wall']:.2f} s, "
                            f"{result['rows']} rows",
                            flush=True,
                        )
                    except (MeasurementError, subprocess.TimeoutExpired) as exc:
                        crashed.append(f"{label} backfill: {exc}")
                finally:
                    workers.stop()
    finally:
        emulator.stop()
        dataset_path.unlink(missing_ok=True)
    return out


def print_latency(results: dict[str, dict], args: argparse.Namespace) -> None:
    ms = args.latency_ms
    print(f"\nlatency run: {size_label(args.latency_size)} incidents, {ms:.0f} ms (+/- "
          f"{ms / 10:.0f}) a request, page size {PAGE_SIZE}")  # fmt: skip
    floor = results.get("floor")
    for name, r in results.items():
        ratio = f"{r['wall'] / floor['wall']:.2f}x the latency floor" if floor else ""
        extra = f", {r['requests']} requests" if "requests" in r else ""
        print(f"  {name:<28}{r['wall']:>8.2f} s  {ratio}{extra}, emulator CPU "
              f"{r['emulator_cpu']:.2f} s")  # fmt: skip
    print("targets (latency)")
    lines = []
    for name, r in results.items():
        if name.endswith("single stream") and floor:
            ratio = r["wall"] / floor["wall"]
            lines.append((ratio <= 1.05, f"{name} <= 1.05x the latency floor: {ratio:.2f}"))
    single, backfill = results.get("postgresql single stream"), results.get("postgresql backfill")
    if single and backfill:
        ratio = backfill["wall"] / single["wall"]
        lines.append(
            (ratio <= 0.35, f"{args.workers}-worker backfill <= 0.35x the single stream "
             f"(postgresql): {backfill['wall']:.2f} s / {single['wall']:.2f} s = {ratio:.2f}")
        )  # fmt: skip
    else:
        lines.append((None, "backfill vs single stream: not measured"))
    for ok, text in lines:
        verdict = "n/a " if ok is None else ("PASS" if ok else "MISS")
        print(f"  {verdict}  {text}")


def warm_up(url: str) -> None:
    """One small request first, so the first measured process pays no cold-start cost."""
    from servicenow.client import ClientConfig, ServiceNowClient

    client = ServiceNowClient(
        ClientConfig(instance_url=url, username=USERNAME, password=PASSWORD, allow_local=True)
    )
    try:
        client.get_page("incident", fields=["sys_id"], limit=1)
    finally:
        client.close()


def print_table(sizes: list[int], dbs: list[str], peer: bool, results: dict) -> None:
    names = ["floor", *dbs, *(f"{db} write" for db in dbs)] + (["pysnc"] if peer else [])
    print()
    header = (
        f"{'size':<6}{'target':<24}{'wall s':>9}{'rows/s':>10}{'peak RSS MB':>13}{'emu CPU s':>11}"
        f"{'ratio to floor':>16}   {'full: rows / requests':<22}{'incremental (nothing changed)'}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        floor = results.get((size, "floor"))
        for name in names:
            r = results.get((size, name))
            label = {"pysnc": "pysnc (peer)"}.get(name, name.replace(" write", " write only"))
            if r is None:
                print(f"{size_label(size):<6}{label:<24}{'(no result)':>9}")
                continue
            rate = r["rows"] / r["wall"] if r["wall"] else 0.0
            ratio = f"{r['wall'] / floor['wall']:.2f}" if floor and name != "floor" else ""
            if name == "floor":
                ratio = "1.00"
            full = f"{r['rows']} / {r['requests']}" if "requests" in r else f"{r['rows']} / -"
            incr = ""
            if "incremental" in r:
                i = r["incremental"]
                incr = f"{i['requests']} requests, {i['rows']} rows re-read, {i['wall']:.2f} s"
            print(
                f"{size_label(size):<6}{label:<24}{r['wall']:>9.2f}{rate:>10.0f}"
                f"{r['rss_peak']:>13.1f}{r.get('emulator_cpu', float('nan')):>11.2f}"
                f"{ratio:>16}   {full:<22}{incr}"
            )
    extra = []
    for (size, name), r in sorted(results.items()):
        if name in dbs and r.get("stored") != r.get("rows"):
            extra.append(
                f"  note: {size_label(size)} {name} stored {r.get('stored')} work items "
                f"of {r.get('rows')} rows read"
            )
        if name in dbs and "fields" in r and r["fields"] != work_item_fields():
            extra.append(
                f"  note: the sync asked for fields {r['fields']}, the floor and peer for "
                f"{work_item_fields()}"
            )
        if name == "pysnc" and r.get("notes"):
            extra.append(f"  pysnc {r.get('version')}: " + "; ".join(r["notes"]))
        if len(r.get("walls", [])) > 1:
            walls = ", ".join(f"{w:.2f}" for w in r["walls"])
            extra.append(f"  {size_label(size)} {name} walls: {walls}")
    rss_start = {f"{size_label(s)} {n}": r["rss_start"] for (s, n), r in sorted(results.items())}
    if rss_start:
        extra.append(
            "  RSS before the measured work (MB): "
            + ", ".join(f"{k} {v:.0f}" for k, v in rss_start.items())
        )
    for line in dict.fromkeys(extra):
        print(line)


def print_targets(sizes: list[int], dbs: list[str], peer: bool, results: dict) -> None:
    print("\ntargets")
    lines: list[tuple[bool | None, str]] = []
    big, small = max(sizes), min(sizes)
    for db in dbs:
        r, f = results.get((big, db)), results.get((big, "floor"))
        if r and f:
            ratio = r["wall"] / f["wall"]
            others = ", ".join(
                f"{size_label(s)} {results[(s, db)]['wall'] / results[(s, 'floor')]['wall']:.2f}"
                for s in sizes
                if s != big and (s, db) in results and (s, "floor") in results
            )
            lines.append(
                (
                    ratio <= TARGET_RATIO,
                    f"sync / floor wall <= {TARGET_RATIO} ({db}, {size_label(big)}): "
                    f"{r['wall']:.2f} s / {f['wall']:.2f} s = {ratio:.2f}"
                    + (f"  (also {others})" if others else ""),
                )
            )
        else:
            lines.append((None, f"sync / floor ratio ({db}): no result"))
    for db in dbs:
        a, b = results.get((small, db)), results.get((big, db))
        if small == big:
            lines.append((None, f"peak RSS growth ({db}): needs two sizes"))
        elif a and b:
            growth = b["rss_peak"] / a["rss_peak"] - 1
            lines.append(
                (
                    growth <= TARGET_RSS_GROWTH,
                    f"peak RSS growth {size_label(small)} -> {size_label(big)} <= "
                    f"{TARGET_RSS_GROWTH:.0%} ({db}): {a['rss_peak']:.1f} MB -> "
                    f"{b['rss_peak']:.1f} MB = {growth:+.1%}",
                )
            )
        else:
            lines.append((None, f"peak RSS growth ({db}): no result"))
    if peer:
        for size in sizes:
            p = results.get((size, "pysnc"))
            for db in dbs:
                r = results.get((size, db))
                if r and p:
                    lines.append(
                        (
                            r["wall"] < p["wall"],
                            f"sync faster than PySNC's fetch ({db}, {size_label(size)}): "
                            f"{r['wall']:.2f} s vs {p['wall']:.2f} s "
                            f"({p['wall'] / r['wall']:.2f}x)",
                        )
                    )
                else:
                    lines.append((None, f"sync vs PySNC ({db}, {size_label(size)}): no result"))
    else:
        lines.append((None, "sync faster than PySNC's fetch: not measured (no peer)"))
    for size in sizes:
        for db in dbs:
            r = results.get((size, db))
            if r:
                n = r["incremental"]["requests"]
                lines.append(
                    (
                        n <= TARGET_INCREMENTAL_REQUESTS,
                        f"incremental run, nothing changed, <= {TARGET_INCREMENTAL_REQUESTS} "
                        f"Table API requests ({db}, {size_label(size)}): {n}",
                    )
                )
    for ok, text in lines:
        verdict = "n/a " if ok is None else ("PASS" if ok else "MISS")
        print(f"  {verdict}  {text}")


if __name__ == "__main__":
    sys.exit(main())
