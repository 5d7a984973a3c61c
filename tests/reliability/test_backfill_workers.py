"""A backfill (a full run split into sys_created_on windows, servicenow/sync/backfill.py) on
two real Celery worker processes; one is SIGKILLed in the middle of a window, and that
window is taken over and resumes from its own last page.

Needs PostgreSQL and a broker (CI's second pass), as tests/reliability/test_worker_kill.py,
whose worker and beat helpers this uses. By hand:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/lt_backfill \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/5 \\
    .venv/bin/python -m pytest -p no:cacheprovider -q tests/reliability/test_backfill_workers.py
"""

import os
import signal
from collections import Counter

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum

from servicenow.emulator import Emulator
from servicenow.models import SyncRun, SyncWindow, WorkItem
from servicenow.services import sync_run_request
from servicenow.tasks import sync_source
from tests.reliability import test_worker_kill as stack
from tests.servicenow.conftest import make_connection, make_dataset, make_source, wait_for
from tests.servicenow.test_sync_integration import assert_mirrors

ROWS = 4000
PAGE = 50

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and a broker (CI's second pass): worker processes must "
        "share the test database",
    ),
]


def test_a_backfill_on_two_workers_mirrors_the_table_and_a_killed_window_resumes(tmp_path):
    with Emulator(make_dataset(incidents=ROWS)) as emu:
        # given 4,000 incidents in pages of 50, slow enough to kill a worker mid-window
        emu.set_faults_dict({"slow": {"seconds": 0.04, "every": 1}})
        source = make_source(make_connection(emu, page_size=PAGE), "incident")
        run = sync_run_request(source=source, mode="full", enqueue=False, windows=4, workers=4)
        beat = stack._start_beat(tmp_path)
        workers = [
            stack._start_worker(tmp_path / f"worker{i}.log", f"backfill-{i}") for i in (1, 2)
        ]
        try:
            # when the run is planned in 4 windows and both workers are inside one each
            sync_source.apply_async(args=[run.pk], queue=stack.QUEUE)

            def both_busy() -> bool:
                busy = SyncWindow.objects.filter(run=run, status="running", pages__gte=3)
                return busy.count() == 2

            stack._wait(both_busy, 90, "two windows three pages in")
            # and one worker is SIGKILLed (no cleanup of any kind)
            os.kill(workers[0].pid, signal.SIGKILL)
            workers[0].wait(timeout=10)
            done = wait_for(run.pk, timeout=180)
        finally:
            for process in workers:
                stack._stop(process)
            stack._stop(beat)

        # then the run succeeded, its windows summing to it
        assert done.status == "succeeded", done.error
        assert done.window_count == 4
        windows = list(done.windows.all())
        assert [w.status for w in windows] == ["succeeded"] * 4
        sums = done.windows.aggregate(
            **{n: Sum(n) for n in ("rows_seen", "created", "updated", "skipped_stale", "pages")}
        )
        assert (done.rows_seen, done.created, done.updated, done.skipped_stale) == (
            sums["rows_seen"],
            sums["created"],
            sums["updated"],
            sums["skipped_stale"],
        )
        assert done.created == ROWS
        assert done.pages >= sums["pages"]
        # the killed worker's window was taken over and went on from its last page
        taken = [w for w in windows if w.attempts >= 2]
        assert taken, [(w.index, w.attempts) for w in windows]
        assert "resumed after" in done.log
        # read again: the page in flight and its prefetch of each window cut off (the killed
        # one, and one per reclaim of the run beyond the closing pass), besides the
        # planning's 4 one-row requests
        cut_off = 1 + max(0, done.attempts - 2)
        served = emu.rows_served("incident")
        assert ROWS + 4 <= served <= ROWS + 4 + 2 * PAGE * cut_off, served
        emu.set_faults_dict(None)
        assert_mirrors(emu, source)
        pairs = Counter(WorkItem.objects.filter(source=source).values_list("table", "sys_id"))
        assert len(pairs) == ROWS and max(pairs.values()) == 1
        assert list(SyncRun.objects.filter(source=source).values_list("pk", flat=True)) == [run.pk]
