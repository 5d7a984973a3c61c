"""ServiceNow API: connections (write-only secrets, checks against the emulator), sources
(validation, beat schedule, sync requests with one active run per source), runs and work
items (scoped like evidence)."""

import json
import socket
import sqlite3
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.db.backends.sqlite3.base import SQLiteCursorWrapper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from rest_framework.test import APIClient

from apps.people.models import Person
from servicenow import tasks
from servicenow.models import Connection, Source, SyncRun, WorkItem
from servicenow.secrets import secret_decrypt
from servicenow.services import connection_save, source_save
from tests.factories import AdminUserFactory, PersonFactory, UserFactory

from .conftest import make_connection, make_source, wait_for

CONNECTIONS = "/api/v1/servicenow/connections/"
SOURCES = "/api/v1/servicenow/sources/"
RUNS = "/api/v1/servicenow/runs/"
WORK_ITEMS = "/api/v1/servicenow/work-items/"
SECRET = "s3cr3t-Pa55"
CLIENT_SECRET = "cl1ent-S3cret-Xy"


def acme(name: str = "Acme", **fields) -> Connection:
    """A connection that is never dialled (no emulator needed)."""
    password = fields.pop("password", SECRET)
    connection = Connection(
        name=name,
        instance_url=fields.pop("instance_url", "https://acme.service-now.com"),
        username=fields.pop("username", "integration"),
        **fields,
    )
    return connection_save(connection=connection, password=password)


def plain_source(connection: Connection, table: str = "incident", **fields) -> Source:
    kind = Source.Kind.USERS if table == "sys_user" else Source.Kind.WORK_ITEMS
    source = Source(connection=connection, name=fields.pop("name", table), table=table,
                    kind=kind, **fields)  # fmt: skip
    return source_save(source=source)


def closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest.fixture
def member_api(db):
    """Signed in, not staff."""
    client = APIClient()
    client.force_authenticate(UserFactory(username="member"))
    return client


# --- connections: access ------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", CONNECTIONS),
        ("post", CONNECTIONS),
        ("get", CONNECTIONS + "{pk}/"),
        ("patch", CONNECTIONS + "{pk}/"),
        ("delete", CONNECTIONS + "{pk}/"),
        ("post", CONNECTIONS + "{pk}/test/"),
    ],
)
def test_connections_api_is_admin_only(api, member_api, method, path):
    # given a connection
    path = path.format(pk=acme().pk)

    # when an anonymous caller and a signed-in non-admin call the endpoint
    anonymous = getattr(api, method)(path, {}, format="json")
    member = getattr(member_api, method)(path, {}, format="json")

    # then the first is a JSON 401, the second a JSON 403, and nothing changed
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert member.status_code == 403
    assert member.json()["error"]["code"] == "permission_denied"
    assert Connection.objects.count() == 1
    assert Connection.objects.get().last_checked_at is None


# --- connections: secrets -----------------------------------------------------------------


@pytest.mark.django_db
def test_create_connection_never_returns_the_secrets(admin_api):
    # given an OAuth connection with both secrets
    payload = {
        "name": "Acme",
        "instance_url": "https://acme.service-now.com/",
        "auth_type": "oauth_password",
        "username": "integration",
        "password": SECRET,
        "client_id": "ladder-tracker",
        "client_secret": CLIENT_SECRET,
    }

    # when an admin creates it, then reads it back alone and in the list
    created = admin_api.post(CONNECTIONS, payload, format="json")
    connection = Connection.objects.get()
    detail = admin_api.get(f"{CONNECTIONS}{connection.pk}/")
    listed = admin_api.get(CONNECTIONS)

    # then no response carries a secret, plain or encrypted, only that one is set
    assert created.status_code == 201
    assert created.json() == {
        "id": connection.pk,
        "name": "Acme",
        "instance_url": "https://acme.service-now.com",
        "auth_type": "oauth_password",
        "username": "integration",
        "client_id": "ladder-tracker",
        "has_password": True,
        "has_client_secret": True,
        "verify_tls": True,
        "ca_certificate": "",
        "proxy_url": "",
        "page_size": 1000,
        "api_path": "/api/now/table",
        "backfill_workers": None,
        "last_checked_at": None,
        "last_check_ok": None,
        "last_check_message": "",
    }
    assert detail.json() == created.json()
    assert listed.json()["results"] == [created.json()]
    for response in (created, detail, listed):
        body = response.content.decode()
        for forbidden in (SECRET, CLIENT_SECRET, connection.password_encrypted,
                          connection.client_secret_encrypted):  # fmt: skip
            assert forbidden not in body


@pytest.mark.django_db
def test_the_database_holds_only_ciphertext(admin_api):
    # given / when an admin creates a connection with both secrets
    admin_api.post(
        CONNECTIONS,
        {"name": "Acme", "instance_url": "https://acme.service-now.com",
         "auth_type": "oauth_password", "username": "integration", "password": SECRET,
         "client_id": "ladder-tracker", "client_secret": CLIENT_SECRET},
        format="json",
    )  # fmt: skip

    # then the stored columns are ciphertexts that decrypt to the secrets
    row = Connection.objects.values("password_encrypted", "client_secret_encrypted").get()
    assert SECRET not in row["password_encrypted"]
    assert CLIENT_SECRET not in row["client_secret_encrypted"]
    assert secret_decrypt(row["password_encrypted"]) == SECRET
    assert secret_decrypt(row["client_secret_encrypted"]) == CLIENT_SECRET


