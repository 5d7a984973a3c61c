"""Sync health an admin can watch: per source last success, lag, last error, failures in a
row and recent runs (sources API, Sync page); the admins' mail on the third failed run in
a row and on recovery, one each; the HTTP counts each run keeps for /metrics."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from servicenow.models import Source, SourceHttpCount, SyncCursor, SyncRun, SyncRunHttpCount
from servicenow.selectors import RECENT_RUNS_PER_SOURCE
from servicenow.sync.health import run_http_counts_add, source_failure_alert
from tests.factories import AdminUserFactory, UserFactory

from .test_api import SOURCES, acme, plain_source


def now():
    return timezone.now().replace(microsecond=0)


def finished_run(source: Source, status: str, *, ago_minutes: float, **fields) -> SyncRun:
    """A run of `source` that ended `ago_minutes` ago, after `seconds` (default 30)."""
    end = now() - timedelta(minutes=ago_minutes)
    seconds = fields.pop("seconds", 30)
    return SyncRun.objects.create(
        source=source,
        status=status,
        mode=fields.pop("mode", SyncRun.Mode.INCREMENTAL),
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        upper_bound=fields.pop("upper_bound", end - timedelta(seconds=seconds)),
        **fields,
    )


# --- the sources API ------------------------------------------------------------------------


@pytest.mark.django_db
def test_sources_api_reports_each_sources_health(admin_api):
    # given a success an hour ago, then two failures; the cursor is older than the success
    source = plain_source(acme())
    ok = finished_run(source, "succeeded", ago_minutes=60, rows_seen=40, created=3, seconds=12)
    finished_run(source, "failed", ago_minutes=30, error="503 Service Unavailable")
    last = finished_run(source, "failed", ago_minutes=10, error="401 User Not Authenticated")
    SyncCursor.objects.create(source=source, hwm_ts=now() - timedelta(hours=5))

    # when an admin reads the source
    body = admin_api.get(f"{SOURCES}{source.pk}/").json()

    # then it says when it last worked, how far behind it is and what went wrong
    assert body["last_success_at"] == ok.finished_at.isoformat().replace("+00:00", "Z")
    # a quiet table: read up to the success's upper bound, not just to its newest row
    assert body["cursor_at"] == ok.upper_bound.isoformat().replace("+00:00", "Z")
    expected_lag = (timezone.now() - ok.upper_bound).total_seconds()
    assert expected_lag - 60 < body["lag_seconds"] <= expected_lag
    assert body["last_error"] == "401 User Not Authenticated"
    assert body["last_error_at"] == last.finished_at.isoformat().replace("+00:00", "Z")
    assert body["consecutive_failures"] == 2
    assert body["failure_alerted_at"] is None
    assert [(r["status"], r["duration_seconds"]) for r in body["recent_runs"]] == [
        ("failed", 30.0),
        ("failed", 30.0),
        ("succeeded", 12.0),
    ]
    assert {k: body["recent_runs"][2][k] for k in ("id", "rows_seen", "created", "error")} == {
        "id": ok.pk,
        "rows_seen": 40,
        "created": 3,
        "error": "",
    }


@pytest.mark.django_db
def test_lag_falls_back_to_the_cursor_and_ignores_reconcile_and_failed_runs(admin_api):
    # given only a reconcile success and a failed run with an upper bound, and a cursor
    source = plain_source(acme())
    finished_run(source, "succeeded", ago_minutes=2, mode="reconcile")
    finished_run(source, "failed", ago_minutes=1)
    hwm = now() - timedelta(hours=2)
    SyncCursor.objects.create(source=source, hwm_ts=hwm)

    body = admin_api.get(f"{SOURCES}{source.pk}/").json()

    assert body["cursor_at"] == hwm.isoformat().replace("+00:00", "Z")
    assert 7200 <= body["lag_seconds"] < 7200 + 60
    assert body["consecutive_failures"] == 1  # the newest finished run failed


@pytest.mark.django_db
def test_recent_runs_are_the_newest_few(admin_api):
    source = plain_source(acme())
    runs = [finished_run(source, "succeeded", ago_minutes=100 - n) for n in range(8)]

    body = admin_api.get(f"{SOURCES}{source.pk}/").json()

    assert [r["id"] for r in body["recent_runs"]] == [
        r.pk for r in reversed(runs[-RECENT_RUNS_PER_SOURCE:])
    ]
    assert body["consecutive_failures"] == 0


@pytest.mark.django_db
@pytest.mark.parametrize("sources", [1, 6])
def test_the_sources_list_takes_the_same_queries_whatever_the_size(
    admin_api, django_assert_num_queries, sources
):
    connection = acme()
    for n in range(sources):
        source = plain_source(connection, f"table{n}")
        for m in range(7):
            finished_run(source, "failed" if m % 2 else "succeeded", ago_minutes=50 - m)

    # count, page (health annotated), recent runs of the page's sources
    with django_assert_num_queries(3):
        body = admin_api.get(SOURCES).json()

    assert [len(s["recent_runs"]) for s in body["results"]] == [5] * sources


# --- the failure-streak mail ----------------------------------------------------------------


@pytest.fixture
def admins(db):
    """Two admins with addresses, one without, and a non-admin who must get nothing."""
    AdminUserFactory(username="ada")
    AdminUserFactory(username="bob")
    AdminUserFactory(username="noaddress", email="")
    UserFactory(username="erin")
    return ["ada@example.com", "bob@example.com"]


@pytest.mark.django_db
def test_mail_on_the_third_failure_in_a_row_and_on_recovery_only(
    admins, django_capture_on_commit_callbacks
):
    source = plain_source(acme(), name="Incidents")
    outcomes = []
    # failed ×5 (the third alerts), succeeded (recovers), succeeded, failed ×3 (alerts again)
    sequence = ["failed"] * 5 + ["succeeded"] * 2 + ["failed"] * 3
    for n, status in enumerate(sequence):
        finished_run(source, status, ago_minutes=100 - n, error=f"503 Service Unavailable #{n}")
        with django_capture_on_commit_callbacks(execute=True):
            outcomes.append(source_failure_alert(source_id=source.pk))

    alerts = {n: outcome for n, outcome in enumerate(outcomes) if outcome}
    assert alerts == {2: "failing", 5: "recovered", 9: "failing"}
    assert [m.subject for m in mail.outbox] == [
        "[ladder_tracker] ServiceNow source Incidents: 3 failed runs in a row",
        "[ladder_tracker] ServiceNow source Incidents: recovered",
        "[ladder_tracker] ServiceNow source Incidents: 3 failed runs in a row",
    ]
    assert all(m.to == admins for m in mail.outbox)
    first = mail.outbox[0].body
    assert "503 Service Unavailable #2" in first and "Last success: never." in first
    assert "/servicenow/" in first
    assert Source.objects.get(pk=source.pk).failure_alerted_at is not None


@pytest.mark.django_db
def test_a_mail_that_cannot_be_sent_does_not_undo_the_alert(
    admins, monkeypatch, django_capture_on_commit_callbacks
):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no SMTP server")

    monkeypatch.setattr("ladder_tracker.mail.send_mail", refuse)
    source = plain_source(acme())
    for n in range(3):
        finished_run(source, "failed", ago_minutes=10 - n)

    with django_capture_on_commit_callbacks(execute=True):
        outcome = source_failure_alert(source_id=source.pk)

    assert outcome == "failing"
    assert Source.objects.get(pk=source.pk).failure_alerted_at is not None
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_threshold_is_a_setting(admins, settings, django_capture_on_commit_callbacks):
    settings.SERVICENOW_ALERT_AFTER_FAILURES = 1
    source = plain_source(acme(), name="Changes", table="change_request")
    finished_run(source, "failed", ago_minutes=1)

    with django_capture_on_commit_callbacks(execute=True):
        assert source_failure_alert(source_id=source.pk) == "failing"

    assert [m.subject for m in mail.outbox] == [
        "[ladder_tracker] ServiceNow source Changes: 1 failed runs in a row"
    ]


# --- HTTP counts per run ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_attempts_of_a_run_add_up_their_http_counts(admin_api):
    source = plain_source(acme())
    run = finished_run(source, "succeeded", ago_minutes=1)

    run_http_counts_add(run_id=run.pk, status_counts={"503": 2, "200": 3}, retry_counts={"503": 2})
    run_http_counts_add(run_id=run.pk, status_counts={"200": 4, "error": 1}, retry_counts={})

    body = admin_api.get(f"/api/v1/servicenow/runs/{run.pk}/").json()
    assert body["requests_by_status"] == {"200": 7, "503": 2, "error": 1}
    assert body["retries_by_status"] == {"503": 2}
    assert body["duration_seconds"] == 30.0
    assert SyncRunHttpCount.objects.filter(run=run).count() == 3
    # and the source's running totals, which /metrics reads, grew by the same
    totals = SourceHttpCount.objects.filter(source=source)
    assert {c.status: (c.requests, c.retries) for c in totals} == {
        "200": (7, 0),
        "503": (2, 2),
        "error": (1, 0),
    }


# --- the Sync page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sync_page_shows_each_sources_health(client, admin_user):
    source = plain_source(acme(), name="Incidents")
    ok = finished_run(source, "succeeded", ago_minutes=60, rows_seen=40, seconds=12)
    for n in range(3):
        finished_run(source, "failed", ago_minutes=30 - n, error=f"503 Service Unavailable #{n}")
    Source.objects.filter(pk=source.pk).update(failure_alerted_at=now())
    client.force_login(admin_user)

    page = client.get("/servicenow/").content.decode()

    health = page[page.index('id="health"') : page.index("<h2>Runs</h2>")]
    assert "Incidents" in health
    assert ok.finished_at.strftime("%Y-%m-%d %H:%M:%S") in health
    assert "503 Service Unavailable #2" in health
    assert "admins mailed" in health
    assert f'<a href="/servicenow/runs/{ok.pk}/">#{ok.pk}</a> Succeeded, 40 rows, 12.0 s' in health
    assert 'class="health failing"' in health
