"""The ServiceNow setup pages (servicenow/setup_views.py): connections and sources in one
place with each source's health, connection forms whose credentials follow the auth type,
Test connection beside the form (against the emulator over real HTTP), source settings as
fields that the sync reads unchanged, and who may use any of it."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from apps.security.models import SecurityEvent
from servicenow.models import Connection, Source, SyncRun
from servicenow.secrets import secret_decrypt
from servicenow.services import connection_save, source_save
from servicenow.sync.workitems import WorkItemWriter
from tests.factories import UserFactory

from .conftest import run_sync, wait_for
from .test_outbound import fake_dns

SETUP = "/servicenow/setup/"
NEW_CONNECTION = "/servicenow/setup/connections/new/"
TRY_NEW = "/servicenow/setup/connections/try/"
NEW_SOURCE = "/servicenow/setup/sources/new/"
SECRET = "s3cr3t-Pa55"
NEW_SECRET = "n3w-Pa55-Qz"
CLIENT_SECRET = "cl1ent-S3cret-Xy"
CREDENTIALS = ["username", "password", "clear_password", "client_id", "client_secret",
               "clear_client_secret"]  # fmt: skip


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def html(response) -> str:
    return response.content.decode()


def acme(name: str = "Acme", **fields) -> Connection:
    """A connection that is never dialled."""
    password = fields.pop("password", SECRET)
    client_secret = fields.pop("client_secret", None)
    connection = Connection(
        name=name,
        instance_url=fields.pop("instance_url", "https://acme.service-now.com"),
        username=fields.pop("username", "integration"),
        **fields,
    )
    return connection_save(connection=connection, password=password, client_secret=client_secret)


def connection_form(**changes) -> dict:
    data = {
        "name": "Acme",
        "instance_url": "https://acme.service-now.com",
        "auth_type": "basic",
        "username": "integration",
        "password": SECRET,
        "client_id": "",
        "client_secret": "",
        "verify_tls": "on",
        "ca_certificate": "",
        "proxy_url": "",
        "page_size": "1000",
        "api_path": "/api/now/table",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def edit_data(connection: Connection, **changes) -> dict:
    """What the edit form posts when nothing is touched: secrets empty, boxes unticked."""
    untouched = {
        "name": connection.name,
        "instance_url": connection.instance_url,
        "auth_type": connection.auth_type,
        "username": connection.username,
        "password": "",
        "client_id": connection.client_id,
        "page_size": str(connection.page_size),
    }
    return connection_form(**{**untouched, **changes})


def shown_credentials(page: str) -> list[str]:
    """The credential rows the page shows (not hidden) for the chosen auth type."""
    rows = re.findall(r'<div data-field="([a-z_]+)" data-auth-types="[^"]*"\s*(hidden)?>', page)
    return [name for name, hidden in rows if name in CREDENTIALS and not hidden]


# --- who may ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_non_admins_get_403_pages_and_the_api_403_json(client, api):
    # given a connection and a source, and a signed-in engineer who is no admin
    connection = acme()
    source = source_save(source=Source(connection=connection, name="Incidents", table="incident"))
    user = UserFactory()
    client.force_login(user)
    api.force_authenticate(user)
    pages = [SETUP, NEW_CONNECTION, f"{SETUP}connections/{connection.pk}/", NEW_SOURCE,
             f"{SETUP}sources/{source.pk}/", f"{SETUP}sources/{source.pk}/runs/"]  # fmt: skip
    posts = [NEW_CONNECTION, TRY_NEW, f"{SETUP}connections/{connection.pk}/try/",
             f"{SETUP}connections/{connection.pk}/", NEW_SOURCE]  # fmt: skip

    # when they open every page and post every form
    gets = {url: client.get(url).status_code for url in pages}
    posted = {url: client.post(url, connection_form(name="Hacked")).status_code for url in posts}
    api_test = api.post(f"/api/v1/servicenow/connections/{connection.pk}/test/")

    # then each is a 403, nothing changed or was dialled, and the API says so in JSON
    assert set(gets.values()) == {403} and set(posted.values()) == {403}
    assert list(Connection.objects.values_list("name", flat=True)) == ["Acme"]
    assert Connection.objects.get().last_checked_at is None
    assert api_test.status_code == 403
    assert api_test.json()["error"]["code"] == "permission_denied"


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(SETUP)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/servicenow/setup/")


# --- the setup page: connections, sources, health -----------------------------------------


@pytest.mark.django_db
def test_the_setup_page_lists_connections_with_their_sources_and_health(admin_client):
    # given two connections: one with a healthy and a failing source, one without sources
    acme_prod = acme("Acme prod")
    acme("Acme test")
    healthy = source_save(source=Source(connection=acme_prod, name="Incidents", table="incident",
                                        interval_minutes=15))  # fmt: skip
    failing = source_save(source=Source(connection=acme_prod, name="Changes",
                                        table="change_request"))  # fmt: skip
    end = timezone.now()
    success = SyncRun.objects.create(
        source=healthy, status="succeeded", mode="incremental", rows_seen=7,
        started_at=end - timedelta(minutes=10, seconds=3), finished_at=end - timedelta(minutes=10),
        upper_bound=end - timedelta(minutes=10),
    )  # fmt: skip
    for n in range(3):
        last_failed = SyncRun.objects.create(
            source=failing, status="failed", started_at=end - timedelta(minutes=5 - n),
            finished_at=end - timedelta(minutes=5 - n), error=f"503 Service Unavailable #{n}",
        )  # fmt: skip

    # when the admin opens the setup page
    response = admin_client.get(SETUP)
    page = html(response)

    # then each connection is there with its sources, state, health and runs link
    assert response.status_code == 200
    assert page.index("Acme prod") < page.index("Acme test")
    assert "No source yet." in page  # Acme test
    rows = {int(pk): state for state, pk in re.findall(r'<tr class="health ([a-z]+)" '
                                                        r'data-source="(\d+)">', page)}  # fmt: skip
    assert rows == {healthy.pk: "ok", failing.pk: "failing"}
    assert "enabled, every 15 min" in page and "enabled, by hand" in page
    assert f'<a href="/servicenow/runs/{success.pk}/">#{success.pk}</a> Succeeded' in page
    assert f'<a href="/servicenow/runs/{last_failed.pk}/">#{last_failed.pk}</a> Failed' in page
    assert 'data-failures="3">3' in page and 'data-failures="0">0' in page
    assert "503 Service Unavailable #2" in page
    lag = int(re.search(r'data-lag-seconds="(\d+)"', page).group(1))
    assert 600 <= lag <= 660
    assert f'href="/servicenow/setup/sources/{healthy.pk}/runs/">Runs</a>' in page
    assert f'href="/servicenow/setup/sources/new/?connection={acme_prod.pk}"' in page
    assert 'href="/servicenow/"' in page  # the Sync page starts runs
    assert SECRET not in page and acme_prod.password_encrypted not in page
    assert "{#" not in page  # a template comment spilled as text (base.html once did)


@pytest.mark.django_db
@pytest.mark.parametrize("sources", [1, 6])
def test_the_setup_page_reads_in_a_fixed_number_of_queries(
    admin_client, django_assert_num_queries, sources
):
    # given two connections and n sources with runs
    connections = [acme("A"), acme("B")]
    for n in range(sources):
        source = source_save(source=Source(connection=connections[n % 2], name=f"S{n}",
                                           table=f"table_{n}"))  # fmt: skip
        SyncRun.objects.create(source=source, status="failed", finished_at=timezone.now())
    admin_client.get(SETUP)  # warm the session

    # when / then: session, user, the nav's person and inbox count, connections, sources
    # with their health, their recent runs: the same whatever the number of sources
    with django_assert_num_queries(6):
        assert admin_client.get(SETUP).status_code == 200


# --- connection form: fields follow the auth type -----------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("auth_type", "shown"),
    [
        pytest.param("basic", ["username", "password", "clear_password"], id="basic"),
        pytest.param("oauth_password", CREDENTIALS, id="oauth-password"),
        pytest.param("oauth_client_credentials",
                     ["client_id", "client_secret", "clear_client_secret"],
                     id="oauth-client-credentials"),
    ],
)  # fmt: skip
def test_the_connection_form_shows_only_the_chosen_auth_types_fields(
    admin_client, auth_type, shown
):
    # given a connection of that auth type, and a new one posted with it (and an error)
    connection = acme(auth_type=auth_type, client_id="ladder-tracker", client_secret=CLIENT_SECRET)

    # when the admin opens its edit page, and posts a new one of that type that fails
    edit = admin_client.get(f"{SETUP}connections/{connection.pk}/")
    posted = admin_client.post(NEW_CONNECTION, connection_form(auth_type=auth_type, name=""))

    # then only that type's credential rows are shown; the others are there, hidden, for
    # the script to show when the type changes; the select tells the script which is which
    assert shown_credentials(html(edit)) == shown
    assert posted.status_code == 422
    assert shown_credentials(html(posted)) == shown
    assert len(re.findall(r'data-field="(?:client_id|username|password)"', html(edit))) == 3
    assert "data-auth-fields=" in html(edit)
    assert 'src="/static/js/connection-auth.js"' in html(edit)


@pytest.mark.django_db
def test_a_new_connection_form_starts_as_basic(admin_client):
    page = html(admin_client.get(NEW_CONNECTION))

    assert shown_credentials(page) == ["username", "password", "clear_password"]
    assert '<option value="basic" selected>Basic</option>' in page
    assert 'name="clear_password" disabled' in page  # nothing stored yet


# --- connection form: validation, secrets -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"username": ""}, "username", "This auth type needs a username."),
        ({"password": ""}, "password", "Basic needs a password."),
        ({"auth_type": "oauth_password", "client_secret": CLIENT_SECRET}, "client_id",
         "OAuth needs a client id."),
        ({"auth_type": "oauth_client_credentials", "client_id": "ladder-tracker"},
         "client_secret", "OAuth (client credentials) needs a client secret."),
        ({"instance_url": "https://admin:hunter2@acme.service-now.com"}, "instance_url",
         "Must not contain credentials; use username and password."),
        ({"instance_url": "http://acme.service-now.com"}, "instance_url", "Must be an https URL"),
        ({"proxy_url": "socks5://proxy:1080"}, "proxy_url", "SOCKS proxies are not supported"),
        ({"page_size": "0"}, "page_size", "Between 1 and 10000."),
        ({"api_path": "/api/now/import"}, "api_path", "Select a valid choice."),
    ],
    ids=["username", "password", "client-id", "client-secret", "url-credentials", "http",
         "socks-proxy", "page-size", "api-path"],
)  # fmt: skip
def test_connection_form_errors_name_the_field_and_never_echo_a_secret(
    admin_client, settings, change, field, message
):
    # given a form with one bad value (and a typed password)
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False

    # when the admin saves it
    response = admin_client.post(NEW_CONNECTION, connection_form(**change))

    # then the form comes back with the error on that field, nothing is stored, and the
    # typed password is not in the page
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert Connection.objects.count() == 0
    assert SECRET not in html(response) and "hunter2" not in html(response)


@pytest.mark.django_db
def test_create_stores_the_secret_encrypted_and_the_edit_page_only_says_one_is_stored(
    admin_client,
):
    # when the admin creates a basic connection
    response = admin_client.post(
        NEW_CONNECTION, connection_form(instance_url="https://acme.service-now.com/")
    )

    # then it is saved (trailing slash gone), the password encrypted, and the edit page
    # says one is stored without showing it
    connection = Connection.objects.get()
    assert response.status_code == 302 and response["Location"] == SETUP
    assert connection.instance_url == "https://acme.service-now.com"
    assert secret_decrypt(connection.password_encrypted) == SECRET
    edit = html(admin_client.get(f"{SETUP}connections/{connection.pk}/"))
    assert "A password is stored (write-only, never shown)." in edit
    assert SECRET not in edit and connection.password_encrypted not in edit
    assert not re.search(r'<input type="password" name="password"[^>]*value=', edit)


@pytest.mark.django_db
def test_a_blank_secret_on_edit_keeps_it_a_typed_one_replaces_it_the_box_clears_it(
    admin_client,
):
    # given an OAuth password connection with both secrets
    connection = acme(auth_type="oauth_password", client_id="ladder-tracker",
                      client_secret=CLIENT_SECRET)  # fmt: skip
    url = f"{SETUP}connections/{connection.pk}/"
    before = (connection.password_encrypted, connection.client_secret_encrypted)

    # when the admin renames it with the secret fields empty
    renamed = admin_client.post(url, edit_data(connection, name="Acme prod"))
    connection.refresh_from_db()
    kept = (connection.password_encrypted, connection.client_secret_encrypted)
    # then types a new password
    admin_client.post(url, edit_data(connection, password=NEW_SECRET))
    connection.refresh_from_db()
    replaced = secret_decrypt(connection.password_encrypted)
    # then ticks "clear stored client secret"
    admin_client.post(url, edit_data(connection, clear_client_secret="on"))
    connection.refresh_from_db()

    # then: kept, replaced, cleared; each change audited, never with the value
    assert renamed.status_code == 302
    assert (connection.name, kept) == ("Acme prod", before)
    assert replaced == NEW_SECRET
    assert (connection.has_password, connection.client_secret_encrypted) == (True, "")
    details = list(SecurityEvent.objects.filter(kind="secret_changed").order_by("pk")
                   .values_list("detail", flat=True))  # fmt: skip
    assert details[-2:] == [{"password": "changed"}, {"client_secret": "cleared"}]
    assert NEW_SECRET not in str(details)


@pytest.mark.django_db
def test_switching_the_auth_type_clears_the_other_types_credentials(admin_client):
    # given a basic connection with a username and a password
    connection = acme()
    url = f"{SETUP}connections/{connection.pk}/"

    # when the admin switches it to client credentials without a client secret, then with one
    refused = admin_client.post(
        url, edit_data(connection, auth_type="oauth_client_credentials", client_id="ladder-tracker")
    )
    saved = admin_client.post(url, edit_data(
        connection, auth_type="oauth_client_credentials", client_id="ladder-tracker",
        client_secret=CLIENT_SECRET, password="typed-but-hidden"))  # fmt: skip

    # then the first asks for the secret; the second keeps only what client credentials
    # use: the username and stored password (and the hidden typed one) are gone
    connection.refresh_from_db()
    assert refused.status_code == 422
    assert refused.context["form"].errors == {
        "client_secret": ["OAuth (client credentials) needs a client secret."]
    }
    assert saved.status_code == 302
    assert (connection.auth_type, connection.username, connection.client_id) == (
        "oauth_client_credentials", "", "ladder-tracker")  # fmt: skip
    assert (connection.password_encrypted, secret_decrypt(connection.client_secret_encrypted)) == (
        "", CLIENT_SECRET)  # fmt: skip
    event = SecurityEvent.objects.filter(kind="secret_changed").latest("pk")
    assert event.detail == {"password": "cleared", "client_secret": "changed"}


# --- Test connection beside the form (the emulator, over real HTTP) -----------------------


def try_result(response) -> tuple[str, str]:
    """(data-check, the fragment's text) of Test connection's answer."""
    page = html(response)
    state = re.search(r'data-check="([a-z]+)"', page).group(1)
    return state, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()


@pytest.mark.django_db
def test_test_connection_succeeds_with_the_settings_as_typed_and_saves_nothing(
    admin_client, emulator
):
    # when the admin tests a new connection to the emulator before saving it
    response = admin_client.post(TRY_NEW, connection_form(
        instance_url=emulator.url, password="integration-pass"))  # fmt: skip

    # then the emulator was asked (authenticated), the fragment says so, nothing is stored
    state, text = try_result(response)
    assert response.status_code == 200
    assert state == "ok"
    assert re.search(r"✓ Connected\. Reachable and authenticated \(\d+ ms\)\.", text)
    assert Connection.objects.count() == 0
    table_reads = [e for e in emulator.request_log if e[1].startswith("/api/now/table/sys_user")]
    assert [status for _, _, status in table_reads] == [200]
    assert "integration-pass" not in html(response)


@pytest.mark.django_db
def test_test_connection_with_a_wrong_password_says_authentication_was_refused(
    admin_client, emulator
):
    # when the admin tests the emulator with a wrong password
    response = admin_client.post(TRY_NEW, connection_form(instance_url=emulator.url,
                                                          password=SECRET))  # fmt: skip

    # then the fragment says the credentials were refused, and why, without the password
    state, text = try_result(response)
    assert state == "failed"
    assert 'data-error="AuthenticationError"' in html(response)
    assert text.startswith("✗ Authentication refused: check the credentials. 401 User Not "
                           "Authenticated")  # fmt: skip
    assert SECRET not in html(response)


@pytest.mark.django_db
def test_test_connection_on_edit_uses_the_stored_secret_when_left_empty(admin_client, emulator):
    # given a saved OAuth (client credentials) connection to the emulator, never checked
    connection = acme(instance_url=emulator.url, auth_type="oauth_client_credentials",
                      username="", password=None, client_id="ladder-tracker",
                      client_secret="ladder-tracker-secret")  # fmt: skip

    # when the admin tests it from the edit page with the secret field empty
    response = admin_client.post(f"{SETUP}connections/{connection.pk}/try/", edit_data(connection))

    # then the stored secret got a token and the read went through; the saved connection's
    # own check is left as it was (these were settings as typed)
    assert try_result(response)[0] == "ok"
    assert emulator.stats()["oauth"] == 1
    connection.refresh_from_db()
    assert connection.last_checked_at is None


@pytest.mark.django_db
def test_test_connection_says_unreachable_and_blocked_by_the_url_policy(
    admin_client, emulator, settings, monkeypatch
):
    # given a port nothing listens on
    closed = emulator.url
    port = urlsplit(closed).port
    emulator.stop()

    # when the admin tests it; then, with local instances off, a loopback address (refused
    # as typed) and a public name that resolves to loopback (refused at connect time)
    unreachable = admin_client.post(TRY_NEW, connection_form(instance_url=closed))
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False
    typed = admin_client.post(TRY_NEW, connection_form(instance_url=f"https://127.0.0.1:{port}"))
    fake_dns(monkeypatch, {"acme.service-now.com": ["127.0.0.1"]})
    resolved = admin_client.post(
        TRY_NEW, connection_form(instance_url=f"https://acme.service-now.com:{port}")
    )

    # then each says which kind of failure it was; the blocked ones sent nothing
    assert try_result(unreachable)[1].startswith(
        f"✗ Unreachable: no answer from the instance. could not connect to 127.0.0.1:{port}: "
    )
    state, text = try_result(typed)
    assert state == "invalid"
    assert "Fix the form first (nothing was sent)" in text
    assert "Instance URL: Refused: 127.0.0.1 is a loopback address" in text
    state, text = try_result(resolved)
    assert (state, 'data-error="OutboundRefusedError"' in html(resolved)) == ("failed", True)
    assert text.startswith(
        "✗ Blocked by the outbound URL policy: nothing was sent. refused to connect to "
        "acme.service-now.com: it resolves to 127.0.0.1, a loopback address"
    )


@pytest.mark.django_db
def test_test_connection_says_tls_failed_until_the_ca_is_pasted(
    admin_client, tls_emulator, tls_files
):
    # given the emulator on https with a certificate from a CA nobody trusts yet
    with open(tls_files["ca"]) as handle:
        ca = handle.read()
    settings_as_typed = connection_form(instance_url=tls_emulator.url, password="integration-pass")

    # when the admin tests it, then again with that CA pasted into the form
    untrusted = admin_client.post(TRY_NEW, settings_as_typed)
    trusted = admin_client.post(TRY_NEW, {**settings_as_typed, "ca_certificate": ca})

    # then the first says TLS failed (not "unreachable"), the second connects
    state, text = try_result(untrusted)
    assert state == "failed"
    assert text.startswith("✗ TLS failed: the certificate is not trusted or does not match. ")
    assert "certificate verify failed" in text
    assert try_result(trusted)[0] == "ok"


@pytest.mark.django_db
def test_test_connection_with_an_invalid_form_sends_nothing(admin_client, emulator):
    response = admin_client.post(TRY_NEW, connection_form(instance_url=emulator.url, username=""))

    state, text = try_result(response)
    assert state == "invalid"
    assert "Username: This auth type needs a username." in text
    assert emulator.request_log == []


@pytest.mark.django_db
def test_the_django_admin_change_page_has_a_test_button(admin_client, emulator):
    # given a saved connection to the emulator with a wrong password
    connection = acme(instance_url=emulator.url, password=SECRET)
    change = f"/admin/servicenow/connection/{connection.pk}/change/"

    # when the admin opens its change page and presses Test connection
    page = html(admin_client.get(change))
    response = admin_client.post(f"/admin/servicenow/connection/{connection.pk}/test/",
                                 follow=True)  # fmt: skip

    # then the button is there; the check ran, is recorded, and the message says why
    assert f'action="/admin/servicenow/connection/{connection.pk}/test/"' in page
    assert 'src="/static/js/connection-auth.js"' in page
    assert response.redirect_chain == [(change, 302)]
    messages = [(m.level_tag, m.message) for m in get_messages(response.wsgi_request)]
    assert messages == [("error", "Acme: Authentication refused: check the credentials. "
                         "401 User Not Authenticated: Required to provide Auth information "
                         "(table sys_user)")]  # fmt: skip
    connection.refresh_from_db()
    assert connection.last_check_ok is False


@pytest.mark.django_db
def test_the_django_admin_test_button_is_for_admins_only(client, emulator):
    connection = acme(instance_url=emulator.url)
    client.force_login(UserFactory(is_staff=False))

    response = client.post(f"/admin/servicenow/connection/{connection.pk}/test/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert emulator.request_log == []


# --- source form: settings as fields, read back by the sync -------------------------------


def source_form(connection: Connection, **changes) -> dict:
    data = {
        "connection": connection.pk,
        "name": "Incidents",
        "table": "incident",
        "kind": "work_items",
        "query": "active=true",
        "fields": "category, subcategory",
        "attribution_fields": "assigned_to opened_by",
        "enabled": "on",
        "interval_minutes": "30",
        "overlap_seconds": "120",
        "track_deletes": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"table": "Bad Table!"}, "table", "Not a ServiceNow table name."),
        ({"kind": "users"}, "table", "A users source reads sys_user."),
        ({"fields": "category, Bad-Field"}, "fields", "Not a ServiceNow field name: Bad-Field"),
        ({"attribution_fields": '"assigned_to"'}, "attribution_fields", "A list of field names"),
        ({"query": "active=true\nORDERBYnumber"}, "query", "An encoded query is one line."),
        ({"interval_minutes": "0"}, "interval_minutes", "Between 1 minute and one week."),
        ({"interval_minutes": "10081"}, "interval_minutes", "Between 1 minute and one week."),
    ],
    ids=["table", "users-table", "field-name", "not-a-list", "query-lines", "interval-0",
         "interval-week"],
)  # fmt: skip
def test_source_form_errors_name_the_field(admin_client, change, field, message):
    response = admin_client.post(NEW_SOURCE, source_form(acme(), **change))

    assert response.status_code == 422
    errors = response.context["form"].errors
    assert list(errors) == [field]
    assert message in errors[field][0]
    assert Source.objects.count() == 0


@pytest.mark.django_db
def test_the_source_form_stores_settings_the_sync_reads_and_shows_them_back(admin_client):
    # when the admin adds a source through the form
    connection = acme()
    response = admin_client.post(NEW_SOURCE, source_form(connection, query="  active=true  ",
                                 fields="category, subcategory, category"))  # fmt: skip

    # then the columns hold what the sync reads: lists of names, the query trimmed, a
    # schedule; the writer asks for those fields
    source = Source.objects.get()
    assert response.status_code == 302
    assert (source.fields, source.attribution_fields) == (
        ["category", "subcategory"], ["assigned_to", "opened_by"])  # fmt: skip
    assert (source.query, source.interval_minutes, source.overlap_seconds) == (
        "active=true", 30, 120)  # fmt: skip
    assert source.periodic_task.interval.every == 30
    writer = WorkItemWriter(source=source, counters=None)
    assert {"category", "subcategory", "assigned_to", "opened_by"} <= set(writer.fields)
    assert writer.attribution_fields == ["assigned_to", "opened_by"]
    # and the edit page shows them back as text, and saves them unchanged
    edit = admin_client.get(f"{SETUP}sources/{source.pk}/")
    assert 'value="category, subcategory"' in html(edit)
    assert 'value="assigned_to, opened_by"' in html(edit)
    form = edit.context["form"]
    again = {name: form[name].value() for name in form.fields}
    again = {k: ("on" if v is True else v) for k, v in again.items() if v not in (False, None)}
    again["fields"], again["attribution_fields"] = "category, subcategory", "assigned_to, opened_by"
    assert admin_client.post(f"{SETUP}sources/{source.pk}/", again).status_code == 302
    source.refresh_from_db()
    assert (source.fields, source.attribution_fields, source.query) == (
        ["category", "subcategory"], ["assigned_to", "opened_by"], "active=true")  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_source_from_the_form_syncs_with_its_settings(admin_client, emulator, settings):
    # given a connection and a source both made on the setup pages
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    admin_client.post(NEW_CONNECTION, connection_form(instance_url=emulator.url,
                                                      password="integration-pass"))  # fmt: skip
    connection = Connection.objects.get()
    admin_client.post(NEW_SOURCE, source_form(connection, interval_minutes=""))
    source = Source.objects.get()
    emulator.clear_log()

    # when it syncs
    run = run_sync(source)

    # then the instance was asked with the form's filter and fields
    assert wait_for(run.pk).status == "succeeded", run.error
    reads = [urlsplit(path) for _, path, _ in emulator.request_log
             if path.startswith("/api/now/table/incident")]  # fmt: skip
    params = parse_qs(reads[0].query)
    assert params["sysparm_query"][0].startswith("active=true^")
    assert {"category", "subcategory", "assigned_to", "opened_by"} <= set(
        params["sysparm_fields"][0].split(",")
    )
    assert run.rows_seen > 0


@pytest.mark.django_db
def test_the_source_runs_page_lists_that_sources_runs_only(admin_client):
    connection = acme()
    mine = source_save(source=Source(connection=connection, name="Incidents", table="incident"))
    other = source_save(source=Source(connection=connection, name="Problems", table="problem"))
    ours = SyncRun.objects.create(source=mine, status="failed", error="401 refused")
    theirs = SyncRun.objects.create(source=other, status="succeeded")

    page = html(admin_client.get(f"{SETUP}sources/{mine.pk}/runs/"))

    assert f'<a href="/servicenow/runs/{ours.pk}/">#{ours.pk}</a>' in page
    assert f"/servicenow/runs/{theirs.pk}/" not in page
    assert "401 refused" in page


@pytest.mark.django_db
def test_new_source_form_preselects_the_connection(admin_client):
    acme("A")
    second = acme("B")

    page = html(admin_client.get(f"{NEW_SOURCE}?connection={second.pk}"))

    assert f'<option value="{second.pk}" selected>B</option>' in page
