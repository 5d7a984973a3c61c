"""Resumable runs: a run that fails and retries (or is taken over) goes on from the last page
it committed, in every mode, and a failed run never loses what was already stored.

Over real HTTP against the emulator; the emulator's request log counts the rows it served.
In the embedded mode the runs retry inline; in CI's second pass the CI worker runs them.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from servicenow.emulator import Emulator
from servicenow.models import SyncCursor, SyncRun, WorkItem
from servicenow.services import connection_client, sync_run_request
from servicenow.sync.progress import Counters, RunContext, RunLost
from servicenow.sync.runs import sync_run_attempt, sync_run_execute, sync_run_start

from .conftest import make_connection, make_dataset, make_source, run_sync
from .test_sync_integration import assert_mirrors

pytestmark = pytest.mark.django_db(transaction=True)

HIBERNATE_EVERY_5TH = {"html": {"every": 5}}


@pytest.fixture
def quick_retries(settings):
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05


def attempt_here(source, mode: str) -> SyncRun:
    """One attempt in this process (as `manage.py servicenow_sync` runs it), so settings
    overridden here apply even where a Celery worker would otherwise take the run."""
    run = sync_run_request(source=source, mode=mode, enqueue=False)
    assert sync_run_attempt(run_id=run.pk) == "failed"
    return SyncRun.objects.get(pk=run.pk)


def test_a_full_run_under_hibernation_resumes_and_reads_each_row_about_once(quick_retries):
    # given 3,000 incidents behind an instance that hibernates on every 5th request
    with Emulator(make_dataset(incidents=3000)) as emu:
        source = make_source(make_connection(emu, page_size=100), "incident")
        emu.set_faults_dict(HIBERNATE_EVERY_5TH)

        # when a full run is requested
        run = run_sync(source, "full")

        # then it gets there, over many attempts, each going on from the last page
        assert run.status == "succeeded", run.error
        assert run.attempts >= 6  # 30 pages, four requests between hibernations
        assert run.failures_in_a_row == 1  # every failed attempt had moved forward
        assert run.created == 3000
        served = emu.rows_served("incident")
        assert 3000 <= served <= 1.2 * 3000, served
        emu.set_faults_dict(None)
        assert_mirrors(emu, source)


def test_a_failed_full_run_keeps_what_was_synced(quick_retries, settings):
    # given a source fully synced, with its cursor
    settings.SERVICENOW_RUN_RETRIES = 0
    with Emulator(make_dataset(incidents=300)) as emu:
        source = make_source(make_connection(emu, page_size=50), "incident")
        assert run_sync(source, "full").status == "succeeded"
        before = dict(WorkItem.objects.filter(source=source).values_list("sys_id", "sys_mod_count"))
        cursor = SyncCursor.objects.get(source=source)

        # when a second full run fails for good after two pages (its first request reads the
        # choice labels from sys_choice, as every full run does)
        emu.set_faults_dict({"html": {"every": 4}})
        failed = attempt_here(source, "full")

        # then it failed, stored whole pages, and no work item was lost or marked deleted
        assert failed.status == "failed"
        assert "HTML page" in failed.error
        assert (failed.pages, failed.updated, failed.resume_ts is not None) == (2, 0, True)
        after = dict(WorkItem.objects.filter(source=source).values_list("sys_id", "sys_mod_count"))
        assert after == before
        assert not WorkItem.objects.filter(source=source, deleted_at__isnull=False).exists()
        # and the next incremental run still starts from where the source had got to
        emu.set_faults_dict(None)
        assert SyncCursor.objects.get(source=source).hwm_ts <= cursor.hwm_ts
        assert run_sync(source).status == "succeeded"
        assert_mirrors(emu, source)


def test_a_reconcile_resumes_and_tombstones_exactly_the_deleted_rows(quick_retries):
    # given a synced table, then rows deleted all over it with no audit trail we can read
    dataset = make_dataset(incidents=600)
    dataset["credentials"] = {"users": [{
        "user_name": "integration", "password": "integration-pass",
        "forbidden_tables": ["sys_audit_delete"],
    }]}  # fmt: skip
    with Emulator(dataset) as emu:
        source = make_source(make_connection(emu, page_size=50), "incident")
        assert run_sync(source, "full").status == "succeeded"
        ids = sorted(r["sys_id"] for r in emu.store.rows("incident"))
        deleted = set(ids[::37]) | {ids[0], ids[-1]}  # both ends of the range too
        for sys_id in deleted:
            emu.store.delete("incident", sys_id)
        emu.clear_log()

        # when a reconcile runs under hibernation every 5th request
        emu.set_faults_dict(HIBERNATE_EVERY_5TH)
        run = run_sync(source, "reconcile")

        # then it resumed (no page read twice beyond the failed ones) and marked just those
        assert run.status == "succeeded", run.error
        assert run.attempts >= 3
        assert emu.rows_served("incident") == 600 - len(deleted)
        gone = WorkItem.objects.filter(source=source, deleted_at__isnull=False)
        assert set(gone.values_list("sys_id", flat=True)) == deleted
        assert run.deleted == len(deleted)
        emu.set_faults_dict(None)
        assert_mirrors(emu, source)


def test_a_failed_reconcile_tombstones_only_what_it_compared(quick_retries, settings):
    # given a synced table and rows deleted at its start and its end
    settings.SERVICENOW_RUN_RETRIES = 0
    with Emulator(make_dataset(incidents=300)) as emu:
        source = make_source(make_connection(emu, page_size=50), "incident", track_deletes=False)
        assert run_sync(source, "full").status == "succeeded"
        ids = sorted(r["sys_id"] for r in emu.store.rows("incident"))
        early, late = ids[3], ids[-3]
        emu.store.delete("incident", early)
        emu.store.delete("incident", late)

        # when a reconcile fails for good after two pages of 50
        emu.set_faults_dict({"html": {"every": 3}})
        run = attempt_here(source, "reconcile")

        # then the row in the compared range is gone, the one beyond it untouched
        assert run.status == "failed"
        assert run.resume_sys_id == ids[100]  # the last sys_id of page two (one row gone)
        gone = set(
            WorkItem.objects.filter(source=source, deleted_at__isnull=False).values_list(
                "sys_id", flat=True
            )
        )
        assert gone == {early}


def test_an_attempt_that_lost_its_run_writes_nothing(quick_retries):
    # given a claimed run whose worker is then taken to be dead and the run taken over
    with Emulator(make_dataset(incidents=120)) as emu:
        source = make_source(make_connection(emu, page_size=50), "incident")
        queued = sync_run_request(source=source, mode="full", enqueue=False)
        old = sync_run_start(run_id=queued.pk, stale_after=timedelta(seconds=90))
        SyncRun.objects.filter(pk=queued.pk).update(
            heartbeat_at=timezone.now() - timedelta(minutes=5)
        )
        new = sync_run_start(run_id=queued.pk, stale_after=timedelta(seconds=90))
        assert (old.attempts, new.attempts) == (1, 2)

        # when the old worker (only slow, not dead) goes on with its page
        client = connection_client(connection=source.connection)
        try:
            with pytest.raises(RunLost):
                sync_run_execute(run=old, client=client)
        finally:
            client.close()

        # then its page rolled back and the run is still the new attempt's
        assert WorkItem.objects.filter(source=source).count() == 0
        run = SyncRun.objects.get(pk=queued.pk)
        assert (run.status, run.attempts, run.pages, run.resume_ts) == ("running", 2, 0, None)
        assert "attempt 1 stopped answering; taking the run over" in run.log


def test_a_live_worker_keeps_its_heartbeat_while_a_slow_page_is_in_flight(settings):
    # given a stale window of 1.5 s (a beat every 0.5 s) and pages that take 1.6 s each
    settings.SERVICENOW_STALE_RUN_SECONDS = 1.5
    with Emulator(make_dataset(incidents=60)) as emu:
        emu.set_faults_dict({"slow": {"seconds": 1.6, "every": 1}})
        source = make_source(make_connection(emu, page_size=100), "incident")
        queued = sync_run_request(source=source, mode="full", enqueue=False)
        run = sync_run_start(run_id=queued.pk, stale_after=timedelta(seconds=1.5))
        claimed_at, beats = run.heartbeat_at, []
        original = RunContext.beat

        def beat(self):
            original(self)
            beats.append(SyncRun.objects.get(pk=run.pk).heartbeat_at)

        # when the run reads its one slow page
        client = connection_client(connection=source.connection)
        try:
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(RunContext, "beat", beat)
                sync_run_execute(run=run, client=client)
        finally:
            client.close()

        # then the heartbeat moved on while the page was in flight, and the run finished
        assert len(beats) >= 1
        assert beats == sorted(beats) and beats[0] > claimed_at
        assert SyncRun.objects.get(pk=run.pk).status == "succeeded"


def test_a_heartbeat_of_an_attempt_that_lost_its_run_stops_it():
    with Emulator(make_dataset(incidents=10)) as emu:
        source = make_source(make_connection(emu), "incident")
        queued = sync_run_request(source=source, mode="full", enqueue=False)
        run = sync_run_start(run_id=queued.pk, stale_after=timedelta(seconds=90))
        client = connection_client(connection=source.connection)
        try:
            ctx = RunContext(run, client, Counters.of_run(run), None)
            ctx.beat()  # holds the run: fine
            SyncRun.objects.filter(pk=run.pk).update(attempts=run.attempts + 1)
            with pytest.raises(RunLost):
                ctx.beat()
        finally:
            client.close()
