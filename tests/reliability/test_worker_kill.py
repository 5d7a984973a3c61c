"""A real Celery worker is killed (SIGKILL) in the middle of a sync; with nobody asking, the
reclaimer (beat) hands the run to the restarted worker, which resumes it from its last page.

Needs what CI's second pass has: PostgreSQL (a worker process must share the test database)
and a broker. In the embedded mode (SQLite in memory, no broker) there is no worker process
to kill, so the test is not collected as runnable there; CI runs it on PostgreSQL + Redis.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from servicenow.emulator import Emulator
from servicenow.models import SyncRun, WorkItem
from servicenow.services import sync_run_request
from servicenow.tasks import sync_source
from tests.servicenow.conftest import make_connection, make_dataset, make_source, wait_for
from tests.servicenow.test_sync_integration import assert_mirrors

ROOT = Path(__file__).resolve().parents[2]
# A queue of this test's own (CI's worker serves the default one on the same broker): the
# beat and workers started here get it as their default queue, so the reclaim task and the
# run it re-enqueues stay with them.
QUEUE = f"reliability-kill-{os.getpid()}"
# Small, so the journey takes seconds: no sign of life for 3 s is a dead worker; the
# reclaimer looks every second.
STALE_SECONDS = "3"
RECLAIM_EVERY_SECONDS = "1"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and a broker (CI's second pass): a worker process must "
        "share the test database",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    return (
        f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}"
    )


def _celery(args: list[str], log: Path) -> subprocess.Popen:
    """A celery process on the test database (pytest-django's test_<name>), as .ci/run's."""
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CONN_MAX_AGE": "0",
        "DJANGO_SETTINGS_MODULE": "ladder_tracker.settings.base",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "SERVICENOW_STALE_RUN_SECONDS": STALE_SECONDS,
        "SERVICENOW_RECLAIM_INTERVAL_SECONDS": RECLAIM_EVERY_SECONDS,
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ladder_tracker", *args, "--loglevel=INFO"],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _start_worker(log: Path, name: str) -> subprocess.Popen:
    return _celery(
        ["worker", "--pool=solo", "-Q", QUEUE, "--hostname", f"{name}-{os.getpid()}@%h"], log
    )


def _start_beat(tmp_path: Path) -> subprocess.Popen:
    # celery's file scheduler: the reclaim entry comes from CELERY_BEAT_SCHEDULE either way,
    # and the test database's django-celery-beat tables stay as the tests left them
    schedule = tmp_path / "beat-schedule"
    args = ["beat", "-S", "celery.beat:PersistentScheduler", "-s", str(schedule)]
    return _celery(args, tmp_path / "beat.log")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_a_killed_worker_is_replaced_and_the_run_completes_with_nobody_asking(tmp_path):
    with Emulator(make_dataset(incidents=3000)) as emu:
        # given a full run of 3,000 rows in pages of 100, slow enough to kill in the middle
        emu.set_faults_dict({"slow": {"seconds": 0.15, "every": 1}})
        source = make_source(make_connection(emu, page_size=100), "incident")
        run = sync_run_request(source=source, mode="full", enqueue=False)
        beat = _start_beat(tmp_path)
        worker = _start_worker(tmp_path / "worker1.log", "kill-test-1")
        try:
            sync_source.apply_async(args=[run.pk], queue=QUEUE)
            _wait(lambda: SyncRun.objects.get(pk=run.pk).pages >= 3, 60, "three pages")

            # when its worker is SIGKILLed (no cleanup of any kind)
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            killed = SyncRun.objects.get(pk=run.pk)
            # what was committed is whole pages, matching the saved progress and position
            held = WorkItem.objects.filter(source=source).count()
            assert held % 100 == 0 and 300 <= held < 3000
            assert held == killed.created
            assert killed.resume_ts is not None
            assert killed.status in ("running", "queued")  # queued: already reclaimed

            # and a worker is started again, and nobody presses Sync now
            worker = _start_worker(tmp_path / "worker2.log", "kill-test-2")
            done = wait_for(run.pk, timeout=90)
        finally:
            _stop(worker)
            _stop(beat)

        # then the same run completed, taken over and resumed from where it had got to
        assert done.status == "succeeded", done.error
        assert list(SyncRun.objects.filter(source=source).values_list("pk", flat=True)) == [run.pk]
        assert done.attempts >= 2
        assert "resuming from the last committed page" in done.log
        assert done.created == 3000
        # at most the page in flight and its prefetch are read again
        assert emu.rows_served("incident") <= 1.2 * 3000
        emu.set_faults_dict(None)
        assert_mirrors(emu, source)
        assert WorkItem.objects.filter(source=source).count() == 3000
