"""Connection secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256), with key rotation.

Keys come from settings.SECRETS_KEYS (a list, the current key first; the environment gives
it comma-separated), else settings.SECRETS_ENCRYPTION_KEY (one key), else, in the embedded
mode only, a passphrase made from SECRET_KEY. Each key is either

- a Fernet key (url-safe base64 of 32 random bytes, `Fernet.generate_key()`), used as is: the
  stored value is a plain Fernet token; or
- a passphrase, stretched with scrypt (cryptography's Scrypt, n=2**14, r=8, p=1) and a random
  16-byte salt that is stored with the value: `scrypt$<salt>$<Fernet token>`.

New values are encrypted with the first key; every key still decrypts (MultiFernet), so a
new key goes first and the old ones stay listed until `manage.py secrets_rotate` has
re-encrypted every stored secret (ENCRYPTED_FIELDS) with the first. Values written before
this scheme (a passphrase hashed once with SHA-256, no salt) still decrypt, and the command
re-encrypts them too.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from django.conf import settings

# Every stored secret: (app_label.Model, [fields]). secrets_rotate re-encrypts all of them; a
# new encrypted field is added here.
ENCRYPTED_FIELDS: list[tuple[str, list[str]]] = [
    ("servicenow.Connection", ["password_encrypted", "client_secret_encrypted"]),
]

SCRYPT_PREFIX = "scrypt$"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SALT_BYTES = 16


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key."""


UNREADABLE_MESSAGE = (
    "A stored ServiceNow secret cannot be decrypted with the current SECRETS_ENCRYPTION_KEY; "
    "enter it again."
)


def configured_keys() -> list[str]:
    """The keys, current first."""
    keys = [k.strip() for k in (getattr(settings, "SECRETS_KEYS", None) or []) if k.strip()]
    if not keys and settings.SECRETS_ENCRYPTION_KEY.strip():
        keys = [settings.SECRETS_ENCRYPTION_KEY.strip()]
    if not keys:  # the embedded default; production.py refuses to start without a key
        keys = ["ladder-tracker-secrets:" + settings.SECRET_KEY]
    return keys


@functools.lru_cache(maxsize=64)
def _as_fernet_key(key: str) -> Fernet | None:
    """The key itself when it is a Fernet key, None for a passphrase."""
    try:
        return Fernet(key.encode())
    except (ValueError, binascii.Error):
        return None


@functools.lru_cache(maxsize=256)
def _derived(passphrase: str, salt: bytes) -> Fernet:
    kdf = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(passphrase.encode())))


@functools.lru_cache(maxsize=64)
def _process_salt(passphrase: str) -> bytes:
    # One random salt per passphrase and process: one scrypt per process, not per value
    # (each token still gets its own IV from Fernet).
    return os.urandom(SALT_BYTES)


def _legacy(key: str) -> Fernet:
    """The scheme before scrypt: a passphrase hashed once with SHA-256."""
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))


def secret_encrypt(plain: str) -> str:
    if not plain:
        return ""
    current = configured_keys()[0]
    fernet = _as_fernet_key(current)
    if fernet is not None:
        return fernet.encrypt(plain.encode()).decode()
    salt = _process_salt(current)
    token = _derived(current, salt).encrypt(plain.encode()).decode()
    return SCRYPT_PREFIX + base64.urlsafe_b64encode(salt).decode().rstrip("=") + "$" + token


def _candidates(token: str) -> tuple[list[Fernet], str]:
    keys = configured_keys()
    if token.startswith(SCRYPT_PREFIX):
        salt_text, _, inner = token[len(SCRYPT_PREFIX) :].partition("$")
        try:
            salt = base64.urlsafe_b64decode(salt_text + "=" * (-len(salt_text) % 4))
        except (ValueError, binascii.Error):
            return [], inner
        return [_derived(k, salt) for k in keys if _as_fernet_key(k) is None], inner
    return [_as_fernet_key(k) or _legacy(k) for k in keys], token


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    fernets, inner = _candidates(token)
    try:
        if not fernets:
            raise InvalidToken
        return MultiFernet(fernets).decrypt(inner.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(UNREADABLE_MESSAGE) from None


def secret_is_current(token: str) -> bool:
    """Whether the value is already encrypted with the current key in the current scheme."""
    if not token:
        return True
    current = configured_keys()[0]
    fernet = _as_fernet_key(current)
    try:
        if fernet is not None:
            if token.startswith(SCRYPT_PREFIX):
                return False
            fernet.decrypt(token.encode())
            return True
        if not token.startswith(SCRYPT_PREFIX):
            return False
        salt_text, _, inner = token[len(SCRYPT_PREFIX) :].partition("$")
        salt = base64.urlsafe_b64decode(salt_text + "=" * (-len(salt_text) % 4))
        _derived(current, salt).decrypt(inner.encode())
        return True
    except (InvalidToken, ValueError, binascii.Error):
        return False


def secret_reencrypt(token: str) -> str:
    """The value encrypted with the current key (raises SecretUnreadable if no key reads it)."""
    if secret_is_current(token):
        return token
    return secret_encrypt(secret_decrypt(token))
