"""Connection secrets at rest: Fernet (AES-128-CBC + HMAC) with SECRETS_ENCRYPTION_KEY.

The embedded mode derives a key from SECRET_KEY so a fresh clone works; production requires
an explicit key. Rotating SECRET_KEY alone must not make stored secrets unreadable in
production, which is why the two keys are separate there.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class SecretUnreadable(Exception):
    """The stored secret was encrypted with another key."""


def _fernet() -> Fernet:
    configured = settings.SECRETS_ENCRYPTION_KEY
    if configured:
        # Accept a ready Fernet key, or any passphrase (stretched to 32 bytes).
        try:
            return Fernet(configured.encode())
        except ValueError:
            digest = hashlib.sha256(configured.encode()).digest()
            return Fernet(base64.urlsafe_b64encode(digest))
    digest = hashlib.sha256(("ladder-tracker-secrets:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def secret_encrypt(plain: str) -> str:
    if not plain:
        return ""
    return _fernet().encrypt(plain.encode()).decode()


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "A stored ServiceNow secret cannot be decrypted with the current "
            "SECRETS_ENCRYPTION_KEY; enter it again."
        ) from None
