"""Sync health over real HTTP against the emulator with faults: the admins' mail when a
source fails three runs in a row and when it recovers, and the requests and retries by
status code that a run (in a Celery worker, on CI's second pass) leaves for /metrics."""

import pytest
from django.core import mail
from prometheus_client.parser import text_string_to_metric_families

from servicenow.models import SyncRun
from servicenow.services import sync_run_request
from servicenow.sync.runs import sync_run_attempt
from tests.factories import AdminUserFactory

from .conftest import run_sync

pytestmark = pytest.mark.django_db(transaction=True)

FAILING = "[ladder_tracker] ServiceNow source incident: 3 failed runs in a row"
RECOVERED = "[ladder_tracker] ServiceNow source incident: recovered"


def attempt_here(source) -> SyncRun:
    """One run in this process, as `manage.py servicenow_sync` runs it, so the mail lands in
    this process's outbox whether or not a worker is listening."""
    run = sync_run_request(source=source, enqueue=False)
    while sync_run_attempt(run_id=run.pk) == "retry":
        pass
    return SyncRun.objects.get(pk=run.pk)


def test_one_mail_on_the_third_failure_in_a_row_and_one_on_recovery(emulator, incidents, settings):
    # given admins, and an instance that answers every request with an HTML page
    settings.SERVICENOW_RUN_RETRIES = 0  # each run fails at its first attempt
    AdminUserFactory(username="ada")
    emulator.set_faults_dict({"html": {"every": 1}})

    # when four runs fail
    subjects_after = []
    for _ in range(4):
        run = attempt_here(incidents)
        assert run.status == "failed"
        assert "instance unavailable" in run.error
        subjects_after.append([m.subject for m in mail.outbox])

    # then one mail, at the third
    assert subjects_after == [[], [], [FAILING], [FAILING]]
    assert mail.outbox[0].to == ["ada@example.com"]
    assert "instance unavailable" in mail.outbox[0].body
    # each failed run kept its one request (a 200 with HTML in it)
    assert {c.status: c.requests for c in run.http_counts.all()} == {"200": 1}

    # when the instance is back, and syncs go on working
    emulator.set_faults_dict({})
    recovered = attempt_here(incidents)
    attempt_here(incidents)

    # then one more mail, and no more
    assert recovered.status == "succeeded"
    assert [m.subject for m in mail.outbox] == [FAILING, RECOVERED]


def test_requests_and_retries_by_status_reach_the_runs_api_and_metrics(
    emulator, incidents, admin_api, client, settings
):
    # given an instance that answers the first two requests with 503
    settings.METRICS_TOKEN = "scrape-token"
    emulator.set_faults_dict({"server_error": {"every": 1, "status": 503, "times": 2}})

    # when a run syncs (in the worker, when there is one)
    run = run_sync(incidents, "full")

    # then the run knows its requests by status, and they add up to its request count
    assert run.status == "succeeded", run.error
    body = admin_api.get(f"/api/v1/servicenow/runs/{run.pk}/").json()
    assert body["requests_by_status"]["503"] == 2
    assert body["retries_by_status"] == {"503": 2}
    assert sum(body["requests_by_status"].values()) == run.requests
    assert set(body["requests_by_status"]) == {"200", "503"}

    # and /metrics says the same, per source
    response = client.get("/metrics", headers={"Authorization": "Bearer scrape-token"})
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "source_id"))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
        if s.name.startswith("ladder_tracker_servicenow_")
    }
    src = ("source", "incident")
    prefix = "ladder_tracker_servicenow_"
    assert samples[(prefix + "requests_total", (("code", "503"), src))] == 2
    assert samples[(prefix + "requests_total", (("code", "200"), src))] == run.requests - 2
    assert samples[(prefix + "retries_total", (("code", "503"), src))] == 2
    assert samples[(prefix + "sync_runs_total", (("outcome", "succeeded"), src))] == 1
    assert samples[(prefix + "sync_rows_total", (("kind", "seen"), src))] == run.rows_seen
    assert samples[(prefix + "sync_rows_total", (("kind", "created"), src))] == 300
    assert samples[(prefix + "sync_consecutive_failures", (src,))] == 0
    assert samples[(prefix + "sync_lag_seconds", (src,))] >= 0
