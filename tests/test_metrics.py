"""GET /metrics: who may read it (admins, a bearer METRICS_TOKEN, loopback when allowed and
not proxied), and what the sync collector reports, read from the database at scrape time."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from servicenow.models import SyncCursor, SyncRun
from servicenow.sync.health import run_http_counts_add
from tests.factories import AdminUserFactory, UserFactory
from tests.servicenow.test_api import acme, plain_source

pytestmark = pytest.mark.django_db

URL = "/metrics"
TOKEN = "m3trics-t0ken"


@pytest.fixture(autouse=True)
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOW_LOOPBACK = False
    return settings


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- access -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "headers", "loopback", "remote", "status"),
    [
        pytest.param("anonymous", {}, False, "127.0.0.1", 401, id="anonymous"),
        pytest.param("member", {}, False, "127.0.0.1", 403, id="signed-in-non-admin"),
        pytest.param("admin", {}, False, "127.0.0.1", 200, id="admin"),
        pytest.param(
            "anonymous",
            {"Authorization": f"Bearer {TOKEN}"},
            False,
            "10.1.2.3",
            200,
            id="bearer-token",
        ),
        pytest.param(
            "anonymous", {"Authorization": "Bearer wrong"}, False, "10.1.2.3", 401, id="wrong-token"
        ),
        pytest.param(
            "admin",
            {"Authorization": "Bearer wrong"},
            False,
            "10.1.2.3",
            401,
            id="wrong-token-beats-a-session",
        ),
        pytest.param(
            "anonymous",
            {"Authorization": f"Token {TOKEN}"},
            False,
            "10.1.2.3",
            401,
            id="not-a-bearer",
        ),
        pytest.param("anonymous", {}, True, "127.0.0.1", 200, id="loopback-allowed"),
        pytest.param("anonymous", {}, True, "::1", 200, id="loopback-v6-allowed"),
        pytest.param("anonymous", {}, True, "10.1.2.3", 401, id="remote-with-loopback-on"),
        pytest.param(
            "anonymous",
            {"X-Forwarded-For": "203.0.113.9"},
            True,
            "127.0.0.1",
            401,
            id="proxied-is-not-loopback",
        ),
        pytest.param(
            "anonymous",
            {"Forwarded": "for=203.0.113.9"},
            True,
            "127.0.0.1",
            401,
            id="forwarded-is-not-loopback",
        ),
    ],
)
def test_who_may_read_the_metrics(metrics_settings, who, headers, loopback, remote, status):
    metrics_settings.METRICS_ALLOW_LOOPBACK = loopback
    client = {
        "anonymous": lambda: Client(),
        "member": lambda: signed_in(UserFactory(username="member")),
        "admin": lambda: signed_in(AdminUserFactory(username="root")),
    }[who]()

    response = client.get(URL, headers=headers, REMOTE_ADDR=remote)

    assert response.status_code == status
    if status == 200:
        assert response["Content-Type"].startswith("text/plain; version=")
        assert "ladder_tracker_servicenow_sync_runs_total" in response.content.decode()
    else:
        assert response.json()["error"]["code"] in ("not_authenticated", "permission_denied")
        assert TOKEN not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_without_a_token_configured_no_bearer_gets_in(metrics_settings):
    metrics_settings.METRICS_TOKEN = ""

    response = Client().get(URL, headers={"Authorization": "Bearer "})

    assert response.status_code == 401


def test_metrics_are_get_only():
    response = Client().post(URL, headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


# --- what they say ------------------------------------------------------------------------


def scrape() -> dict[tuple, float]:
    response = Client().get(URL, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        (s.name, *sorted((k, v) for k, v in s.labels.items())): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
        if s.name.startswith("ladder_tracker_servicenow_")
    }


def run(source, status, *, ago_minutes, **fields) -> SyncRun:
    end = timezone.now() - timedelta(minutes=ago_minutes)
    finished = status not in SyncRun.ACTIVE
    return SyncRun.objects.create(
        source=source,
        status=status,
        started_at=end - timedelta(seconds=20),
        finished_at=end if finished else None,
        upper_bound=end - timedelta(seconds=20),
        **fields,
    )


def test_the_collector_reports_runs_rows_lag_failures_and_http_counts():
    # given two sources: incidents worked, then failed twice and is running; problems never ran
    connection = acme()
    incidents = plain_source(connection, name="Incidents")
    problems_source = plain_source(connection, "problem", name="Problems")
    ok = run(incidents, "succeeded", ago_minutes=30, rows_seen=100, created=60, updated=5)
    first = run(incidents, "failed", ago_minutes=20, rows_seen=50)
    run(incidents, "failed", ago_minutes=10)
    running = run(incidents, "running", ago_minutes=0, rows_seen=7)
    SyncCursor.objects.create(source=incidents, hwm_ts=timezone.now() - timedelta(days=1))
    run_http_counts_add(run_id=ok.pk, status_counts={"200": 4}, retry_counts={})
    run_http_counts_add(
        run_id=first.pk, status_counts={"503": 5, "error": 1}, retry_counts={"503": 4, "error": 1}
    )
    run_http_counts_add(run_id=running.pk, status_counts={"200": 1, "429": 1}, retry_counts={})

    # when scraped
    samples = scrape()

    # then
    inc = (("source", "Incidents"), ("source_id", str(incidents.pk)))
    p = "ladder_tracker_servicenow_"
    assert samples[(p + "sync_runs_total", ("outcome", "succeeded"), *inc)] == 1
    assert samples[(p + "sync_runs_total", ("outcome", "failed"), *inc)] == 2
    assert samples[(p + "sync_runs_active", *inc, ("status", "running"))] == 1
    assert samples[(p + "sync_rows_total", ("kind", "seen"), *inc)] == 157
    assert samples[(p + "sync_rows_total", ("kind", "created"), *inc)] == 60
    assert samples[(p + "sync_rows_total", ("kind", "updated"), *inc)] == 5
    assert samples[(p + "requests_total", ("code", "200"), *inc)] == 5
    assert samples[(p + "requests_total", ("code", "503"), *inc)] == 5
    assert samples[(p + "requests_total", ("code", "429"), *inc)] == 1
    assert samples[(p + "requests_total", ("code", "error"), *inc)] == 1
    assert samples[(p + "retries_total", ("code", "503"), *inc)] == 4
    assert samples[(p + "retries_total", ("code", "error"), *inc)] == 1
    assert (p + "retries_total", ("code", "200"), *inc) not in samples
    assert samples[(p + "sync_consecutive_failures", *inc)] == 2
    assert samples[(p + "sync_last_success_timestamp_seconds", *inc)] == pytest.approx(
        ok.finished_at.timestamp()
    )
    # read up to the success's upper bound, 30 minutes and 20 seconds ago
    assert 30 * 60 + 20 <= samples[(p + "sync_lag_seconds", *inc)] < 31 * 60 + 20
    # a source that never ran: no failures, no lag, no success yet
    problems = [k for k in samples if ("source", "Problems") in k]
    assert problems == [
        (
            p + "sync_consecutive_failures",
            ("source", "Problems"),
            ("source_id", str(problems_source.pk)),
        )
    ]


@pytest.mark.parametrize("sources", [1, 5])
def test_a_scrape_takes_the_same_queries_whatever_the_size(django_assert_num_queries, sources):
    connection = acme()
    for n in range(sources):
        source = plain_source(connection, f"table{n}")
        for m in range(4):
            made = run(source, "failed" if m % 2 else "succeeded", ago_minutes=60 - m)
            run_http_counts_add(run_id=made.pk, status_counts={"200": 3}, retry_counts={})

    # sources with their health, runs by source and status, HTTP counts by source and code
    with django_assert_num_queries(3):
        samples = scrape()

    assert sum(v for k, v in samples.items() if k[0].endswith("sync_runs_total")) == 4 * sources
    assert sum(v for k, v in samples.items() if k[0].endswith("requests_total")) == 12 * sources