@pytest.mark.django_db
def test_patch_without_a_secret_keeps_it_and_an_empty_one_clears_it(admin_api):
    # given a connection with a password and a client secret
    connection = acme(auth_type="oauth_password", client_id="ladder-tracker")
    connection = connection_save(connection=connection, client_secret=CLIENT_SECRET)
    stored = (connection.password_encrypted, connection.client_secret_encrypted)
    url = f"{CONNECTIONS}{connection.pk}/"

    # when an admin patches something else
    renamed = admin_api.patch(url, {"name": "Acme prod"}, format="json")
    connection.refresh_from_db()
    kept = (connection.password_encrypted, connection.client_secret_encrypted)
    # and then sends empty secrets
    cleared = admin_api.patch(url, {"password": "", "client_secret": ""}, format="json")
    connection.refresh_from_db()

    # then the first keeps both secrets untouched, the second clears both
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["has_password"]) == ("Acme prod", True)
    assert renamed.json()["has_client_secret"] is True
    assert kept == stored
    assert cleared.status_code == 200
    assert (cleared.json()["has_password"], cleared.json()["has_client_secret"]) == (False, False)
    assert (connection.password_encrypted, connection.client_secret_encrypted) == ("", "")


@pytest.mark.django_db
def test_patch_with_a_new_password_replaces_the_ciphertext(admin_api):
    # given a connection
    connection = acme()
    old = connection.password_encrypted

    # when an admin sends a new password
    response = admin_api.patch(
        f"{CONNECTIONS}{connection.pk}/", {"password": "n3w-Pa55"}, format="json"
    )

    # then it is stored encrypted, and not echoed
    connection.refresh_from_db()
    assert response.status_code == 200
    assert "n3w-Pa55" not in response.content.decode()
    assert connection.password_encrypted != old
    assert secret_decrypt(connection.password_encrypted) == "n3w-Pa55"


GOOD_CONNECTION = {
    "name": "Acme",
    "instance_url": "https://acme.service-now.com",
    "auth_type": "basic",
    "username": "integration",
    "password": SECRET,
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"api_path": "/api/now/import"}, "api_path",
         "One of /api/now/table, /api/now/v1/table, /api/now/v2/table."),
        ({"page_size": 0}, "page_size", "Between 1 and 10000."),
        ({"page_size": 10001}, "page_size", "Between 1 and 10000."),
        ({"auth_type": "oauth_password"}, "client_id", "OAuth needs a client id."),
        ({"auth_type": "oauth_client_credentials", "username": ""}, "client_id",
         "OAuth needs a client id."),
        ({"username": ""}, "username", "This auth type needs a username."),
        ({"auth_type": "ntlm"}, "auth_type", '"ntlm" is not a valid choice.'),
        ({"instance_url": "acme"}, "instance_url", "Enter a valid URL."),
        ({"instance_url": "https://admin:hunter2@acme.service-now.com"}, "instance_url",
         "Must not contain credentials; use username and password."),
    ],
)  # fmt: skip
def test_connection_validation_errors_are_json_400_naming_the_field(
    admin_api, change, field, message
):
    # given a payload with one bad value
    payload = {**GOOD_CONNECTION, **change}

    # when an admin posts it
    response = admin_api.post(CONNECTIONS, payload, format="json")

    # then a JSON 400 names the field, and nothing is stored
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["message"] == f"{field}: {message}"
    assert response.json()["error"]["detail"] == {field: [message]}
    assert Connection.objects.count() == 0
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
def test_oauth_client_credentials_needs_no_username(admin_api):
    # given / when
    response = admin_api.post(
        CONNECTIONS,
        {"name": "CC", "instance_url": "https://acme.service-now.com",
         "auth_type": "oauth_client_credentials", "client_id": "ladder-tracker",
         "client_secret": CLIENT_SECRET},
        format="json",
    )  # fmt: skip

    # then
    assert response.status_code == 201
    assert (response.json()["username"], response.json()["has_client_secret"]) == ("", True)


@pytest.mark.django_db
def test_a_connection_in_use_cannot_be_deleted(admin_api):
    # given a connection with a source
    connection = acme()
    plain_source(connection)

    # when an admin deletes it
    response = admin_api.delete(f"{CONNECTIONS}{connection.pk}/")

    # then a JSON 409 says why, and it is still there
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert "Acme" in response.json()["error"]["message"]
    assert Connection.objects.filter(pk=connection.pk).exists()


@pytest.mark.django_db
def test_an_unused_connection_can_be_deleted(admin_api):
    connection = acme()

    response = admin_api.delete(f"{CONNECTIONS}{connection.pk}/")

    assert response.status_code == 204
    assert Connection.objects.count() == 0


# --- connections: test against the emulator ------------------------------------------------


def check(admin_api, connection: Connection):
    response = admin_api.post(f"{CONNECTIONS}{connection.pk}/test/")
    connection.refresh_from_db()
    return response


