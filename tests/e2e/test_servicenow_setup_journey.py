"""The admin sets ServiceNow up in the browser: a new connection whose credential fields
follow the auth type (connection-auth.js), Test connection beside the form against the
emulator over real HTTP (a wrong secret first, then the right one), save, then a source
added with its settings as fields. No CSP violation on the way (no inline script)."""

import re

import pytest

from servicenow.emulator import Emulator
from servicenow.models import Connection, Source
from servicenow.secrets import secret_decrypt
from tests.factories import PASSWORD, AdminUserFactory
from tests.servicenow.conftest import make_dataset

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def emulator():
    emu = Emulator(make_dataset(incidents=20, users=4)).start()
    yield emu
    emu.stop()


def row(page, name: str):
    return page.locator(f'[data-field="{name}"]')


def test_admin_creates_a_connection_switches_auth_tests_it_and_adds_a_source(
    page, live_server, emulator
):
    AdminUserFactory(username="ada")
    violations = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/login/?next=/servicenow/setup/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/servicenow/setup/")

    # the admin starts a new connection: basic, so username and password, no client id
    page.get_by_role("link", name="New connection").first.click()
    page.wait_for_url(f"{live_server.url}/servicenow/setup/connections/new/")
    assert row(page, "username").is_visible() and row(page, "password").is_visible()
    assert row(page, "client_id").is_hidden() and row(page, "client_secret").is_hidden()
    page.get_by_role("textbox", name="Name", exact=True).fill("Emulator")
    page.get_by_label("Instance URL").fill(emulator.url)
    page.get_by_role("textbox", name="Username", exact=True).fill("integration")

    # switching to OAuth client credentials swaps the fields at once
    page.get_by_label("Auth type").select_option("oauth_client_credentials")
    assert row(page, "username").is_hidden() and row(page, "password").is_hidden()
    assert row(page, "client_id").is_visible() and row(page, "client_secret").is_visible()
    # and OAuth with a password shows both sets
    page.get_by_label("Auth type").select_option("oauth_password")
    assert row(page, "username").is_visible() and row(page, "client_id").is_visible()
    page.get_by_label("Auth type").select_option("oauth_client_credentials")
    page.get_by_label("Client id").fill("ladder-tracker")

    # Test connection with a wrong secret says the credentials were refused
    page.get_by_label("Client secret", exact=True).fill("not-the-secret")
    page.get_by_role("button", name="Test connection").click()
    failed = page.locator('#connection-check [data-check="failed"]')
    failed.wait_for()
    assert "Authentication refused" in failed.inner_text()

    # with the right one, it connects; nothing is saved yet
    page.get_by_label("Client secret", exact=True).fill("ladder-tracker-secret")
    page.get_by_role("button", name="Test connection").click()
    page.locator('#connection-check [data-check="ok"]').wait_for()
    assert re.search(
        r"Reachable and authenticated \(\d+ ms\)", page.inner_text("#connection-check")
    )
    assert Connection.objects.count() == 0

    # saving goes back to the setup page, which lists it
    page.get_by_role("button", name="Save connection").click()
    page.wait_for_url(f"{live_server.url}/servicenow/setup/")
    connection = Connection.objects.get()
    assert (connection.auth_type, connection.username) == ("oauth_client_credentials", "")
    assert secret_decrypt(connection.client_secret_encrypted) == "ladder-tracker-secret"
    section = page.locator(f'section[data-connection="{connection.pk}"]')
    assert "OAuth (client credentials)" in section.inner_text()
    assert "No source yet." in section.inner_text()

    # then adds a source, its settings as fields
    section.get_by_role("link", name="Add a source").click()
    page.get_by_role("textbox", name="Name", exact=True).fill("Incidents")
    page.get_by_label("Table").fill("incident")
    page.get_by_label("Filter (encoded query)").fill("active=true")
    page.get_by_label("Extra fields").fill("category, subcategory")
    page.get_by_label("Sync every (minutes)").fill("30")
    page.get_by_role("button", name="Save source").click()
    page.wait_for_url(f"{live_server.url}/servicenow/setup/")

    source = Source.objects.get()
    assert (source.connection_id, source.query, source.fields) == (
        connection.pk,
        "active=true",
        ["category", "subcategory"],
    )
    source_row = page.locator(f'tr[data-source="{source.pk}"]')
    assert "enabled, every 30 min" in source_row.inner_text()
    assert "never run" in source_row.inner_text()
    assert violations == []


def test_the_django_admin_connection_form_follows_the_auth_type_too(page, live_server):
    AdminUserFactory(username="ada")
    page.goto(f"{live_server.url}/admin/login/?next=/admin/servicenow/connection/add/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/servicenow/connection/add/")

    # basic first: username and password rows, no client id
    assert page.locator(".form-row.field-username").is_visible()
    assert page.locator(".form-row.field-client_id").is_hidden()
    # client credentials: the other way round
    page.locator("#id_auth_type").select_option("oauth_client_credentials")
    assert page.locator(".form-row.field-username").is_hidden()
    assert page.locator(".form-row.field-password").is_hidden()
    assert page.locator(".form-row.field-client_secret").is_visible()
