"""The Django admin's ServiceNow connection form: secrets are write-only. Empty keeps the
stored one, a value replaces it, "clear stored …" removes it (as the API's "" does), both at
once is refused, and the change page says whether one is stored, never what it is."""

import pytest

from servicenow.models import Connection
from servicenow.secrets import secret_decrypt
from servicenow.services import connection_save

SECRET = "s3cr3t-Pa55"
CLIENT_SECRET = "cl1ent-S3cret-Xy"
NEW_SECRET = "n3w-Pa55-Qz"


@pytest.fixture
def acme(db) -> Connection:
    """An OAuth connection with both secrets stored; never dialled."""
    connection = Connection(
        name="Acme",
        instance_url="https://acme.service-now.com",
        auth_type=Connection.AuthType.OAUTH_PASSWORD,
        username="integration",
        client_id="ladder-tracker",
    )
    return connection_save(connection=connection, password=SECRET, client_secret=CLIENT_SECRET)


@pytest.fixture
def admin_web(client, admin_user):
    client.force_login(admin_user)
    return client


def change_url(connection: Connection) -> str:
    return f"/admin/servicenow/connection/{connection.pk}/change/"


def form_data(connection: Connection, **changes) -> dict:
    """What the change form posts when nothing is touched: secrets empty, boxes unticked."""
    data = {
        "name": connection.name,
        "instance_url": connection.instance_url,
        "auth_type": connection.auth_type,
        "username": connection.username,
        "password": "",
        "client_id": connection.client_id,
        "client_secret": "",
        "verify_tls": "on" if connection.verify_tls else "",
        "ca_certificate": connection.ca_certificate,
        "proxy_url": connection.proxy_url,
        "page_size": str(connection.page_size),
        "api_path": connection.api_path,
        "_save": "Save",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not False}


def stored(connection: Connection) -> tuple[str, str]:
    connection.refresh_from_db()
    return connection.password_encrypted, connection.client_secret_encrypted


def post(admin_web, connection: Connection, **changes):
    return admin_web.post(change_url(connection), form_data(connection, **changes))


def test_saving_with_the_secret_fields_empty_keeps_both(admin_web, acme):
    # given a connection with both secrets stored
    before = stored(acme)

    # when an admin renames it and leaves the secret fields empty
    response = post(admin_web, acme, name="Acme prod")

    # then it is saved, renamed, with both secrets untouched
    assert response.status_code == 302, response.content.decode()
    assert stored(acme) == before
    assert acme.name == "Acme prod"
    assert secret_decrypt(acme.password_encrypted) == SECRET
    assert (acme.has_password, acme.has_client_secret) == (True, True)


@pytest.mark.parametrize(
    ("box", "left"),
    [("clear_password", "client_secret"), ("clear_client_secret", "password")],
)
def test_ticking_clear_removes_that_secret_only(admin_web, acme, box, left):
    # given a connection with both secrets stored
    before = stored(acme)

    # when an admin ticks one "clear stored …" box
    response = post(admin_web, acme, **{box: "on"})

    # then that secret is gone and the other one is kept
    assert response.status_code == 302, response.content.decode()
    password, client_secret = stored(acme)
    if left == "client_secret":
        assert (acme.has_password, acme.has_client_secret) == (False, True)
        assert (password, client_secret) == ("", before[1])
    else:
        assert (acme.has_password, acme.has_client_secret) == (True, False)
        assert (password, client_secret) == (before[0], "")


def test_ticking_both_boxes_clears_both_and_the_page_then_says_none_is_stored(admin_web, acme):
    # when an admin ticks both boxes
    response = post(admin_web, acme, clear_password="on", clear_client_secret="on")
    page = admin_web.get(change_url(acme)).content.decode()

    # then no secret is stored, and the change page says so with the boxes disabled
    assert response.status_code == 302, response.content.decode()
    assert stored(acme) == ("", "")
    assert "No password stored." in page
    assert "No client secret stored." in page
    assert 'name="clear_password" disabled' in page
    assert 'name="clear_client_secret" disabled' in page


def test_a_new_value_replaces_the_stored_secret(admin_web, acme):
    # given a connection with both secrets stored
    before = stored(acme)

    # when an admin types a new password
    response = post(admin_web, acme, password=NEW_SECRET)

    # then the password is replaced, the client secret kept
    assert response.status_code == 302, response.content.decode()
    password, client_secret = stored(acme)
    assert password != before[0]
    assert secret_decrypt(password) == NEW_SECRET
    assert client_secret == before[1]


@pytest.mark.parametrize(
    ("field", "label"), [("password", "password"), ("client_secret", "client secret")]
)
def test_a_new_value_and_clear_together_is_a_form_error(admin_web, acme, field, label):
    # given a connection with both secrets stored
    before = stored(acme)

    # when an admin types a new secret and ticks "clear stored" for it as well
    response = post(admin_web, acme, name="Renamed", **{field: NEW_SECRET, f"clear_{field}": "on"})
    page = response.content.decode()

    # then the form is shown again with the error, the typed secret not echoed back,
    # and nothing is changed
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {
        f"clear_{field}": [f"Either type a new {label} or tick “Clear stored {label}”, not both."]
    }
    assert f"Either type a new {label} or tick" in page
    assert NEW_SECRET not in page
    assert stored(acme) == before
    assert acme.name == "Acme"


def test_the_change_page_says_a_secret_is_stored_but_never_shows_it(admin_web, acme):
    # given a connection with both secrets stored
    ciphertexts = stored(acme)

    # when an admin opens its change page
    response = admin_web.get(change_url(acme))
    page = response.content.decode()

    # then it says both are stored and offers to clear them, without the secrets or their
    # ciphertext anywhere in the HTML
    assert response.status_code == 200
    assert "A password is stored (write-only, never shown)." in page
    assert "A client secret is stored (write-only, never shown)." in page
    assert "Clear stored password" in page
    assert "Clear stored client secret" in page
    assert 'name="clear_password" disabled' not in page
    for leaked in (SECRET, CLIENT_SECRET, *ciphertexts):
        assert leaked not in page


def test_the_add_page_has_nothing_to_clear(admin_web):
    # when an admin opens the add page
    page = admin_web.get("/admin/servicenow/connection/add/").content.decode()

    # then the clear boxes are there but disabled: nothing is stored yet
    assert "No password stored." in page
    assert 'name="clear_password" disabled' in page
    assert 'name="clear_client_secret" disabled' in page


def test_a_posted_clear_box_on_a_connection_without_secrets_is_ignored(admin_web, acme):
    # given a connection whose secrets were cleared, and a new password typed
    connection_save(connection=acme, password="", client_secret="")

    # when an admin posts a new password with a (disabled) clear box ticked anyway
    response = post(admin_web, acme, password=NEW_SECRET, clear_password="on")

    # then the box is ignored: the new password is stored
    assert response.status_code == 302, response.content.decode()
    assert secret_decrypt(stored(acme)[0]) == NEW_SECRET
