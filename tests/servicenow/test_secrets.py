"""Connection secrets: encrypted at rest, unreadable under another key with a clear message,
and never in an API response, a page, a run's error or a log line, even at DEBUG."""

import base64
import hashlib
import io
import logging
from urllib.parse import quote_plus

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from servicenow import secrets as secrets_module
from servicenow.models import Connection, SyncRun
from servicenow.secrets import (
    SecretUnreadable,
    secret_decrypt,
    secret_encrypt,
    secret_is_current,
)
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
        "problem": "Stored secret unreadable (was the encryption key changed?)",
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


# --- key derivation and rotation ------------------------------------------------------------


def legacy_token(passphrase: str, plain: str) -> str:
    """A value as the first scheme stored it: the passphrase hashed once with SHA-256."""
    key = base64.urlsafe_b64encode(hashlib.sha256(passphrase.encode()).digest())
    return Fernet(key).encrypt(plain.encode()).decode()


def test_a_passphrase_is_stretched_with_scrypt_and_a_stored_salt(settings):
    settings.SECRETS_KEYS = ["a passphrase, not a Fernet key"]

    token = secret_encrypt(SECRET)

    # then the value carries its salt; the key is scrypt(passphrase, salt), not a bare hash
    prefix, salt_text, inner = token.split("$")
    salt = base64.urlsafe_b64decode(salt_text + "=" * (-len(salt_text) % 4))
    assert (prefix, len(salt)) == ("scrypt", 16)
    kdf = Scrypt(salt=salt, length=32, n=2**14, r=8, p=1)
    derived = Fernet(base64.urlsafe_b64encode(kdf.derive(b"a passphrase, not a Fernet key")))
    assert derived.decrypt(inner.encode()).decode() == SECRET
    with pytest.raises(InvalidToken):
        Fernet(
            base64.urlsafe_b64encode(hashlib.sha256(b"a passphrase, not a Fernet key").digest())
        ).decrypt(inner.encode())


def test_each_process_salts_afresh(settings):
    settings.SECRETS_KEYS = ["a passphrase"]
    first = secret_encrypt(SECRET)
    secrets_module._process_salt.cache_clear()  # as a new process would

    second = secret_encrypt(SECRET)

    assert first.split("$")[1] != second.split("$")[1]
    assert secret_decrypt(first) == secret_decrypt(second) == SECRET


def test_a_fernet_key_is_used_as_is(settings):
    key = Fernet.generate_key()
    settings.SECRETS_KEYS = [key.decode()]

    token = secret_encrypt(SECRET)

    assert Fernet(key).decrypt(token.encode()).decode() == SECRET


@pytest.mark.parametrize("setting", ["SECRETS_KEYS", "SECRETS_ENCRYPTION_KEY", "embedded"])
def test_values_stored_under_the_single_sha256_scheme_still_decrypt(settings, setting):
    if setting == "SECRETS_KEYS":
        settings.SECRETS_KEYS, passphrase = ["old passphrase"], "old passphrase"
    elif setting == "SECRETS_ENCRYPTION_KEY":
        settings.SECRETS_ENCRYPTION_KEY, passphrase = "old passphrase", "old passphrase"
    else:  # nothing configured: derived from SECRET_KEY, as before
        passphrase = "ladder-tracker-secrets:" + settings.SECRET_KEY

    assert secret_decrypt(legacy_token(passphrase, SECRET)) == SECRET


def test_secrets_keys_wins_over_the_single_key(settings):
    new = Fernet.generate_key()
    settings.SECRETS_ENCRYPTION_KEY = "single"
    settings.SECRETS_KEYS = [new.decode(), "single"]

    token = secret_encrypt(SECRET)

    assert Fernet(new).decrypt(token.encode()).decode() == SECRET


