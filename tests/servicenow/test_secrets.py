"""Connection secrets: encrypted at rest, unreadable under another key with a clear message,
and never in an API response, a page, a run's error or a log line, even at DEBUG."""

import base64
import logging
from urllib.parse import quote_plus

import pytest
from cryptography.fernet import Fernet
from rest_framework.test import APIClient

from servicenow.models import Connection, SyncRun
from servicenow.secrets import SecretUnreadable, secret_decrypt, secret_encrypt
from servicenow.services import connection_check, sync_run_request
from servicenow.sync.runs import sync_run_attempt
from tests.factories import AdminUserFactory

from .conftest import make_connection, make_source

SECRET = "s3cr3t-Pa55"
CLIENT_SECRET = "cl1ent-S3cret-Xy"
UNREADABLE = (
    "A stored ServiceNow secret cannot be decrypted with the current SECRETS_ENCRYPTION_KEY; "
    "enter it again."
)


# --- encryption ---------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [SECRET, "päss wörd ✓", " spaced ", "x" * 500])
def test_encrypt_then_decrypt_gives_the_secret_back(plain):
    assert secret_decrypt(secret_encrypt(plain)) == plain


def test_an_empty_secret_stays_empty():
    assert (secret_encrypt(""), secret_decrypt("")) == ("", "")


def test_ciphertext_hides_the_secret_and_differs_between_calls():
    # when the same secret is encrypted twice
    first, second = secret_encrypt(SECRET), secret_encrypt(SECRET)

    # then neither holds it, and they differ (a fresh IV each time)
    assert SECRET not in first and SECRET not in second
    assert first != second
    assert secret_decrypt(first) == secret_decrypt(second) == SECRET


@pytest.mark.parametrize("key", ["a passphrase, not a Fernet key", Fernet.generate_key().decode()])
def test_a_configured_key_is_used(settings, key):
    # given a secret encrypted under the configured key
    settings.SECRETS_ENCRYPTION_KEY = key
    token = secret_encrypt(SECRET)

    # when the key is back to the embedded default
    settings.SECRETS_ENCRYPTION_KEY = ""

    # then the configured key reads it, the default does not
    with pytest.raises(SecretUnreadable):
        secret_decrypt(token)
    settings.SECRETS_ENCRYPTION_KEY = key
    assert secret_decrypt(token) == SECRET


def test_another_key_gives_a_readable_error_without_the_secret(settings):
    # given a secret encrypted under one key
    settings.SECRETS_ENCRYPTION_KEY = "key-one"
    token = secret_encrypt(SECRET)

    # when another key tries to read it
    settings.SECRETS_ENCRYPTION_KEY = "key-two"
    with pytest.raises(SecretUnreadable) as raised:
        secret_decrypt(token)

    # then the message says what to do and carries neither secret nor ciphertext
    assert str(raised.value) == UNREADABLE
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert SECRET not in str(raised.value) and token not in str(raised.value)


def test_a_tampered_ciphertext_is_unreadable():
    token = secret_encrypt(SECRET)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    with pytest.raises(SecretUnreadable, match="enter it again"):
        secret_decrypt(tampered)


