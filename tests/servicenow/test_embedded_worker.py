"""The embedded default with a real worker: nothing waits for a sync.

A `runserver` and a real `celery -A ladder_tracker worker` on kombu's SQLAlchemy broker (a
SQLite file), both on a SQLite database file of their own (tests/embedded_stack.py), sync
from the emulator over real HTTP. "Sync now" (the API's) answers 202 at once with a queued
run; the worker, not the web process, runs it to the end. Then the other embedded runtime:
eager tasks and no worker at all still answer at once (the run goes to a server thread).
Neither touches the suite's own database, so both run in CI's two passes alike.
"""

import os
import subprocess
import sys
import time

import pytest

from servicenow.emulator import Emulator
from tests.embedded_stack import ROOT, EmbeddedStack
from tests.servicenow.conftest import make_dataset

INCIDENTS = 400
PAGE_SIZE = 25
LATENCY_MS = 100  # 16 pages (+ counts) of >= 100 ms each: the run takes about two seconds


@pytest.fixture
def slow_emulator():
    emu = Emulator(make_dataset(incidents=INCIDENTS, users=4), latency_ms=LATENCY_MS,
                   latency_jitter_ms=20).start()  # fmt: skip
    yield emu
    emu.stop()


def _sync_now(stack: EmbeddedStack) -> tuple[dict, float]:
    started = time.monotonic()
    response = stack.api("POST", f"servicenow/sources/{stack.source_id}/sync/", json={})
    elapsed = time.monotonic() - started
    assert response.status_code == 202, response.text
    return response.json(), elapsed


def test_sync_now_answers_at_once_and_a_real_worker_runs_it_to_the_end(tmp_path, slow_emulator):
    with EmbeddedStack(tmp_path, slow_emulator.url, worker=True, page_size=PAGE_SIZE) as stack:
        # when the admin asks for a sync through the API
        accepted, elapsed = _sync_now(stack)

        # then the answer came at once, naming a queued run and where to poll it
        run_id = accepted["run"]
        assert accepted["status"] == "queued"
        assert accepted["url"] == f"{stack.url}/api/v1/servicenow/runs/{run_id}/"
        assert stack.run(run_id)["status"] in ("queued", "running")

        # and polling the run sees it move, then finish with every row
        seen = set()
        while (run := stack.run(run_id))["status"] in ("queued", "running"):
            seen.add((run["status"], run["pages"]))
            time.sleep(0.05)
        assert run["status"] == "succeeded", run["error"]
        assert (run["rows_seen"], run["created"]) == (INCIDENTS, INCIDENTS)
        assert any(status == "running" and pages > 0 for status, pages in seen), seen
        # the answer took less than the run itself (a blocking one takes the whole run)
        assert elapsed < run["duration_seconds"], (elapsed, run["duration_seconds"])
        assert slow_emulator.rows_served("incident") >= INCIDENTS

        # and it was the worker that ran it, not the web process
        worker_log = stack.log("worker")
        assert f"Connected to {stack.broker_url}" in worker_log
        assert "Task servicenow.sync_source[" in worker_log
        assert f"sync run {run_id} done: {INCIDENTS} rows" in worker_log
        assert f"servicenow.sync: sync run {run_id} done" not in stack.log("server")


def test_eager_without_a_worker_still_answers_at_once(tmp_path, slow_emulator):
    # given the embedded runtime with eager tasks and no worker process at all
    with EmbeddedStack(
        tmp_path, slow_emulator.url, worker=False, eager=True, page_size=PAGE_SIZE
    ) as stack:
        # when the admin asks for a sync
        accepted, elapsed = _sync_now(stack)

        # then the answer did not wait for the pages, and the run still completes (in a
        # thread of the server)
        assert accepted["status"] == "queued"
        assert stack.run(accepted["run"])["status"] in ("queued", "running")
        done = stack.wait_for_run(accepted["run"])
        assert elapsed < done["duration_seconds"], (elapsed, done["duration_seconds"])
        assert (done["status"], done["rows_seen"]) == ("succeeded", INCIDENTS), done["error"]
        assert f"servicenow.sync: sync run {done['id']} done" in stack.log("server")


def test_with_no_environment_the_worker_and_the_app_find_the_embedded_broker():
    # given a shell with none of the settings' variables (a fresh clone, nothing exported)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "BROKER_"))
    }
    code = (
        "from ladder_tracker.celery import app; from django.conf import settings; "
        "print(app.conf.broker_url); print(settings.CELERY_BROKER_URL); "
        "print(settings.CELERY_TASK_ALWAYS_EAGER); print(app.conf.result_backend)"
    )
    # when the Celery app (what `celery -A ladder_tracker worker` loads) reads its config
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip

    # then web process and worker share one queue: a SQLite file in var/, no server needed
    broker = f"sqla+sqlite:///{ROOT / 'var' / 'celery-broker.sqlite'}"
    results = f"db+sqlite:///{ROOT / 'var' / 'celery-results.sqlite'}"
    assert out == [broker, broker, "False", results]