@pytest.mark.django_db
def test_check_with_good_credentials_is_ok_and_recorded(admin_api, emulator):
    # given a basic-auth connection to the emulator
    connection = make_connection(emulator)

    # when an admin tests it
    response = check(admin_api, connection)

    # then it is ok, and the check is recorded on the connection
    body = response.json()
    assert response.status_code == 200
    assert (body["ok"], body["reachable"], body["authenticated"]) == (True, True, True)
    assert body["message"] == f"Reachable and authenticated ({body['elapsed_ms']} ms)."
    assert (connection.last_check_ok, connection.last_check_message) == (True, body["message"])
    assert connection.last_checked_at is not None
    assert emulator.stats()["table_api"] == 1
    assert "integration-pass" not in response.content.decode()


@pytest.mark.django_db
def test_check_with_a_bad_password_says_401(admin_api, emulator):
    # given a connection whose password the instance refuses
    connection = make_connection(emulator)
    connection = connection_save(connection=connection, password=SECRET)

    # when
    response = check(admin_api, connection)

    # then
    message = "401 User Not Authenticated: Required to provide Auth information (table sys_user)"
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "error": "AuthenticationError",
        "problem": "Authentication refused: check the credentials",
        "reachable": True,
        "authenticated": False,
        "message": message,
    }
    assert (connection.last_check_ok, connection.last_check_message) == (False, message)
    assert SECRET not in response.content.decode()
    assert connection.password_encrypted not in response.content.decode()


@pytest.mark.django_db
def test_check_of_an_unreachable_instance_says_it_could_not_connect(admin_api):
    # given a connection to a closed port on this machine
    port = closed_port()
    connection = acme(instance_url=f"http://127.0.0.1:{port}")

    # when
    response = check(admin_api, connection)

    # then
    body = response.json()
    assert response.status_code == 200
    assert (body["ok"], body["error"], body["reachable"]) == (
        False, "ConnectionFailedError", False
    )  # fmt: skip
    assert body["message"].startswith(f"could not connect to 127.0.0.1:{port}: ")
    assert "Connection refused" in body["message"]
    assert (connection.last_check_ok, connection.last_check_message) == (False, body["message"])
    assert SECRET not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("auth_type", "username", "password"),
    [
        ("oauth_password", "integration", "integration-pass"),
        ("oauth_client_credentials", "", ""),
    ],
)
def test_check_with_oauth_grants(admin_api, emulator, auth_type, username, password):
    # given an OAuth connection with the emulator's client and user
    connection = Connection(name="OAuth", instance_url=emulator.url, auth_type=auth_type,
                            username=username, client_id="ladder-tracker")  # fmt: skip
    connection = connection_save(
        connection=connection, password=password, client_secret="ladder-tracker-secret"
    )

    # when
    response = check(admin_api, connection)

    # then the token was fetched and the table read with it
    assert response.json()["ok"] is True
    assert connection.last_check_ok is True
    assert emulator.stats()["oauth"] == 1
    assert "ladder-tracker-secret" not in response.content.decode()
    assert "access_token" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("auth_type", "grant"), [("oauth_password", "password"),
                             ("oauth_client_credentials", "client_credentials")]
)  # fmt: skip
def test_check_with_a_refused_oauth_grant(admin_api, emulator, auth_type, grant):
    # given an OAuth connection with a wrong client secret
    connection = Connection(name="OAuth", instance_url=emulator.url, auth_type=auth_type,
                            username="integration", client_id="ladder-tracker")  # fmt: skip
    connection = connection_save(
        connection=connection, password="integration-pass", client_secret=CLIENT_SECRET
    )

    # when
    response = check(admin_api, connection)

    # then
    message = f"OAuth {grant} grant refused: 401 server_error: access_denied"
    assert response.json() == {
        "ok": False,
        "error": "AuthenticationError",
        "problem": "Authentication refused: check the credentials",
        "reachable": True,
        "authenticated": False,
        "message": message,
    }
    assert (connection.last_check_ok, connection.last_check_message) == (False, message)
    assert CLIENT_SECRET not in response.content.decode()


# --- sources: CRUD and validation ---------------------------------------------------------


@pytest.mark.django_db
def test_source_crud(admin_api):
    # given a connection
    connection = acme()

    # when an admin creates, reads, lists, updates and deletes a source
    created = admin_api.post(
        SOURCES,
        {"connection": connection.pk, "name": "Incidents", "table": "incident",
         "query": " active=true ", "fields": ["category"]},
        format="json",
    )  # fmt: skip
    pk = created.json()["id"]
    detail = admin_api.get(f"{SOURCES}{pk}/")
    listed = admin_api.get(SOURCES)
    updated = admin_api.patch(f"{SOURCES}{pk}/", {"name": "All incidents"}, format="json")
    deleted = admin_api.delete(f"{SOURCES}{pk}/")

    # then each step answers as expected
    assert created.status_code == 201
    assert created.json() == {
        "id": pk,
        "connection": connection.pk,
        "name": "Incidents",
        "table": "incident",
        "kind": "work_items",
        "query": "active=true",
        "fields": ["category"],
        "attribution_fields": ["assigned_to"],
        "enabled": True,
        "interval_minutes": None,
        "overlap_seconds": 300,
        "track_deletes": True,
        "last_run": None,
        # health, before any run
        "last_success_at": None,
        "cursor_at": None,
        "lag_seconds": None,
        "last_error": None,
        "last_error_at": None,
        "consecutive_failures": 0,
        "failure_alerted_at": None,
        "recent_runs": [],
    }
    assert detail.json() == created.json()
    assert listed.json()["results"] == [created.json()]
    assert updated.status_code == 200
    assert updated.json() == {**created.json(), "name": "All incidents"}
    assert deleted.status_code == 204
    assert Source.objects.count() == 0


