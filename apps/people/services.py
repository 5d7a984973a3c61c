"""Writes to people. Issue #4 grows this (CSV import, level history, roles)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.ladders.models import Ladder

from .models import LevelChange, Person
from .selectors import (
    person_would_cycle,
    person_would_cycle_ids,  # noqa: F401 (servicenow/sync.py reads it here)
)


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
    is_active: bool = True,
    is_admin: bool = False,
    actor=None,
) -> Person:
    """Create a login and its person in one go (email matched case-insensitively)."""
    if Person.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"A person with email {email} already exists."})
    if get_user_model().objects.filter(username=username).exists():
        raise ValidationError({"username": f"The username {username} is taken."})
    _level_check(ladder, level)
    user_model = get_user_model()
    user = user_model(username=username, email=email, is_staff=is_admin, is_superuser=is_admin)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.save()
    person = Person.objects.create(
        user=user,
        email=email,
        name=name,
        title=title,
        ladder=ladder,
        level=level,
        manager=manager,
        is_committee=is_committee,
        is_active=is_active,
    )
    if level is not None:
        LevelChange.objects.create(
            person=person,
            from_level=None,
            to_level=level,
            effective_on=timezone.localdate(),
            reason="created",
            changed_by=actor,
        )
    return person


def _manager_check(person: Person, manager: Person | None) -> None:
    if (
        manager is not None
        and person.pk is not None
        and person_would_cycle(person=person, manager=manager)
    ):
        raise ValidationError(
            {"manager": f"{manager} reports to {person} (directly or not): that would be a cycle."}
        )


def _level_check(ladder: Ladder | None, level: int | None) -> None:
    if level is None:
        return
    if ladder is None:
        raise ValidationError({"level": "A level needs a ladder."})
    from apps.ladders.models import Level

    if not Level.objects.filter(version__ladder=ladder, number=level).exists():
        raise ValidationError({"level": f"{ladder.slug} has no level {level}."})


@transaction.atomic
def person_update(
    *, person: Person, actor=None, reason: str = "", packet_id: int | None = None, **fields
) -> Person:
    """Update the named fields only. A level change writes a LevelChange row; a manager that
    would close a cycle is refused."""
    allowed = {"email", "name", "title", "ladder", "level", "manager", "is_committee", "is_active"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in sorted(unknown)})
    person = Person.objects.select_for_update().get(pk=person.pk)
    if "manager" in fields:
        _manager_check(person, fields["manager"])
    ladder = fields.get("ladder", person.ladder)
    level = fields.get("level", person.level)
    if "ladder" in fields or "level" in fields:
        _level_check(ladder, level)
    if (
        "email" in fields
        and fields["email"]
        and (Person.objects.filter(email__iexact=fields["email"]).exclude(pk=person.pk).exists())
    ):
        raise ValidationError({"email": f"{fields['email']} belongs to someone else."})
    old_level = person.level
    for name, value in fields.items():
        setattr(person, name, value)
    person.save()
    if "email" in fields and person.user_id:
        person.user.email = person.email
        person.user.save(update_fields=["email"])
    if person.level != old_level:
        LevelChange.objects.create(
            person=person,
            from_level=old_level,
            to_level=person.level,
            effective_on=timezone.localdate(),
            reason=reason,
            changed_by=actor,
            packet_id=packet_id,
        )
    return person