def test_old_keys_still_decrypt_and_new_values_use_the_first(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.SECRETS_KEYS = [old]
    under_old = secret_encrypt(SECRET)
    settings.SECRETS_KEYS = ["passphrase one"]
    under_passphrase = secret_encrypt(CLIENT_SECRET)

    # when a new key goes first and the old ones stay listed
    settings.SECRETS_KEYS = [new, "passphrase one", old]

    # then old values decrypt, a new value is under the new key, and only it is current
    assert secret_decrypt(under_old) == SECRET
    assert secret_decrypt(under_passphrase) == CLIENT_SECRET
    fresh = secret_encrypt(SECRET)
    assert Fernet(new.encode()).decrypt(fresh.encode()).decode() == SECRET
    assert [secret_is_current(t) for t in (fresh, under_old, under_passphrase)] == [
        True,
        False,
        False,
    ]
    # and once the old keys are dropped, the old values are unreadable
    settings.SECRETS_KEYS = [new]
    with pytest.raises(SecretUnreadable):
        secret_decrypt(under_old)


def _connection(name: str, password: str = "", client_secret: str = "") -> Connection:
    return Connection.objects.create(
        name=name,
        instance_url="https://acme.service-now.com",
        username="integration",
        password_encrypted=password,
        client_secret_encrypted=client_secret,
    )


@pytest.mark.django_db
def test_secrets_rotate_reencrypts_every_stored_secret(settings):
    # given secrets under a legacy passphrase, under an old Fernet key, and one no key reads
    old = Fernet.generate_key().decode()
    settings.SECRETS_KEYS = [old]
    legacy = _connection(
        "Legacy",
        password=legacy_token("old passphrase", SECRET),
        client_secret=legacy_token("old passphrase", CLIENT_SECRET),
    )
    fernet = _connection("Fernet", password=secret_encrypt("fernet-pass"))
    lost_token = legacy_token("forgotten", "gone")
    lost = _connection("Lost", password=lost_token)
    empty = _connection("Empty")
    new = Fernet.generate_key().decode()
    settings.SECRETS_KEYS = [new, old, "old passphrase"]
    out, err = io.StringIO(), io.StringIO()

    # when the command runs
    with pytest.raises(CommandError, match="1 secret\\(s\\) could not be decrypted"):
        call_command("secrets_rotate", stdout=out, stderr=err)

    # then every readable secret is under the new key alone, the lost one is named and kept
    assert out.getvalue().strip() == ("re-encrypted 3 secret(s); 0 already current; 1 unreadable.")
    assert err.getvalue().strip() == (
        f"unreadable with every configured key: servicenow.Connection {lost.pk} password_encrypted"
    )
    settings.SECRETS_KEYS = [new]
    for connection in (legacy, fernet, lost, empty):
        connection.refresh_from_db()
    assert secret_decrypt(legacy.password_encrypted) == SECRET
    assert secret_decrypt(legacy.client_secret_encrypted) == CLIENT_SECRET
    assert secret_decrypt(fernet.password_encrypted) == "fernet-pass"
    assert lost.password_encrypted == lost_token
    assert (empty.password_encrypted, empty.client_secret_encrypted) == ("", "")
    # and a second run finds everything current
    lost.delete()
    out = io.StringIO()
    call_command("secrets_rotate", stdout=out)
    assert out.getvalue().strip() == "re-encrypted 0 secret(s); 3 already current; 0 unreadable."


@pytest.mark.django_db
def test_secrets_rotate_dry_run_writes_nothing(settings):
    settings.SECRETS_KEYS = ["old passphrase"]
    connection = _connection("Legacy", password=legacy_token("old passphrase", SECRET))
    before = connection.password_encrypted
    settings.SECRETS_KEYS = [Fernet.generate_key().decode(), "old passphrase"]
    out = io.StringIO()

    call_command("secrets_rotate", "--dry-run", stdout=out)

    connection.refresh_from_db()
    assert out.getvalue().strip() == (
        "would re-encrypt 1 secret(s); 0 already current; 0 unreadable."
    )
    assert connection.password_encrypted == before


@pytest.mark.django_db
def test_a_rotated_connection_still_checks_against_the_instance(settings, emulator):
    # given a connection whose password was stored under the old scheme
    settings.SECRETS_KEYS = ["old passphrase"]
    connection = make_connection(emulator)
    password = secret_decrypt(connection.password_encrypted)
    Connection.objects.filter(pk=connection.pk).update(
        password_encrypted=legacy_token("old passphrase", password)
    )

    # when a new key goes first and the command runs
    settings.SECRETS_KEYS = [Fernet.generate_key().decode(), "old passphrase"]
    call_command("secrets_rotate", stdout=io.StringIO())
    settings.SECRETS_KEYS = settings.SECRETS_KEYS[:1]

    # then the connection still authenticates with only the new key configured
    connection.refresh_from_db()
    assert connection_check(connection=connection)["ok"] is True
