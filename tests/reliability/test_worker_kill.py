"""A real Celery worker is killed (SIGKILL) in the middle of a sync; a new run converges.

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
QUEUE = "reliability-kill"

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


def _start_worker(log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CONN_MAX_AGE": "0",
        "DJANGO_SETTINGS_MODULE": "ladder_tracker.settings.base",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "ladder_tracker", "worker", "--pool=solo",
         "-Q", QUEUE, "--hostname", f"kill-test-{os.getpid()}@%h", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_worker_killed_mid_run_then_rerun_converges(tmp_path, settings):
    settings.SERVICENOW_STALE_RUN_SECONDS = 1
    with Emulator(make_dataset(incidents=3000)) as emu:
        emu.set_faults_dict({"slow": {"seconds": 0.15, "every": 1}})
        source = make_source(make_connection(emu, page_size=100), "incident")
        run = sync_run_request(source=source, mode="full", enqueue=False)
        worker = _start_worker(tmp_path / "worker1.log")
        try:
            sync_source.apply_async(args=[run.pk], queue=QUEUE)
            _wait(lambda: SyncRun.objects.get(pk=run.pk).pages >= 3, 60, "three pages")
            os.kill(worker.pid, signal.SIGKILL)  # no cleanup of any kind
            worker.wait(timeout=10)
        finally:
            if worker.poll() is None:
                worker.kill()
        killed = SyncRun.objects.get(pk=run.pk)
        assert killed.status == "running"
        # what was committed is whole pages, matching the saved progress
        held = WorkItem.objects.filter(source=source).count()
        assert held % 100 == 0 and 300 <= held < 3000
        assert held == killed.created

        time.sleep(1.2)  # the dead run's heartbeat goes stale
        emu.set_faults_dict(None)
        rerun = sync_run_request(source=source, mode="incremental", enqueue=False)
        assert SyncRun.objects.get(pk=run.pk).status == "failed"
        worker = _start_worker(tmp_path / "worker2.log")
        try:
            sync_source.apply_async(args=[rerun.pk], queue=QUEUE)
            done = wait_for(rerun.pk, timeout=120)
        finally:
            worker.terminate()
            worker.wait(timeout=30)

        assert done.status == "succeeded", done.error
        assert_mirrors(emu, source)
        assert WorkItem.objects.filter(source=source).count() == 3000
