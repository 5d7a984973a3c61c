"""Writes to people. Issue #4 grows this (CSV import, level history, roles)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from apps.ladders.models import Ladder

from .models import Person


def person_would_cycle(*, person: Person, manager: Person | None) -> bool:
    seen = set()
    current = manager
    while current is not None:
        if current.pk == person.pk or current.pk in seen:
            return True
        seen.add(current.pk)
        current = current.manager
    return False


def person_would_cycle_ids(
    *, person_id: int, manager_id: int, managers: dict[int, int | None]
) -> bool:
    """The same check over an in-memory {person: manager} map (bulk org-chart updates)."""
    seen: set[int] = set()
    current: int | None = manager_id
    while current is not None:
        if current == person_id or current in seen:
            return True
        seen.add(current)
        current = managers.get(current)
    return False


@transaction.atomic
def person_create(
    *,
    username: str,
    email: str,
    name: str,
    password: str | None = None,
    ladder: Ladder | None = None,
    level: int | None = None,
    manager: Person | None = None,
    title: str = "",
    is_committee: bool = False,
    is_admin: bool = False,
) -> Person:
    """Create a login and its person in one go (email matched case-insensitively)."""
    if Person.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"A person with email {email} already exists."})
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=is_admin, is_superuser=is_admin)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    return Person.objects.create(
        user=user,
        email=email,
        name=name,
        title=title,
        ladder=ladder,
        level=level,
        manager=manager,
        is_committee=is_committee,
    )
