"""The admin's Sync page (htmx partials: connection check, sync now, live runs) and the
Django admin for ServiceNow (write-only secrets, test and sync actions, read-only runs)."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from servicenow.models import Connection, Source, SyncRun, WorkItem
from servicenow.secrets import secret_decrypt
from servicenow.services import connection_save, source_save
from tests.factories import UserFactory

from .conftest import make_connection

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-Pa55"
POLLING = 'hx-trigger="every 1s"'


def acme(name: str = "Acme", **fields) -> Connection:
    connection = Connection(
        name=name,
        instance_url=fields.pop("instance_url", "https://acme.service-now.com"),
        username="integration",
        **fields,
    )
    return connection_save(connection=connection, password=SECRET)


def plain_source(connection: Connection, table: str = "incident", **fields) -> Source:
    source = Source(connection=connection, name=fields.pop("name", table), table=table, **fields)
    return source_save(source=source)


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def page(response) -> str:
    return response.content.decode()


# --- the Sync page ------------------------------------------------------------------------


def test_sync_page_shows_connections_sources_runs_and_buttons(admin_client):
    # given a connection, an enabled and a disabled source, and a finished run
    connection = acme()
    incidents = plain_source(connection, name="Incidents", interval_minutes=15)
    plain_source(connection, "problem", name="Problems", enabled=False)
    run = SyncRun.objects.create(source=incidents, status="succeeded", rows_seen=42)

    # when the admin opens the page
    response = admin_client.get("/servicenow/")

    # then every piece is there, and nothing polls while no run is active
    html = page(response)
    assert response.status_code == 200
    assert "Acme" in html and "https://acme.service-now.com" in html
    assert f'hx-post="/servicenow/connections/{connection.pk}/test/"' in html
    assert "Test connection" in html
    assert f'hx-post="/servicenow/sources/{incidents.pk}/sync/"' in html
    assert "every 15 min" in html
    assert '<option value="full">Full</option>' in html
    assert html.count("Sync now</button>") == 2
    assert html.count("disabled>Sync now</button>") == 1
    assert f'<a href="/servicenow/runs/{run.pk}/">#{run.pk}</a>' in html
    assert POLLING not in html
    assert SECRET not in html and connection.password_encrypted not in html


def test_sync_page_sends_the_csrf_token_with_htmx_posts(admin_client):
    response = admin_client.get("/servicenow/")

    assert re.search(r"hx-headers='\{\"X-CSRFToken\": \"[A-Za-z0-9]+\"\}'", page(response))


def test_sync_page_is_a_404_for_non_admins(client):
    # given a signed-in user who is not staff
    client.force_login(UserFactory(username="erin"))

    # when / then: every page and partial hides itself
    assert client.get("/servicenow/").status_code == 404
    assert client.get("/servicenow/runs/").status_code == 404
    assert client.get("/servicenow/runs/1/progress/").status_code == 404
    assert client.post("/servicenow/connections/1/test/").status_code == 404
    assert client.post("/servicenow/sources/1/sync/", {"mode": "full"}).status_code == 404


def test_sync_page_sends_anonymous_visitors_to_login(client):
    response = client.get("/servicenow/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/servicenow/"


def test_connection_check_partial_with_good_credentials(admin_client, emulator):
    # given a connection to the emulator
    connection = make_connection(emulator)

    # when the admin presses "Test connection"
    response = admin_client.post(f"/servicenow/connections/{connection.pk}/test/")

    # then the partial says so, and the check is recorded
    connection.refresh_from_db()
    assert response.status_code == 200
    assert re.fullmatch(
        r'<span class="ok">✓ Reachable and authenticated \(\d+ ms\)\.</span>\s*', page(response)
    )
    assert connection.last_check_ok is True


def test_connection_check_partial_with_a_bad_password(admin_client, emulator):
    # given a connection with a wrong password
    connection = connection_save(connection=make_connection(emulator), password=SECRET)

    # when
    response = admin_client.post(f"/servicenow/connections/{connection.pk}/test/")

    # then the reason is shown, never the password
    assert response.status_code == 200
    assert page(response).strip() == (
        '<span class="error">✗ 401 User Not Authenticated: Required to provide Auth '
        "information (table sys_user)</span>"
    )
    assert SECRET not in page(response)


def test_the_page_shows_the_last_check(admin_client, emulator):
    # given a connection checked once, with a wrong password
    connection = connection_save(connection=make_connection(emulator), password=SECRET)
    admin_client.post(f"/servicenow/connections/{connection.pk}/test/")

    # when the page is opened again
    html = page(admin_client.get("/servicenow/"))

    # then the last answer is on it
    assert "401 User Not Authenticated" in html


def test_connection_check_is_post_only(admin_client):
    connection = acme()

    response = admin_client.get(f"/servicenow/connections/{connection.pk}/test/")

    assert response.status_code == 405
    assert Connection.objects.get().last_checked_at is None


def test_sync_now_answers_202_at_once_with_the_new_run_polling_its_progress(admin_client):
    # given a source (its run stays queued: no worker here)
    source = plain_source(acme(), name="Incidents")

    # when the admin presses "Sync now" with a mode
    response = admin_client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "full"})

    # then the answer is "accepted", not done: the run is queued and its row polls its own
    # progress (the run the answer names), while the table itself does not poll
    run = SyncRun.objects.get()
    html = page(response)
    assert response.status_code == 202
    assert (run.mode, run.status) == ("full", "queued")
    assert (
        f'<p class="ok" role="status" data-started-run="{run.pk}">Incidents: run {run.pk} '
        "started (full).</p>"
    ) in html
    assert html.startswith('<div id="runs">')
    assert (
        f'<tr id="run-{run.pk}" class="run-queued" data-run="{run.pk}" data-status="queued" '
        f'hx-get="/servicenow/runs/{run.pk}/progress/" {POLLING} hx-swap="outerHTML">'
    ) in html
    assert f'<a href="/servicenow/runs/{run.pk}/">#{run.pk}</a>' in html


def test_sync_now_while_a_run_is_active_is_a_409_partial_saying_when_it_is_reclaimed(
    admin_client, settings
):
    # given a source with a running run, its last heartbeat at 10:00:00 (stale after 90 s)
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme(), name="Incidents")
    beat = timezone.now().replace(microsecond=0) - timedelta(seconds=10)
    active = SyncRun.objects.create(source=source, status="running", heartbeat_at=beat)
    reclaim_at = beat + timedelta(seconds=90)

    # when
    response = admin_client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "full"})

    # then the notice and the run's row both say when another worker takes it over
    html = page(response)
    assert response.status_code == 409
    assert (
        f'<p class="error" role="status">Source {source.pk} already has run {active.pk} '
        "(running); wait for it to finish. If its worker stopped, it is resumed from its last "
        f"page after {reclaim_at:%H:%M:%S} UTC.</p>"
    ) in html
    assert (
        f'data-reclaim-at="{reclaim_at.isoformat()}">resumed by another worker after '
        f"{reclaim_at:%H:%M:%S} UTC if this one stops</div>"
    ) in html
    assert SyncRun.objects.count() == 1


def test_sync_now_on_an_abandoned_run_resumes_it(admin_client, settings, monkeypatch):
    # given a run whose worker stopped answering two minutes ago
    from servicenow import tasks

    monkeypatch.setattr(tasks.sync_source, "delay", lambda run_id: None)
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme(), name="Incidents")
    dead = SyncRun.objects.create(
        source=source, mode="full", status="running", attempts=1,
        heartbeat_at=timezone.now() - timedelta(seconds=120),
    )  # fmt: skip

    # when the admin presses "Sync now"
    response = admin_client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "incremental"})

    # then that run is queued again to go on from its position, and no run is added
    assert response.status_code == 202
    assert (
        f'<p class="ok" role="status" data-started-run="{dead.pk}">Incidents: run {dead.pk} '
        "(full) resumed from its last page.</p>"
    ) in page(response)
    assert list(SyncRun.objects.values_list("pk", "status")) == [(dead.pk, "queued")]


def test_sync_now_of_a_disabled_source_is_a_409_partial(admin_client):
    source = plain_source(acme(), name="Incidents", enabled=False)

    response = admin_client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "full"})

    assert response.status_code == 409
    assert "Source &#x27;Incidents&#x27; is disabled." in page(response)
    assert SyncRun.objects.count() == 0


def test_sync_now_with_a_bad_mode_is_a_400_partial(admin_client):
    source = plain_source(acme())

    response = admin_client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "all"})

    assert response.status_code == 400
    assert '<p class="error" role="status">Unknown mode &#x27;all&#x27;.</p>' in page(response)
    assert SyncRun.objects.count() == 0


def test_run_progress_polls_only_while_the_run_is_active(admin_client):
    # given a running run, 25 of 100 rows in, one page committed
    source = plain_source(acme())
    run = SyncRun.objects.create(source=source, status="running", rows_seen=25, pages=1,
                                 total_estimate=100)  # fmt: skip

    # when its progress is fetched while it runs, then after it finished
    running = page(admin_client.get(f"/servicenow/runs/{run.pk}/progress/"))
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded", rows_seen=100, pages=4)
    finished = page(admin_client.get(f"/servicenow/runs/{run.pk}/progress/"))

    # then only the first polls (itself), and each shows the state, rows, pages and bar
    assert running.startswith(f'<tr id="run-{run.pk}" class="run-running"')
    assert f'hx-get="/servicenow/runs/{run.pk}/progress/" {POLLING}' in running
    assert 'value="0.250"' in running and "25%" in running
    assert "25 / 100" in running and 'data-pages="1">(1 page)' in running
    assert "Running" in running
    assert POLLING not in finished
    assert finished.startswith(f'<tr id="run-{run.pk}" class="run-succeeded" ')
    assert 'value="1.000"' in finished and "100%" in finished
    assert 'data-pages="4">(4 pages)' in finished and "Succeeded" in finished


def test_runs_partial_shows_every_recent_run_and_polls_only_in_active_rows(admin_client):
    source = plain_source(acme())
    done = SyncRun.objects.create(source=source, status="succeeded")
    going = SyncRun.objects.create(source=source, status="running")

    html = page(admin_client.get("/servicenow/runs/"))

    assert html.count(POLLING) == 1
    assert f'hx-get="/servicenow/runs/{going.pk}/progress/" {POLLING}' in html
    assert f'<tr id="run-{done.pk}" class="run-succeeded" data-run="{done.pk}" ' in html


def test_run_progress_of_a_missing_run_is_a_404(admin_client):
    assert admin_client.get("/servicenow/runs/999/progress/").status_code == 404


def test_runs_partial_without_runs(admin_client):
    html = page(admin_client.get("/servicenow/runs/"))

    assert "No run yet." in html
    assert POLLING not in html


def test_run_detail_shows_the_error_and_the_log(admin_client):
    # given a failed run with a retried attempt in its log
    source = plain_source(acme(), name="Incidents")
    run = SyncRun.objects.create(
        source=source, status="failed", attempts=2, finished_at=timezone.now(),
        error="401 User Not Authenticated: Required to provide Auth information",
        log="10:00:00 attempt 1 failed, retrying: 503 Service Unavailable\n",
    )  # fmt: skip

    # when
    response = admin_client.get(f"/servicenow/runs/{run.pk}/")

    # then
    html = page(response)
    assert response.status_code == 200
    assert f"Sync run #{run.pk}: Incidents" in html
    assert "Failed (attempt 2)" in html
    assert (
        '<pre class="error">401 User Not Authenticated: Required to provide Auth information</pre>'
    ) in html
    assert "10:00:00 attempt 1 failed, retrying: 503 Service Unavailable" in html


def test_run_detail_of_an_active_run_polls_its_progress(admin_client):
    source = plain_source(acme(), name="Incidents")
    run = SyncRun.objects.create(source=source, status="running", rows_seen=10, pages=1,
                                 total_estimate=40)  # fmt: skip

    html = page(admin_client.get(f"/servicenow/runs/{run.pk}/"))

    assert f'hx-get="/servicenow/runs/{run.pk}/progress/" {POLLING}' in html
    assert 'value="0.250"' in html and "10 / 40" in html
    SyncRun.objects.filter(pk=run.pk).update(status="succeeded")
    assert POLLING not in page(admin_client.get(f"/servicenow/runs/{run.pk}/"))


def test_run_detail_of_a_missing_run_is_a_404(admin_client):
    assert admin_client.get("/servicenow/runs/999/").status_code == 404


def test_htmx_posts_without_a_csrf_token_are_refused(admin_user):
    # given a client that checks CSRF, signed in as the admin
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    connection = acme()
    source = plain_source(connection)

    # when it posts without a token
    check = client.post(f"/servicenow/connections/{connection.pk}/test/")
    sync = client.post(f"/servicenow/sources/{source.pk}/sync/", {"mode": "full"})

    # then both are refused and nothing happened
    assert (check.status_code, sync.status_code) == (403, 403)
    assert Connection.objects.get().last_checked_at is None
    assert SyncRun.objects.count() == 0


def test_htmx_posts_with_the_pages_csrf_token_are_accepted(admin_user):
    # given a CSRF-checking client that loaded the page
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    source = plain_source(acme())
    html = page(client.get("/servicenow/"))
    token = re.search(r'"X-CSRFToken": "([A-Za-z0-9]+)"', html).group(1)

    # when it posts with the header htmx sends
    response = client.post(
        f"/servicenow/sources/{source.pk}/sync/", {"mode": "full"}, headers={"X-CSRFToken": token}
    )

    # then
    assert response.status_code == 202
    assert SyncRun.objects.count() == 1


# --- Django admin: connections ------------------------------------------------------------


ADMIN_CONNECTIONS = "/admin/servicenow/connection/"


def connection_form(**overrides) -> dict:
    return {
        "name": "Acme",
        "instance_url": "https://acme.service-now.com",
        "auth_type": "basic",
        "username": "integration",
        "password": "",
        "client_id": "",
        "client_secret": "",
        "verify_tls": "on",
        "page_size": "1000",
        "api_path": "/api/now/table",
        **overrides,
    }


def test_connection_add_page_renders_empty_password_inputs(admin_client):
    response = admin_client.get(f"{ADMIN_CONNECTIONS}add/")

    html = page(response)
    assert response.status_code == 200
    assert '<input type="password" name="password"' in html
    assert '<input type="password" name="client_secret"' in html


def test_connection_change_page_never_renders_a_secret(admin_client):
    # given a connection with both secrets stored
    connection = acme(auth_type="oauth_password", client_id="ladder-tracker")
    connection = connection_save(connection=connection, client_secret="cl1ent-S3cret-Xy")

    # when its change page and the list are rendered
    change = page(admin_client.get(f"{ADMIN_CONNECTIONS}{connection.pk}/change/"))
    listing = page(admin_client.get(ADMIN_CONNECTIONS))

    # then neither secret nor ciphertext is in the HTML; the page says they are set
    for html in (change, listing):
        for forbidden in (SECRET, "cl1ent-S3cret-Xy", connection.password_encrypted,
                          connection.client_secret_encrypted):  # fmt: skip
            assert forbidden not in html
    assert re.search(r'<input type="password" name="password"[^>]*>', change)
    assert 'value="' not in re.search(r'<input type="password" name="password"[^>]*>',
                                      change).group(0)  # fmt: skip
    assert "Has password" in change


def test_connection_admin_add_stores_the_password_encrypted(admin_client):
    # when the admin adds a connection with a password
    response = admin_client.post(f"{ADMIN_CONNECTIONS}add/", connection_form(password=SECRET))

    # then it is stored encrypted, the URL normalised
    connection = Connection.objects.get()
    assert response.status_code == 302
    assert SECRET not in connection.password_encrypted
    assert secret_decrypt(connection.password_encrypted) == SECRET


def test_connection_admin_change_with_empty_password_keeps_it(admin_client):
    # given a stored connection
    connection = acme()
    stored = connection.password_encrypted

    # when the admin saves it with the password field left empty
    response = admin_client.post(
        f"{ADMIN_CONNECTIONS}{connection.pk}/change/",
        connection_form(name="Acme prod", instance_url="https://acme.service-now.com/"),
    )

    # then the password is kept
    connection.refresh_from_db()
    assert response.status_code == 302
    assert (connection.name, connection.instance_url) == (
        "Acme prod", "https://acme.service-now.com"
    )  # fmt: skip
    assert connection.password_encrypted == stored


def test_connection_admin_refuses_credentials_in_the_url(admin_client):
    response = admin_client.post(
        f"{ADMIN_CONNECTIONS}add/",
        connection_form(instance_url="https://admin:hunter2@acme.service-now.com"),
    )

    assert response.status_code == 200
    assert "Must not contain credentials; use username and password." in page(response)
    assert Connection.objects.count() == 0


def admin_action(client, changelist: str, action: str, *pks: int):
    return client.post(
        changelist, {"action": action, "_selected_action": [str(pk) for pk in pks]}, follow=True
    )


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]


def test_connection_admin_action_tests_each_connection(admin_client, emulator):
    # given a good and a bad connection to the emulator
    good = make_connection(emulator, name="Good")
    bad = connection_save(connection=make_connection(emulator, name="Bad"), password=SECRET)

    # when the admin runs "Test connection" on both
    response = admin_action(admin_client, ADMIN_CONNECTIONS, "test_connection", good.pk, bad.pk)

    # then each gets a message at its level, and both checks are recorded
    msgs = messages_of(response)
    assert response.status_code == 200
    assert [level for level, _ in msgs] == ["error", "success"]  # ordered by name
    assert msgs[0][1] == (
        "Bad: Authentication refused: check the credentials. "
        "401 User Not Authenticated: Required to provide Auth information (table sys_user)"
    )
    assert re.fullmatch(r"Good: Reachable and authenticated \(\d+ ms\)\.", msgs[1][1])
    assert list(Connection.objects.values_list("name", "last_check_ok")) == [
        ("Bad", False), ("Good", True)
    ]  # fmt: skip
    assert SECRET not in page(response)


# --- Django admin: sources, runs, work items ----------------------------------------------


ADMIN_SOURCES = "/admin/servicenow/source/"


def test_source_admin_sync_action_queues_a_run_then_warns(admin_client, settings):
    # given a source
    source = plain_source(acme(), name="Incidents")

    # when the admin syncs it twice (the first run is still queued)
    first = messages_of(admin_action(admin_client, ADMIN_SOURCES, "sync_full", source.pk))
    second = messages_of(admin_action(admin_client, ADMIN_SOURCES, "sync_incremental",
                                      source.pk))  # fmt: skip

    # then one run, and a warning naming it
    run = SyncRun.objects.get()
    assert (run.mode, run.status) == ("full", "queued")
    assert first == [("info", f"Incidents: run {run.pk} queued (full).")]
    reclaim_at = run.created_at + timedelta(seconds=settings.SERVICENOW_STALE_RUN_SECONDS)
    assert second == [
        (
            "warning",
            f"Incidents: Source {source.pk} already has run {run.pk} (queued); wait for it to "
            "finish. If its worker stopped, it is resumed from its last page after "
            f"{reclaim_at:%H:%M:%S} UTC.",
        )
    ]


def test_source_admin_save_keeps_the_schedule(admin_client):
    # given / when the admin adds a source with an interval
    connection = acme()
    response = admin_client.post(
        f"{ADMIN_SOURCES}add/",
        {"connection": connection.pk, "name": "Incidents", "table": "incident",
         "kind": "work_items", "query": "", "fields": "[]", "attribution_fields": "[]",
         "enabled": "on", "interval_minutes": "10", "overlap_seconds": "300",
         "track_deletes": "on"},
    )  # fmt: skip

    # then a beat task exists and attribution defaults to assigned_to
    source = Source.objects.get()
    assert response.status_code == 302
    assert source.attribution_fields == ["assigned_to"]
    assert source.periodic_task.task == "servicenow.sync_source_scheduled"
    assert source.periodic_task.interval.every == 10


def test_source_admin_delete_removes_the_schedule(admin_client):
    # given a scheduled source
    source = plain_source(acme(), interval_minutes=10)

    # when the admin deletes it
    response = admin_client.post(f"{ADMIN_SOURCES}{source.pk}/delete/", {"post": "yes"})

    # then its beat task goes too
    assert response.status_code == 302
    assert Source.objects.count() == 0
    assert PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count() == 0


def test_source_admin_bulk_delete_removes_the_schedules(admin_client):
    connection = acme()
    sources = [plain_source(connection, t, interval_minutes=10) for t in ("incident", "problem")]

    response = admin_client.post(
        ADMIN_SOURCES,
        {"action": "delete_selected", "_selected_action": [s.pk for s in sources],
         "post": "yes"},
    )  # fmt: skip

    assert response.status_code == 302
    assert Source.objects.count() == 0
    assert PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count() == 0


@pytest.fixture
def run_and_item():
    source = plain_source(acme())
    run = SyncRun.objects.create(source=source, status="succeeded", rows_seen=1)
    item = WorkItem.objects.create(
        connection=source.connection, source=source, table="incident", sys_id="a" * 32,
        number="INC0000001", short_description="Disk full", sys_updated_on=timezone.now(),
    )  # fmt: skip
    return run, item


@pytest.mark.parametrize("model", ["syncrun", "workitem"])
def test_runs_and_work_items_are_read_only_in_the_admin(admin_client, run_and_item, model):
    # given a run and a work item
    obj = run_and_item[0] if model == "syncrun" else run_and_item[1]
    url = f"/admin/servicenow/{model}/{obj.pk}/change/"

    # when the admin views, changes and adds
    view = admin_client.get(url)
    change = admin_client.post(url, {"status": "failed", "number": "HACKED"})
    add = admin_client.get(f"/admin/servicenow/{model}/add/")

    # then viewing works, changing and adding are forbidden
    assert view.status_code == 200
    assert 'name="_save"' not in page(view)
    assert (change.status_code, add.status_code) == (403, 403)
    run, item = run_and_item
    run.refresh_from_db()
    item.refresh_from_db()
    assert (run.status, item.number) == ("succeeded", "INC0000001")


def source_form(connection: Connection, **overrides) -> dict:
    return {
        "connection": connection.pk,
        "name": "Incidents",
        "table": "incident",
        "kind": "work_items",
        "query": "",
        "fields": "[]",
        "attribution_fields": "[]",
        "enabled": "on",
        "interval_minutes": "",
        "overlap_seconds": "300",
        "track_deletes": "on",
        **overrides,
    }


def test_source_admin_takes_an_emptied_json_box_as_an_empty_list(admin_client):
    # when the admin clears both JSON boxes
    response = admin_client.post(
        f"{ADMIN_SOURCES}add/", source_form(acme(), fields="", attribution_fields="")
    )

    # then the source is saved (not a 500), with the default attribution
    source = Source.objects.get()
    assert response.status_code == 302
    assert (source.fields, source.attribution_fields) == ([], ["assigned_to"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"table": "Bad Table!"}, "Not a ServiceNow table name."),
        ({"kind": "users"}, "A users source reads sys_user."),
        ({"fields": '["category", "Bad-Field"]'}, "Not a ServiceNow field name: Bad-Field"),
        ({"attribution_fields": '"assigned_to"'}, "A list of field names"),
        ({"interval_minutes": "0"}, "Between 1 minute and one week."),
    ],
)
def test_source_admin_applies_the_apis_rules(admin_client, change, message):
    response = admin_client.post(f"{ADMIN_SOURCES}add/", source_form(acme(), **change))

    assert response.status_code == 200
    assert message in page(response).replace("&quot;", '"')
    assert Source.objects.count() == 0
