"""Reads for notifications: a person's preferences (defaults when they never chose)."""

from __future__ import annotations

from apps.people.models import Person

from .models import NotificationPreference


def notification_preferences_get(*, person: Person) -> NotificationPreference:
    """The person's preferences; an unsaved row of defaults when they have none."""
    found = NotificationPreference.objects.filter(person=person).first()
    return found or NotificationPreference(person=person)


def notification_preferences_map(*, person_ids) -> dict[int, NotificationPreference]:
    """Preferences by person id for many people in one query (defaults filled in)."""
    ids = set(person_ids)
    found = {p.person_id: p for p in NotificationPreference.objects.filter(person_id__in=ids)}
    return {pid: found.get(pid) or NotificationPreference(person_id=pid) for pid in ids}