@pytest.mark.django_db
def test_sources_api_is_admin_only(api, member_api):
    source = plain_source(acme())

    for client, status in ((api, 401), (member_api, 403)):
        assert client.get(SOURCES).status_code == status
        assert client.post(f"{SOURCES}{source.pk}/sync/", {}, format="json").status_code == status
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
def test_explicit_attribution_fields_are_kept(admin_api):
    response = admin_api.post(
        SOURCES,
        {"connection": acme().pk, "name": "Changes", "table": "change_request",
         "attribution_fields": ["assigned_to", "opened_by"]},
        format="json",
    )  # fmt: skip

    assert response.json()["attribution_fields"] == ["assigned_to", "opened_by"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"table": "Incident"}, "table", "Not a ServiceNow table name."),
        ({"table": "incident;drop"}, "table", "Not a ServiceNow table name."),
        ({"table": "../sys_user"}, "table", "Not a ServiceNow table name."),
        ({"kind": "users"}, "table", "A users source reads sys_user."),
        ({"fields": ["category", "Bad-Name"]}, "fields",
         "Not a ServiceNow field name: Bad-Name"),
        ({"fields": "category"}, "fields", "fields must be a list of field names."),
        ({"attribution_fields": ["assigned_to", "x y"]}, "attribution_fields",
         "Not a ServiceNow field name: x y"),
        ({"interval_minutes": 0}, "interval_minutes", "Between 1 minute and one week."),
        ({"interval_minutes": 10081}, "interval_minutes", "Between 1 minute and one week."),
        ({"query": "active=true\nstate=1"}, "query", "An encoded query is one line."),
    ],
)  # fmt: skip
def test_source_validation_errors_are_json_400_naming_the_field(admin_api, change, field, message):
    # given a payload with one bad value
    payload = {"connection": acme().pk, "name": "Incidents", "table": "incident", **change}

    # when
    response = admin_api.post(SOURCES, payload, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"{field}: {message}"
    assert response.json()["error"]["detail"] == {field: [message]}
    assert Source.objects.count() == 0


@pytest.mark.django_db
def test_a_users_source_reads_sys_user(admin_api):
    response = admin_api.post(
        SOURCES,
        {"connection": acme().pk, "name": "People", "table": "sys_user", "kind": "users"},
        format="json",
    )

    assert response.status_code == 201
    assert (response.json()["kind"], response.json()["attribution_fields"]) == ("users", [])


@pytest.mark.django_db
def test_interval_bounds_are_inclusive(admin_api):
    connection = acme()

    one = admin_api.post(
        SOURCES,
        {"connection": connection.pk, "name": "a", "table": "incident", "interval_minutes": 1},
        format="json",
    )
    week = admin_api.post(SOURCES, {"connection": connection.pk, "name": "b",
                                    "table": "problem", "interval_minutes": 10080},
                          format="json")  # fmt: skip

    assert (one.status_code, week.status_code) == (201, 201)
    assert (one.json()["interval_minutes"], week.json()["interval_minutes"]) == (1, 10080)
    stored = Source.objects.filter(connection=connection).values_list("name", "interval_minutes")
    assert dict(stored) == {"a": 1, "b": 10080}


@pytest.mark.django_db
def test_two_sources_on_one_table_are_a_400(admin_api):
    # given a source on incident
    connection = acme()
    plain_source(connection)

    # when another is created on the same connection and table
    response = admin_api.post(
        SOURCES,
        {"connection": connection.pk, "name": "again", "table": "incident"},
        format="json",
    )

    # then
    assert response.status_code == 400
    assert Source.objects.count() == 1


@pytest.mark.django_db
def test_a_source_with_work_items_cannot_be_deleted(admin_api):
    # given a source that brought in a work item
    source = plain_source(acme())
    make_work_items(source, 1)

    # when
    response = admin_api.delete(f"{SOURCES}{source.pk}/")

    # then a JSON 409, not a 500
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Source.objects.filter(pk=source.pk).exists()


# --- sources: beat schedule ---------------------------------------------------------------


def schedule_of(source_id: int) -> PeriodicTask | None:
    source = Source.objects.select_related("periodic_task__interval").get(pk=source_id)
    return source.periodic_task


@pytest.mark.django_db
def test_interval_minutes_keeps_a_beat_schedule_in_step(admin_api):
    # given an admin creates a source with a 15 minute interval
    created = admin_api.post(
        SOURCES,
        {"connection": acme().pk, "name": "Incidents", "table": "incident",
         "interval_minutes": 15},
        format="json",
    )  # fmt: skip
    pk = created.json()["id"]
    first = schedule_of(pk)

    # when the interval changes, the source is disabled, then the interval removed
    admin_api.patch(f"{SOURCES}{pk}/", {"interval_minutes": 60}, format="json")
    changed = schedule_of(pk)
    admin_api.patch(f"{SOURCES}{pk}/", {"enabled": False}, format="json")
    disabled = schedule_of(pk)
    admin_api.patch(f"{SOURCES}{pk}/", {"interval_minutes": None}, format="json")

    # then one periodic task follows every step and is removed at the end
    assert first.task == "servicenow.sync_source_scheduled"
    assert json.loads(first.kwargs) == {"source_id": pk, "mode": "incremental"}
    assert (first.interval.every, first.interval.period) == (15, IntervalSchedule.MINUTES)
    assert first.enabled is True
    assert changed.pk == first.pk
    assert (changed.interval.every, changed.enabled) == (60, True)
    assert (disabled.pk, disabled.enabled) == (first.pk, False)
    assert schedule_of(pk) is None
    assert PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count() == 0


@pytest.mark.django_db
def test_deleting_a_source_removes_its_schedule(admin_api):
    # given a scheduled source
    source = plain_source(acme(), interval_minutes=5)
    assert PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count() == 1

    # when it is deleted
    response = admin_api.delete(f"{SOURCES}{source.pk}/")

    # then beat no longer has a task for it
    assert response.status_code == 204
    assert PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count() == 0


@pytest.mark.django_db
def test_the_beat_entry_calls_the_scheduled_task_with_its_kwargs():
    # given a scheduled source
    source = plain_source(acme(), interval_minutes=5)
    entry = source.periodic_task

    # when beat calls the task it names, with its kwargs
    run_id = tasks.sync_source_scheduled.app.tasks[entry.task](**json.loads(entry.kwargs))

    # then a queued incremental run exists
    run = SyncRun.objects.get()
    assert (run_id, run.source_id, run.mode, run.status) == (
        run.pk, source.pk, "incremental", "queued"
    )  # fmt: skip


# --- sources: sync requests ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sync_is_accepted_and_the_run_finishes(admin_api, incidents):
    # given a source on the emulator

    # when an admin asks for a full sync
    response = admin_api.post(f"{SOURCES}{incidents.pk}/sync/", {"mode": "full"}, format="json")

    # then 202 names the run, which succeeds with every row
    assert response.status_code == 202
    run = wait_for(response.json()["run"])
    assert response.json() == {
        "run": run.pk, "status": "queued", "url": f"http://testserver/api/v1/servicenow/runs/{run.pk}/",
    }  # fmt: skip
    assert (run.source_id, run.mode, run.status, run.error) == (
        incidents.pk, "full", "succeeded", ""
    )  # fmt: skip
    assert (run.rows_seen, run.created) == (300, 300)
    assert WorkItem.objects.filter(source=incidents).count() == 300
    assert admin_api.get(f"{SOURCES}{incidents.pk}/").json()["last_run"] == run.pk


@pytest.mark.django_db
def test_sync_defaults_to_incremental(admin_api):
    source = plain_source(acme())

    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")

    assert response.status_code == 202
    assert SyncRun.objects.get(pk=response.json()["run"]).mode == "incremental"


@pytest.mark.django_db
def test_sync_with_a_bad_mode_is_a_json_400(admin_api):
    source = plain_source(acme())

    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {"mode": "everything"},
                              format="json")  # fmt: skip

    assert response.status_code == 400
    assert response.json()["error"]["message"] == 'mode: "everything" is not a valid choice.'
    assert SyncRun.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["queued", "running"])
