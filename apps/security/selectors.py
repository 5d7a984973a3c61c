"""Reads of the security app: a person's tokens, and the audit trail (admins only)."""

from __future__ import annotations

from django.db.models import QuerySet

from ladder_tracker.errors import ForbiddenError, NotFoundError

from .models import ApiToken, SecurityEvent


def token_list(*, viewer) -> QuerySet[ApiToken]:
    """The viewer's own tokens that are not revoked (expired ones stay, marked, until
    revoked: people should see why a client stopped working)."""
    return ApiToken.objects.filter(user=viewer, revoked_at__isnull=True)


def token_get(*, viewer, token_id: int | str) -> ApiToken:
    try:
        token_id = int(token_id)
    except (TypeError, ValueError):
        raise NotFoundError("No such token.") from None
    if not 0 < token_id < 2**63:  # beyond what the database's integer holds
        raise NotFoundError("No such token.")
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None or token.revoked_at is not None:
        raise NotFoundError("No such token.")
    if token.user_id != viewer.pk and not viewer.is_staff:
        raise NotFoundError("No such token.")
    return token


def security_event_list(*, viewer) -> QuerySet[SecurityEvent]:
    if not viewer.is_staff:
        raise ForbiddenError("The audit trail is for admins.")
    return SecurityEvent.objects.select_related("actor")
