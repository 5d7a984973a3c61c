"""The reclaimer: active runs with no sign of life are resumed without anyone asking; live
ones, runs waiting out a retry and finished ones are left alone. The worker-process journey
(SIGKILL, restart, the run completes) is tests/reliability/test_worker_kill.py."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from servicenow import tasks
from servicenow.models import Connection, Source, SyncRun
from servicenow.services import connection_save, source_save, sync_runs_reclaim

pytestmark = pytest.mark.django_db

STALE = 90


@pytest.fixture
def enqueued(monkeypatch, settings):
    settings.SERVICENOW_STALE_RUN_SECONDS = STALE
    sent: list[int] = []
    monkeypatch.setattr(tasks.sync_source, "delay", sent.append)
    return sent


def a_source(name: str) -> Source:
    connection = connection_save(
        connection=Connection(name=name, instance_url="https://acme.service-now.com"),
        password="x",
    )
    return source_save(source=Source(connection=connection, name=name, table="incident"))


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


# id: (run status, seconds since its heartbeat, seconds since its retry was due, reclaimed?)
# None: not set. Times are taken when the test runs, not when the module is imported.
CASES = {
    "running, silent past the threshold": ("running", 91, None, True),
    "running, heartbeat fresh": ("running", 30, None, False),
    "queued, never started, message lost": ("queued", None, None, True),
    "queued for a retry that is due": ("queued", 200, 91, True),
    "queued, waiting out a retry": ("queued", 200, -60, False),
    # a backfill: one window waits out a backoff (the run's retry_at), others write pages
    "running, a window waiting out a retry": ("running", 200, -60, False),
    "running, retry long due but heartbeat fresh": ("running", 30, 200, False),
    "running, retry due and silent since": ("running", 120, 91, True),
    "failed long ago": ("failed", 3600, None, False),
    "succeeded long ago": ("succeeded", 3600, None, False),
}


@pytest.mark.parametrize("case", CASES.keys())
def test_reclaim_resumes_only_abandoned_runs(enqueued, django_capture_on_commit_callbacks, case):
    # given a run in that state
    status, heartbeat, retry, reclaimed = CASES[case]
    run = SyncRun.objects.create(
        source=a_source("A"),
        mode="full",
        status=status,
        heartbeat_at=None if heartbeat is None else ago(heartbeat),
        retry_at=None if retry is None else ago(retry),
    )
    if heartbeat is None:
        SyncRun.objects.filter(pk=run.pk).update(created_at=ago(STALE + 1))
    before = SyncRun.objects.get(pk=run.pk)

    # when the periodic task runs
    with django_capture_on_commit_callbacks(execute=True):
        result = tasks.sync_runs_reclaim()

    # then an abandoned run is queued again (same run, same mode) and enqueued once
    after = SyncRun.objects.get(pk=run.pk)
    if reclaimed:
        assert (result, enqueued) == ([run.pk], [run.pk])
        assert (after.status, after.mode, after.retry_at) == ("queued", "full", None)
        assert after.heartbeat_at > before.created_at
        assert "resuming from the last committed page" in after.log
        assert after.reclaim_at(timedelta(seconds=STALE)) > timezone.now()
    else:
        assert (result, enqueued) == ([], [])
        assert (after.status, after.heartbeat_at, after.log) == (
            before.status,
            before.heartbeat_at,
            "",
        )


def test_a_reclaimed_run_is_not_enqueued_again_by_the_next_beat(
    enqueued, django_capture_on_commit_callbacks
):
    run = SyncRun.objects.create(source=a_source("A"), status="running", heartbeat_at=ago(600))

    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.sync_runs_reclaim()
        second = tasks.sync_runs_reclaim()

    assert (first, second, enqueued) == ([run.pk], [], [run.pk])


def test_reclaim_looks_at_every_source(enqueued, django_capture_on_commit_callbacks):
    dead = [
        SyncRun.objects.create(source=a_source(name), status="running", heartbeat_at=ago(100))
        for name in ("A", "B")
    ]
    alive = SyncRun.objects.create(source=a_source("C"), status="running", heartbeat_at=ago(1))

    with django_capture_on_commit_callbacks(execute=True):
        reclaimed = sync_runs_reclaim()

    assert sorted(reclaimed) == sorted(enqueued) == [r.pk for r in dead]
    assert SyncRun.objects.get(pk=alive.pk).status == "running"


def test_the_reclaimer_is_on_the_beat_schedule_with_a_threshold_that_heals_in_two_minutes():
    entry = django_settings.CELERY_BEAT_SCHEDULE["servicenow-reclaim-abandoned-runs"]
    assert entry == {
        "task": "servicenow.sync_runs_reclaim",
        "schedule": django_settings.SERVICENOW_RECLAIM_INTERVAL_SECONDS,
    }
    assert tasks.sync_runs_reclaim.name == "servicenow.sync_runs_reclaim"
    # the defaults: a dead worker's run is taken over within two minutes
    worst = django_settings.SERVICENOW_STALE_RUN_SECONDS + entry["schedule"]
    assert worst <= 120
    # a delayed retry is delivered once: its countdown stays within the visibility timeout
    visibility = django_settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility > django_settings.SERVICENOW_RUN_RETRY_MAX_SECONDS