def test_sync_while_a_run_is_active_is_a_409_naming_it_and_when_it_is_reclaimed(
    admin_api, status, settings
):
    # given a source with an active run that is alive (its last heartbeat 10 s ago)
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme())
    beat = timezone.now().replace(microsecond=0) - timedelta(seconds=10)
    active = SyncRun.objects.create(source=source, status=status, heartbeat_at=beat)
    reclaim_at = beat + timedelta(seconds=90)

    # when an admin asks for another
    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {"mode": "full"}, format="json")

    # then 409 names the active run and when it is taken over, and no run is created
    assert response.status_code == 409
    message = (
        f"Source {source.pk} already has run {active.pk} ({status}); wait for it to finish. "
        f"If its worker stopped, it is resumed from its last page after "
        f"{reclaim_at.strftime('%H:%M:%S')} UTC."
    )
    assert response.json()["error"] == {
        "code": "conflict",
        "message": message,
        "detail": {
            "detail": message,
            "run": str(active.pk),  # every leaf of an error's detail is a string
            "status": status,
            "reclaim_at": reclaim_at.isoformat(),
        },
    }
    assert list(SyncRun.objects.values_list("pk", flat=True)) == [active.pk]


@pytest.mark.django_db
def test_a_run_waiting_out_a_retry_is_reclaimed_only_after_its_retry_is_due(admin_api, settings):
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme())
    retry_at = timezone.now().replace(microsecond=0) + timedelta(seconds=200)
    SyncRun.objects.create(
        source=source,
        status="queued",
        heartbeat_at=timezone.now() - timedelta(seconds=100),
        retry_at=retry_at,
    )

    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")

    assert response.status_code == 409
    detail = response.json()["error"]["detail"]
    assert detail["reclaim_at"] == (retry_at + timedelta(seconds=90)).isoformat()


