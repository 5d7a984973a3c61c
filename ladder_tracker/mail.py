"""Notification mail: sent after the transaction that caused it commits, never undoing it.

Services call `mail_after_commit`; mail trouble is logged, not raised, because the change
it announces (a packet transition, a sync run's outcome) has already happened."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction

logger = logging.getLogger(__name__)
SUBJECT_PREFIX = "[ladder_tracker] "


def mail_send(*, subject: str, body: str, recipients: Sequence[str]) -> None:
    """Send now; a failure is logged (the caller's change stands)."""
    if not recipients:
        return
    try:
        send_mail(SUBJECT_PREFIX + subject, body, settings.DEFAULT_FROM_EMAIL, list(recipients))
    except Exception:
        logger.exception("email %r to %s failed", subject, list(recipients))


def mail_after_commit(*, subject: str, body: str, recipients: Sequence[str]) -> None:
    """Send once the current transaction commits (at once outside one)."""
    recipients = list(recipients)
    transaction.on_commit(lambda: mail_send(subject=subject, body=body, recipients=recipients))


def admin_emails() -> list[str]:
    """Where mail for admins goes: every active staff user with an address."""
    users = get_user_model().objects.filter(is_staff=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))
