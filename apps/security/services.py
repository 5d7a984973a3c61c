"""Writes of the security app: API tokens and the audit trail.

Tokens: the plain secret exists only in the return value of token_create (shown once);
the table keeps its sha256 (a 256-bit random secret needs no slow hash: nothing to
brute-force) and a short prefix for display.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ladder_tracker.errors import InvalidError, NotFoundError

from .middleware import client_address
from .models import ApiToken, SecurityEvent

TOKEN_PREFIX_LENGTH = 8
# last_used_at is written at most once a minute per token: a busy client would otherwise
# turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
TOKEN_NAME_MAX = ApiToken._meta.get_field("name").max_length


def token_hash(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def security_event_record(
    *,
    kind: str,
    actor=None,
    username: str = "",
    ip_address: str | None = None,
    target: str = "",
    detail: dict | None = None,
) -> SecurityEvent:
    """Record one audit line. The address defaults to the current request's."""
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    return SecurityEvent.objects.create(
        kind=kind,
        actor=actor,
        username=(username or (actor.get_username() if actor else ""))[:150],
        ip_address=ip_address or client_address.get(),
        target=target[:200],
        detail=detail or {},
    )


def token_create(
    *, actor, name: str, expires_in_days: int | None = None, user=None
) -> tuple[ApiToken, str]:
    """A new token for `user` (the actor, unless an admin mints one for someone). Returns
    the row and the plain secret, which is not stored anywhere."""
    user = user or actor
    if user != actor and not actor.is_staff:
        raise NotFoundError("No such user.")
    name = (name or "").strip()
    if not name:
        raise InvalidError("A token needs a name.", {"name": "This field is required."})
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidError("Name too long.", {"name": f"At most {TOKEN_NAME_MAX} characters."})
    days = settings.API_TOKEN_DEFAULT_DAYS if expires_in_days is None else expires_in_days
    if days < 1 or days > settings.API_TOKEN_MAX_DAYS:
        raise InvalidError(
            "Bad expiry.",
            {"expires_in_days": f"Between 1 and {settings.API_TOKEN_MAX_DAYS} days."},
        )
    plain = "lt_" + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=plain[:TOKEN_PREFIX_LENGTH],
            key_hash=token_hash(plain),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        security_event_record(
            kind=SecurityEvent.Kind.TOKEN_CREATED,
            actor=actor,
            target=f"token {token.pk} {token.prefix}… of {user.get_username()}",
            detail={"name": name, "expires_at": token.expires_at.isoformat()},
        )
    return token, plain


def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    """Revoke a token: its owner or an admin. Revoking twice changes nothing."""
    if token.user_id != actor.pk and not actor.is_staff:
        raise NotFoundError("No such token.")
    if token.revoked_at is not None:
        return token
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        security_event_record(
            kind=SecurityEvent.Kind.TOKEN_REVOKED,
            actor=actor,
            target=f"token {token.pk} {token.prefix}… of {token.user.get_username()}",
            detail={"name": token.name},
        )
    return token


def token_authenticate(plain: str) -> ApiToken | None:
    """The live token with this secret (user loaded), its use recorded; None otherwise.
    An expired or revoked token is returned too, so the caller can say why it failed."""
    token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(plain)).first()
    if token is None:
        return None
    now = timezone.now()
    usable = token.revoked_at is None and not token.is_expired(now)
    if usable and (token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def security_events_prune(*, older_than_days: int) -> int:
    """Delete audit lines older than the retention period; returns how many went."""
    if older_than_days < 1:
        raise InvalidError("Keep at least a day.", {"days": "Must be at least 1."})
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = SecurityEvent.objects.filter(at__lt=cutoff).delete()
    return deleted