@pytest.mark.django_db
def test_sync_of_a_disabled_source_is_a_409(admin_api):
    source = plain_source(acme(), enabled=False)

    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")

    assert response.status_code == 409
    assert response.json()["error"]["message"] == "Source 'incident' is disabled."
    assert SyncRun.objects.count() == 0


def wait_when_locked(monkeypatch) -> None:
    """Give the in-memory test database the busy wait the real one has.

    The embedded mode's SQLite is a file in WAL mode with BEGIN IMMEDIATE and a 20 s busy
    timeout: a second writer waits for the first to commit and readers never wait. The test
    database is an in-memory shared-cache database instead, where a conflicting statement
    fails at once with "database table is locked" (SQLITE_LOCKED ignores the busy timeout).
    Retrying such a statement (it did nothing) is what the busy handler does on a file.
    """
    if db_connection.vendor != "sqlite" or not db_connection.is_in_memory_db():
        return
    execute = SQLiteCursorWrapper.execute

    def execute_waiting(self, query, params=None):
        deadline = time.monotonic() + 20
        while True:
            try:
                return execute(self, query, params)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    monkeypatch.setattr(SQLiteCursorWrapper, "execute", execute_waiting)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sync_requests_make_one_run(monkeypatch):
    # given a source, and runs that stay queued (no worker picks them up)
    wait_when_locked(monkeypatch)
    source = plain_source(acme())
    admin = AdminUserFactory(username="root")
    monkeypatch.setattr(tasks.sync_source, "delay", lambda run_id: None)
    barrier = threading.Barrier(2)
    responses = []

    def request():
        client = APIClient()
        client.force_authenticate(admin)
        try:
            barrier.wait(timeout=10)
            responses.append(client.post(f"{SOURCES}{source.pk}/sync/", {}, format="json"))
        finally:
            db_connection.close()

    # when two admins ask at the same moment
    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then exactly one is accepted, the other is told about that run
    by_status = {r.status_code: r.json() for r in responses}
    assert sorted(by_status) == [202, 409]
    run = SyncRun.objects.get()
    assert run.status == "queued"
    assert (by_status[202]["run"], by_status[202]["status"]) == (run.pk, "queued")
    assert f"already has run {run.pk} (queued)" in by_status[409]["error"]["message"]


@pytest.mark.django_db
def test_a_run_with_a_stale_heartbeat_is_resumed_not_replaced(
    admin_api, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given a run left running by a worker that died, with a position it had reached
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme())
    dead = SyncRun.objects.create(
        source=source,
        mode="full",
        status="running",
        attempts=1,
        started_at=timezone.now() - timedelta(hours=1),
        heartbeat_at=timezone.now() - timedelta(seconds=91),
        resume_ts=timezone.now() - timedelta(days=30),
        resume_sys_id="a" * 32,
    )
    enqueued = []
    monkeypatch.setattr(tasks.sync_source, "delay", enqueued.append)

    # when an admin asks for a sync
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")

    # then that run goes back to the queue to go on from its position; no new run
    dead.refresh_from_db()
    assert response.status_code == 202
    assert (response.json()["run"], response.json()["status"]) == (dead.pk, "queued")
    assert enqueued == [dead.pk]
    assert SyncRun.objects.count() == 1
    assert (dead.status, dead.mode, dead.error, dead.resume_sys_id) == (
        "queued",
        "full",
        "",
        "a" * 32,
    )
    assert "no sign of life for 91 s (worker stopped?)" in dead.log


@pytest.mark.django_db
def test_a_running_run_with_a_fresh_heartbeat_is_not_replaced(admin_api):
    source = plain_source(acme())
    alive = SyncRun.objects.create(
        source=source, status="running", heartbeat_at=timezone.now() - timedelta(seconds=30)
    )

    response = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")

    alive.refresh_from_db()
    assert response.status_code == 409
    assert (alive.status, alive.error) == ("running", "")


# --- scheduled task -----------------------------------------------------------------------


@pytest.mark.django_db
def test_scheduled_task_creates_a_run_and_skips_while_one_is_active():
    # given a source
    source = plain_source(acme())

    # when beat fires twice before the first run finishes
    first = tasks.sync_source_scheduled(source.pk)
    second = tasks.sync_source_scheduled(source.pk)

    # then the first made a queued run, the second skipped
    run = SyncRun.objects.get()
    assert (first, run.status, run.mode) == (run.pk, "queued", "incremental")
    assert second is None
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_scheduled_task_skips_a_disabled_or_missing_source():
    source = plain_source(acme(), enabled=False)

    assert tasks.sync_source_scheduled(source.pk) is None
    assert tasks.sync_source_scheduled(source.pk + 1000) is None
    assert SyncRun.objects.count() == 0