@pytest.mark.django_db
def test_a_check_with_an_unreadable_secret_says_to_enter_it_again(settings, emulator):
    # given a connection whose password was stored under another key
    settings.SECRETS_ENCRYPTION_KEY = "old-key"
    connection = make_connection(emulator)
    settings.SECRETS_ENCRYPTION_KEY = "new-key"

    # when it is checked
    result = connection_check(connection=connection)

    # then the check fails without calling the instance
    assert result == {
        "ok": False,
        "error": "SecretUnreadable",
        "reachable": False,
        "authenticated": False,
        "message": UNREADABLE,
    }
    assert emulator.stats()["requests"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_sync_with_an_unreadable_secret_fails_with_that_message(settings, emulator):
    # given a source whose connection's password was stored under another key
    settings.SECRETS_ENCRYPTION_KEY = "old-key"
    source = make_source(make_connection(emulator))
    settings.SECRETS_ENCRYPTION_KEY = "new-key"

    # when it syncs in this process
    run = sync_run_request(source=source, enqueue=False)
    outcome = sync_run_attempt(run_id=run.pk)

    # then the run failed, saying why
    run.refresh_from_db()
    assert (outcome, run.status, run.error) == ("failed", "failed", UNREADABLE)


# --- nothing leaks ------------------------------------------------------------------------


def leaked_forms(username: str = "integration") -> list[str]:
    """The secrets, and the shapes they would take on the wire."""
    basic = base64.b64encode(f"{username}:{SECRET}".encode()).decode()
    return [SECRET, CLIENT_SECRET, quote_plus(SECRET), quote_plus(CLIENT_SECRET), basic]


@pytest.mark.django_db(transaction=True)
def test_a_failing_sync_and_check_never_show_the_secrets(emulator, caplog, settings):
    """A wrong password and a wrong client secret, entered through the API, checked, synced,
    listed and shown on the pages: none of it, nor the DEBUG logs, carries them."""
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "requests", "servicenow", "django.request"):
        caplog.set_level(logging.DEBUG, logger=name)
    admin = AdminUserFactory(username="root")
    api = APIClient()
    api.force_authenticate(admin)
    bodies: list[str] = []

    def call(method: str, url: str, data=None, status: int = 200) -> dict:
        response = getattr(api, method)(url, data, format="json")
        bodies.append(response.content.decode())
        assert response.status_code == status, bodies[-1]
        return response.json()

    # given a basic connection with a wrong password, and OAuth ones with a wrong password
    # (right client) and with a wrong client secret, all made through the API
    basic = call("post", "/api/v1/servicenow/connections/", {
        "name": "Basic", "instance_url": emulator.url, "username": "integration",
        "password": SECRET,
    }, 201)  # fmt: skip
    oauth_user = call("post", "/api/v1/servicenow/connections/", {
        "name": "OAuth user", "instance_url": emulator.url, "auth_type": "oauth_password",
        "username": "integration", "password": SECRET, "client_id": "ladder-tracker",
        "client_secret": "ladder-tracker-secret",
    }, 201)  # fmt: skip
    oauth_client = call("post", "/api/v1/servicenow/connections/", {
        "name": "OAuth client", "instance_url": emulator.url,
        "auth_type": "oauth_client_credentials", "client_id": "ladder-tracker",
        "client_secret": CLIENT_SECRET,
    }, 201)  # fmt: skip
    ids = [basic["id"], oauth_user["id"], oauth_client["id"]]

    # when each is tested and synced, and the results are read back everywhere
    checks = [call("post", f"/api/v1/servicenow/connections/{pk}/test/") for pk in ids]
    runs = []
    for pk in ids:
        source = make_source(Connection.objects.get(pk=pk), "incident")
        run = sync_run_request(source=source, enqueue=False)  # in this process: logs captured
        assert sync_run_attempt(run_id=run.pk) == "failed"
        runs.append(call("get", f"/api/v1/servicenow/runs/{run.pk}/"))
    call("get", "/api/v1/servicenow/connections/")
    call("get", "/api/v1/servicenow/runs/")
    call("get", "/api/v1/servicenow/sources/")
    web = APIClient()
    web.force_login(admin)
    for url in ["/servicenow/", "/servicenow/runs/", "/admin/servicenow/connection/",
                *(f"/admin/servicenow/connection/{pk}/change/" for pk in ids),
                *(f"/servicenow/runs/{r['id']}/" for r in runs)]:  # fmt: skip
        response = web.get(url)
        assert response.status_code == 200, url
        bodies.append(response.content.decode())

    # then every check and run failed for the right reason
    assert [c["ok"] for c in checks] == [False, False, False]
    assert checks[0]["message"].startswith("401 User Not Authenticated")
    assert checks[1]["message"] == "OAuth password grant refused: 401 server_error: access_denied"
    assert checks[2]["message"] == (
        "OAuth client_credentials grant refused: 401 server_error: access_denied"
    )
    assert [r["status"] for r in runs] == ["failed", "failed", "failed"]
    assert [r["attempts"] for r in runs] == [1, 1, 1]
    # and no secret, in any shape, is anywhere we could look
    stored = [
        *SyncRun.objects.values_list("error", flat=True),
        *SyncRun.objects.values_list("log", flat=True),
        *Connection.objects.values_list("last_check_message", flat=True),
    ]
    logs = caplog.text + "\n".join(str(r.args) + (r.exc_text or "") for r in caplog.records)
    # (the DEBUG lines of the client and of urllib3 were captured)
    assert "ServiceNow GET sys_user -> 401" in caplog.text
    assert '"POST /oauth_token.do HTTP/1.1" 401' in caplog.text
    everything = "\n".join([*bodies, *stored, logs])
    for secret in leaked_forms():
        assert secret not in everything, secret
    ciphertexts = Connection.objects.values_list("password_encrypted", "client_secret_encrypted")
    for password_ct, client_ct in ciphertexts:
        for token in (password_ct, client_ct):
            if token:
                assert token not in "\n".join(bodies), "ciphertext in a response"
                assert token not in logs, "ciphertext in a log line"
