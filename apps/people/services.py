"""Writes to people. Issue #4 grows this (CSV import, level history, roles)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from apps.ladders.models import Ladder
from apps.security.models import SecurityEvent
from apps.security.services import security_event_record
from ladder_tracker.errors import ForbiddenError
from ladder_tracker.history import history_context

from .models import LevelChange, Person
from .selectors import person_would_cycle, person_would_cycle_ids

logger = logging.getLogger(__name__)

# person fields that grant or withdraw access: their changes go into the audit trail
AUDITED_ROLE_FIELDS = ("is_committee", "is_active")


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
    with history_context(actor=actor):
        return _person_create(
            username=username,
            email=email,
            name=name,
            password=password,
            ladder=ladder,
            level=level,
            manager=manager,
            title=title,
            is_committee=is_committee,
            is_active=is_active,
            is_admin=is_admin,
            actor=actor,
        )


def _person_create(
    *,
    username,
    email,
    name,
    password,
    ladder,
    level,
    manager,
    title,
    is_committee,
    is_active,
    is_admin,
    actor,
) -> Person:
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
    granted = {"is_admin": is_admin, "is_committee": is_committee}
    roles = {name: {"from": None, "to": True} for name, given in granted.items() if given}
    _roles_audit(person=person, actor=actor, roles=roles)
    return person


def _roles_audit(*, person: Person, actor, roles: dict) -> None:
    """Roles granted or taken ({name: {"from", "to"}}) go into the security audit trail."""
    if roles:
        security_event_record(
            kind=SecurityEvent.Kind.ROLE_CHANGED,
            actor=actor,
            target=_audit_target(person),
            detail=roles,
        )


def _audit_target(person: Person) -> str:
    return f"person {person.pk} {person.email or person.name}"


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


PERSON_UPDATE_FIELDS = frozenset(
    {"email", "name", "title", "ladder", "level", "manager", "is_committee", "is_active"}
)


def person_update_check(*, person: Person, fields: dict) -> None:
    """person_update's refusals, without writing: the Django admin's form asks it first so
    a refusal is a form error there."""
    unknown = set(fields) - PERSON_UPDATE_FIELDS
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in sorted(unknown)})
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


@transaction.atomic
def person_update(
    *, person: Person, actor=None, reason: str = "", packet_id: int | None = None, **fields
) -> Person:
    """Update the named fields only. A level change writes a LevelChange row; a manager that
    would close a cycle is refused. Level and role changes go into the audit trail."""
    person = Person.objects.select_for_update().get(pk=person.pk)
    person_update_check(person=person, fields=fields)
    old_level = person.level
    old_roles = {name: getattr(person, name) for name in AUDITED_ROLE_FIELDS}
    for name, value in fields.items():
        setattr(person, name, value)
    with history_context(actor=actor, reason=reason):
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
        security_event_record(
            kind=SecurityEvent.Kind.LEVEL_CHANGED,
            actor=actor,
            target=_audit_target(person),
            detail={"level": {"from": old_level, "to": person.level}, "reason": reason},
        )
    roles = {
        name: {"from": old, "to": getattr(person, name)}
        for name, old in old_roles.items()
        if getattr(person, name) != old
    }
    _roles_audit(person=person, actor=actor, roles=roles)
    return person


# --- people from ServiceNow (sys_user) ----------------------------------------------------


@dataclass(frozen=True)
class ServiceNowUser:
    """One sys_user record as the sync hands it over."""

    sys_id: str
    updated_on: datetime
    mod_count: int
    email: str
    name: str  # already the best of name, first + last, user name, email
    title: str
    manager_sys_id: str
    active: bool


@dataclass
class PeopleSyncResult:
    created: int = 0
    updated: int = 0
    skipped_stale: int = 0


PERSON_SERVICENOW_FIELDS = [
    "servicenow_sys_id",
    "servicenow_updated_on",
    "servicenow_mod_count",
    "servicenow_manager_sys_id",
    "is_active",
    "name",
    "email",
    "title",
]


def people_sync_servicenow(*, users: list[ServiceNowUser]) -> PeopleSyncResult:
    """Store a page of ServiceNow users: people matched by sys_id, else by email (any case).
    A record no newer than the one stored (by sys_updated_on, then sys_mod_count) is
    skipped. Name, email and title fill in only what the person lacks: what was typed here
    or came from the CSV import wins. Managers are resolved later, once every page is in
    (`people_managers_resolve`)."""
    result = PeopleSyncResult()
    by_sys_id = {
        p.servicenow_sys_id: p
        for p in Person.objects.filter(servicenow_sys_id__in=[u.sys_id for u in users])
    }
    emails = {u.email.lower() for u in users if u.sys_id not in by_sys_id} - {""}
    by_email = {
        p.email_lower: p
        for p in Person.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=emails)
    }
    create, update, changed = [], [], []
    for user in users:
        person = by_sys_id.get(user.sys_id) or by_email.get(user.email.lower())
        if (
            person is not None
            and person.servicenow_updated_on is not None
            and (user.updated_on, user.mod_count)
            <= (person.servicenow_updated_on, person.servicenow_mod_count or 0)
        ):
            result.skipped_stale += 1
            continue
        target = person or Person()
        before = _history_values(target) if person is not None else None
        target.servicenow_sys_id = user.sys_id
        target.servicenow_updated_on = user.updated_on
        target.servicenow_mod_count = user.mod_count
        target.servicenow_manager_sys_id = user.manager_sys_id
        target.is_active = user.active
        if not target.name:
            target.name = user.name[:200]
        if not target.email:
            target.email = user.email
        if not target.title:
            target.title = user.title[:200]
        if person is None:
            create.append(target)
            by_email[user.email.lower()] = target  # a second row with this email merges
            result.created += 1
        elif target not in update:
            update.append(target)
            result.updated += 1
        if before is not None and before != _history_values(target) and target not in changed:
            changed.append(target)
    created = Person.objects.bulk_create([p for p in create if p.pk is None])
    if update:
        Person.objects.bulk_update(update, PERSON_SERVICENOW_FIELDS)
    # history: one insert for the new people and one for those whose audited fields changed
    # (most updates only move the sync's bookkeeping, which is not history)
    if created:
        Person.history.bulk_history_create(created, default_change_reason=SYNC_REASON)
    if changed:
        Person.history.bulk_history_create(changed, update=True, default_change_reason=SYNC_REASON)
    return result


SYNC_REASON = "ServiceNow users sync"


def _history_values(person: Person) -> tuple:
    return tuple(getattr(person, f.attname) for f in Person.history.model.tracked_fields)


def people_managers_resolve() -> int:
    """Point each person's manager at the person ServiceNow names, unless that makes a cycle
    (the chart keeps its previous manager then). In memory: one read, one bulk write."""
    rows = list(
        Person.objects.values_list(
            "pk", "manager_id", "servicenow_sys_id", "servicenow_manager_sys_id"
        )
    )
    by_sys_id = {sys_id: pk for pk, _m, sys_id, _ms in rows if sys_id}
    managers = {pk: manager_id for pk, manager_id, _s, _ms in rows}
    changed = []
    for pk, manager_id, _sys_id, manager_sys_id in rows:
        if not manager_sys_id:
            continue
        wanted = by_sys_id.get(manager_sys_id)
        if wanted is None or wanted == manager_id:
            continue
        if person_would_cycle_ids(person_id=pk, manager_id=wanted, managers=managers):
            logger.warning("person %s: manager %s would make a cycle; kept", pk, wanted)
            continue
        managers[pk] = wanted
        changed.append(Person(pk=pk, manager_id=wanted))
    Person.objects.bulk_update(changed, ["manager"])
    if changed:  # the new managers are history: the rows as they are now, in one insert
        Person.history.bulk_history_create(
            list(Person.objects.filter(pk__in=[p.pk for p in changed]).order_by("pk")),
            update=True,
            default_change_reason=SYNC_REASON,
        )
    return len(changed)


# --- single sign-on (OpenID Connect) --------------------------------------------------------


class SignInRefused(ForbiddenError):
    """An identity provider vouched for someone we will not sign in. `reason` says why, for
    the refusal page and the audit trail; the message is the line shown to the person."""

    code = "sign_in_refused"

    def __init__(self, message: str, *, reason: str, email: str = ""):
        self.reason = reason
        self.email = email
        super().__init__(message, {"reason": reason})


def _username_for(email: str) -> str:
    """A free username from the email's local part (`erin.smith`, then `erin.smith-2`...)."""
    user_model = get_user_model()
    base = re.sub(r"[^\w.@+-]", "", email.split("@")[0].lower())[:140] or "user"
    candidate, n = base, 1
    while user_model.objects.filter(username__iexact=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _email_verified(value) -> bool:
    # The spec says boolean; some providers (Cognito, older ADFS) send the string "true".
    return value is True or (isinstance(value, str) and value.lower() == "true")


@transaction.atomic
def person_sign_in_sso(*, email: str, email_verified, name: str = "", create: bool = False):
    """The login for someone an OpenID provider has authenticated, matched by email.

    Only a verified email (`email_verified` true) is trusted. The email matches a person
    (from ServiceNow, the CSV import or the admin) case-insensitively; a person without a
    login yet gets one now, linked to them. Without a person, a login with that email (an
    admin without a profile) is used. Someone unknown is refused unless `create` (the
    OIDC_CREATE_USERS setting), which makes a login and a person. Refusals raise
    SignInRefused; the caller logs the returned user in."""
    email = (email or "").strip()
    if not email:
        raise SignInRefused(
            "Your identity provider did not send an email address, so we cannot tell who you "
            "are. Ask your IT team to release the email claim to ladder_tracker.",
            reason="email_missing",
        )
    if not _email_verified(email_verified):
        raise SignInRefused(
            f"Your identity provider has not verified the email address {email}. Ask your IT "
            "team to verify it, then sign in again.",
            reason="email_unverified",
            email=email,
        )
    user_model = get_user_model()
    # Locked: two first sign-ins of one ServiceNow person at once make one login, not two.
    person = (
        Person.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(email__iexact=email)
        .first()
    )
    if person is not None:
        if not person.is_active or (person.user is not None and not person.user.is_active):
            raise SignInRefused(
                f"The profile for {email} is inactive. Ask an administrator if that is wrong.",
                reason="inactive",
                email=email,
            )
        if person.user is None:
            user = user_model(username=_username_for(person.email), email=person.email)
            user.set_unusable_password()
            user.save()
            person.user = user
            person.save(update_fields=["user"])
            logger.info("person %s: login created at first SSO sign-in", person.pk)
        return person.user
    users = list(user_model.objects.filter(email__iexact=email)[:2])
    if len(users) > 1:
        raise SignInRefused(
            f"More than one login uses {email}; an administrator has to merge them first.",
            reason="ambiguous",
            email=email,
        )
    if users:
        if not users[0].is_active:
            raise SignInRefused(
                f"The login for {email} is inactive. Ask an administrator if that is wrong.",
                reason="inactive",
                email=email,
            )
        return users[0]
    if not create:
        raise SignInRefused(
            f"{email} is not known to ladder_tracker. People arrive from ServiceNow or the "
            "people import; ask an administrator to add you.",
            reason="unknown",
            email=email,
        )
    person = person_create(username=_username_for(email), email=email, name=name or email)
    logger.info("person %s: created at first SSO sign-in", person.pk)
    return person.user