# --- runs ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_runs_api_is_admin_only(api, member_api):
    run = SyncRun.objects.create(source=plain_source(acme()), status="failed", error="boom")

    for client, status in ((api, 401), (member_api, 403)):
        assert client.get(RUNS).status_code == status
        assert client.get(f"{RUNS}{run.pk}/").status_code == status


@pytest.mark.django_db
def test_runs_list_filters_by_source_and_status(admin_api):
    # given runs of two sources
    connection = acme()
    incidents, problems = plain_source(connection), plain_source(connection, "problem")
    ok = SyncRun.objects.create(source=incidents, status="succeeded")
    bad = SyncRun.objects.create(source=incidents, status="failed", error="x")
    queued = SyncRun.objects.create(source=problems)

    def ids(query: str) -> list[int]:
        response = admin_api.get(f"{RUNS}?{query}")
        assert response.status_code == 200
        return [r["id"] for r in response.json()["results"]]

    # when / then the newest first, filtered as asked
    assert ids("") == [queued.pk, bad.pk, ok.pk]
    assert ids(f"source={incidents.pk}") == [bad.pk, ok.pk]
    assert ids("status=queued") == [queued.pk]
    assert ids(f"source={incidents.pk}&status=succeeded") == [ok.pk]
    assert ids(f"source={problems.pk}&status=failed") == []


@pytest.mark.django_db
def test_run_detail_has_status_counts_error_and_progress(admin_api):
    # given a run half way through
    source = plain_source(acme())
    run = SyncRun.objects.create(
        source=source, mode="full", status="running", attempts=2, pages=3, requests=4,
        rows_seen=150, created=140, updated=10, total_estimate=600, log="retried once\n",
    )  # fmt: skip

    # when
    body = admin_api.get(f"{RUNS}{run.pk}/").json()

    # then
    assert {k: body[k] for k in (
        "id", "source", "mode", "status", "attempts", "pages", "requests", "rows_seen",
        "created", "updated", "skipped_stale", "deleted", "evidence_created", "total_estimate",
        "progress", "error", "log", "finished_at",
    )} == {
        "id": run.pk, "source": source.pk, "mode": "full", "status": "running", "attempts": 2,
        "pages": 3, "requests": 4, "rows_seen": 150, "created": 140, "updated": 10,
        "skipped_stale": 0, "deleted": 0, "evidence_created": 0, "total_estimate": 600,
        "progress": 0.25, "error": "", "log": "retried once\n", "finished_at": None,
    }  # fmt: skip


@pytest.mark.django_db
def test_run_progress_is_null_without_an_estimate_and_one_when_done(admin_api):
    source = plain_source(acme())
    done = SyncRun.objects.create(source=source, status="succeeded")
    unknown = SyncRun.objects.create(source=source, status="running", rows_seen=10)

    assert admin_api.get(f"{RUNS}{done.pk}/").json()["progress"] == 1.0
    assert admin_api.get(f"{RUNS}{unknown.pk}/").json()["progress"] is None


@pytest.mark.django_db
def test_run_detail_says_when_an_active_run_is_reclaimed_and_where_it_resumes(admin_api, settings):
    settings.SERVICENOW_STALE_RUN_SECONDS = 90
    source = plain_source(acme())
    beat = timezone.now().replace(microsecond=0)
    running = SyncRun.objects.create(
        source=source, status="running", heartbeat_at=beat,
        resume_ts=beat - timedelta(days=3), resume_sys_id="f" * 32,
    )  # fmt: skip
    done = SyncRun.objects.create(source=source, status="succeeded", heartbeat_at=beat)

    body = admin_api.get(f"{RUNS}{running.pk}/").json()

    assert body["reclaim_at"] == (beat + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    assert (body["resume_sys_id"], body["failures_in_a_row"], body["retry_at"]) == (
        "f" * 32,
        0,
        None,
    )
    assert admin_api.get(f"{RUNS}{done.pk}/").json()["reclaim_at"] is None


@pytest.mark.django_db(transaction=True)
def test_a_sync_with_a_wrong_password_fails_with_a_readable_error(admin_api, emulator):
    # given a source whose connection has a wrong password
    connection = connection_save(connection=make_connection(emulator), password=SECRET)
    source = make_source(connection)

    # when an admin syncs it
    accepted = admin_api.post(f"{SOURCES}{source.pk}/sync/", {}, format="json")
    wait_for(accepted.json()["run"])
    body = admin_api.get(f"{RUNS}{accepted.json()['run']}/").json()

    # then the run failed, saying the instance refused the login, without the password
    assert accepted.status_code == 202
    assert body["status"] == "failed"
    assert body["error"].startswith("401 User Not Authenticated")
    assert (body["attempts"], body["rows_seen"]) == (1, 0)
    assert SECRET not in json.dumps(body)


# --- work items ---------------------------------------------------------------------------


def make_work_items(source: Source, count: int, person: Person | None = None,
                    start: int = 0) -> list[WorkItem]:  # fmt: skip
    now = timezone.now().replace(microsecond=0)
    return WorkItem.objects.bulk_create(
        WorkItem(
            connection_id=source.connection_id,
            source=source,
            table=source.table,
            sys_id=f"{n:032x}",
            number=f"INC{n:07d}",
            short_description=f"Incident {n}",
            state="6",
            person=person,
            attributions={"assigned_to": "a" * 32} if person else {},
            sys_updated_on=now - timedelta(minutes=n),
        )
        for n in range(start, start + count)
    )


@pytest.fixture
def org(db):
    """boss → erin; ken is erin's peer, also under boss's peer."""
    boss = PersonFactory(user__username="boss", email="boss@example.com")
    erin = PersonFactory(user__username="erin", email="erin@example.com", manager=boss)
    ken = PersonFactory(user__username="ken", email="ken@example.com")
    return {"boss": boss, "erin": erin, "ken": ken}


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_work_item_list_has_the_contract_fields(admin_api, org):
    # given an imported, then deleted, work item of erin
    source = plain_source(acme())
    (item,) = make_work_items(source, 1, org["erin"])
    item.deleted_at = timezone.now()
    item.save()

    # when
    response = admin_api.get(f"{WORK_ITEMS}?source={source.pk}")

    # then
    (row,) = response.json()["results"]
    assert {k: row[k] for k in (
        "id", "source", "sys_id", "number", "table", "short_description", "state", "person",
        "sys_updated_on", "deleted", "url",
    )} == {
        "id": item.pk, "source": source.pk, "sys_id": "0" * 32, "number": "INC0000000",
        "table": "incident", "short_description": "Incident 0", "state": "6",
        "person": org["erin"].pk,
        "sys_updated_on": item.sys_updated_on.isoformat().replace("+00:00", "Z"),
        "deleted": True,
        "url": "https://acme.service-now.com/nav_to.do?uri=incident.do?sys_id=" + "0" * 32,
    }  # fmt: skip


@pytest.mark.django_db
def test_work_items_filter_by_source(admin_api):
    connection = acme()
    incidents, problems = plain_source(connection), plain_source(connection, "problem")
    make_work_items(incidents, 2)
    make_work_items(problems, 3, start=10)

    assert admin_api.get(f"{WORK_ITEMS}?source={incidents.pk}").json()["count"] == 2
    assert admin_api.get(f"{WORK_ITEMS}?source={problems.pk}").json()["count"] == 3
    assert admin_api.get(WORK_ITEMS).json()["count"] == 5


@pytest.mark.django_db
def test_work_items_are_scoped_to_self_and_reports(admin_api, org):
    # given items of erin, her manager boss, ken and nobody
    source = plain_source(acme())
    erins = make_work_items(source, 2, org["erin"])
    boss = make_work_items(source, 1, org["boss"], start=10)
    kens = make_work_items(source, 1, org["ken"], start=20)
    make_work_items(source, 1, None, start=30)

    def seen(user) -> set[int]:
        return {r["id"] for r in as_user(user).get(WORK_ITEMS).json()["results"]}

    # when / then
    assert admin_api.get(WORK_ITEMS).json()["count"] == 5
    assert seen(org["erin"].user) == {i.pk for i in erins}
    assert seen(org["boss"].user) == {i.pk for i in erins + boss}
    assert seen(org["ken"].user) == {kens[0].pk}
    assert seen(UserFactory(username="nobody")) == set()


@pytest.mark.django_db
def test_work_item_detail_outside_scope_is_a_404(org):
    # given an item of erin
    source = plain_source(acme())
    (item,) = make_work_items(source, 1, org["erin"])
    url = f"{WORK_ITEMS}{item.pk}/"

    # when erin, her manager and a peer read it
    erin = as_user(org["erin"].user).get(url)
    boss = as_user(org["boss"].user).get(url)
    peer = as_user(org["ken"].user).get(url)

    # then the peer learns nothing
    assert (erin.status_code, boss.status_code) == (200, 200)
    assert erin.json()["person"] == org["erin"].pk
    assert peer.status_code == 404
    assert peer.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_work_items_need_a_login(api):
    response = api.get(WORK_ITEMS)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["admin", "boss"])
def test_work_item_list_queries_do_not_grow_with_rows(org, viewer):
    # given one page of 10 items, then a list of 200
    source = plain_source(acme())
    user = AdminUserFactory(username="root") if viewer == "admin" else org["boss"].user
    client = as_user(user)
    make_work_items(source, 10, org["erin"])

    with CaptureQueriesContext(db_connection) as small:
        assert len(client.get(f"{WORK_ITEMS}?source={source.pk}").json()["results"]) == 10
    make_work_items(source, 190, org["erin"], start=10)
    with CaptureQueriesContext(db_connection) as large:
        assert len(client.get(f"{WORK_ITEMS}?source={source.pk}").json()["results"]) == 50

    # then the same number of queries, and few of them
    assert len(large.captured_queries) == len(small.captured_queries) <= 6


@pytest.mark.django_db
@pytest.mark.parametrize("count", [10, 200])
def test_work_item_list_stays_under_a_fixed_query_budget(
    admin_api, django_assert_max_num_queries, count
):
    source = plain_source(acme())
    make_work_items(source, count)

    with django_assert_max_num_queries(3):
        response = admin_api.get(f"{WORK_ITEMS}?source={source.pk}")

    assert response.json()["count"] == count
