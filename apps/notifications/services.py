"""Writes and sends for notifications (README "Notifications").

- `notification_preferences_update`: a person chooses which mails they get.
- `packet_transition_notify`: after a packet moves (called on commit by packets' `_move`),
  mail whoever acts next and the engineer whose packet it is.
- `deadline_reminders_send`, `waiting_reminders_send`, `candidate_digest_send`: the beat
  tasks' work. Each mail is recorded in NotificationSent under a key (packet + deadline,
  packet + waiting stretch, person + week) in the same transaction that sends it, so a
  repeated beat, or two workers at once, never send it twice; a failed send rolls its
  record back and the next beat tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceLink
from apps.evidence.selectors import evidence_coverage
from apps.packets.models import Packet, PacketEvent
from apps.people.models import Person
from apps.people.selectors import manager_chain_ids, person_for_user
from ladder_tracker.errors import InvalidError, NotFoundError

from .mail import mail_send, site_url
from .models import NotificationPreference, NotificationSent
from .selectors import notification_preferences_get, notification_preferences_map

logger = logging.getLogger(__name__)
S = Packet.State


# --- preferences --------------------------------------------------------------------------


def notification_preferences_update(*, actor, **choices: bool) -> NotificationPreference:
    """Save the actor's own choices (any of NotificationPreference.FIELDS, booleans)."""
    person = person_for_user(user=actor)
    if person is None:
        raise NotFoundError("You have no person profile; ask an admin to create one.")
    problems = {k: "unknown setting" for k in choices if k not in NotificationPreference.FIELDS}
    problems |= {
        k: "must be true or false"
        for k, v in choices.items()
        if k in NotificationPreference.FIELDS and not isinstance(v, bool)
    }
    if problems:
        raise InvalidError("Some notification settings are invalid.", problems)
    preference = notification_preferences_get(person=person)
    for name, value in choices.items():
        setattr(preference, name, value)
    preference.save()
    return preference


# --- after a packet moves -----------------------------------------------------------------


def _committee_for(packet: Packet) -> list[Person]:
    chain = set(manager_chain_ids(person=packet.person))
    return list(
        Person.objects.filter(is_committee=True, is_active=True)
        .exclude(email="")
        .exclude(pk__in=chain | {packet.person_id})
    )


def _reviewers_of(packet: Packet, state: str) -> list[Person]:
    """Who acts on the packet next in `state` (the manager, or the committee)."""
    manager = packet.person.manager
    if state in (S.SUBMITTED, S.WITHDRAWN):
        return [manager] if manager and manager.is_active and manager.email else []
    if state == S.ENDORSED:
        return _committee_for(packet)
    return []


# the engineer hears of these moves of their own packet
OWNER_STATES = (S.CHANGES_REQUESTED, S.ENDORSED, S.DECLINED, S.PROMOTED, S.NOT_PROMOTED)


def packet_transition_notify(
    *, packet_id: int, to_state: str, comment: str = "", from_state: str = ""
) -> int:
    """Mail the people a packet's move to `to_state` concerns, each by their preferences:
    the reviewer or committee it now waits on (review_requests) and, for a review or a
    decision, its engineer (packet_updates). Mail trouble is logged, never raised: the
    transition is already committed. A draft withdrawn concerns nobody else: its manager
    never saw it. Returns how many mails went out."""
    packet = Packet.objects.select_related("person__manager", "cycle").get(pk=packet_id)
    owner = packet.person
    drafted = to_state == S.WITHDRAWN and from_state == S.DRAFT
    reviewers = [] if drafted else _reviewers_of(packet, to_state)
    targets = [(p, "review_requests", "review_request") for p in reviewers]
    if to_state in OWNER_STATES:
        targets.append((owner, "packet_updates", "packet_update"))
    preferences = notification_preferences_map(person_ids=[p.pk for p, _, _ in targets])
    state_label = to_state.replace("_", " ")
    context = {
        "packet": packet,
        "owner": owner,
        "state": state_label,
        "comment": comment,
        "packet_url": site_url(reverse("packets:detail", args=[packet.pk])),
    }
    sent = 0
    for person, preference, template in targets:
        if not getattr(preferences[person.pk], preference):
            continue
        subject = f"[ladder_tracker] {owner.name}'s packet: {state_label}"
        if person.pk == owner.pk:
            subject = f"[ladder_tracker] Your packet for level {packet.target_level}: {state_label}"
        try:
            sent += mail_send(person=person, subject=subject, template=template, context=context)
        except Exception:  # mail trouble must not surface after a committed transition
            logger.exception("packet %s: mail to %s failed", packet.pk, person.email)
    return sent


# --- reminders and digest (beat) ----------------------------------------------------------


def _send_once(*, person: Person, kind: str, key: str, send: Callable[[], bool]) -> bool:
    """Record (person, kind, key) and send, in one transaction: True when this call sent it.
    Already recorded → nothing sent. `send` raising rolls the record back (tried again at
    the next beat); the error is logged and the other reminders go on."""
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    NotificationSent.objects.create(person=person, kind=kind, key=key)
            except IntegrityError:
                return False
            if not send():
                raise _NotSent
    except _NotSent:
        return False
    except Exception:
        logger.exception("%s %s to %s failed; the next beat retries", kind, key, person.email)
        return False
    return True


def _already_sent(kind: str, keys) -> set[tuple[int, str]]:
    """(person id, key) pairs of `kind` recorded already, in one query: a repeated beat
    skips them without writing (the unique insert in _send_once still guards a race)."""
    keys = {key for _person_id, key in keys}
    return set(
        NotificationSent.objects.filter(kind=kind, key__in=keys).values_list("person_id", "key")
    )


class _NotSent(Exception):
    """The person has no address: keep no record, so one added later still gets it."""


def deadline_reminders_send(*, now: datetime | None = None) -> int:
    """Remind engineers with a draft (or a packet sent back for changes) whose cycle's
    submission deadline is within NOTIFICATIONS_DEADLINE_REMINDER_DAYS. Once per packet
    and deadline: a deadline moved later brings a new reminder."""
    now = now or timezone.now()
    horizon = now + timedelta(days=settings.NOTIFICATIONS_DEADLINE_REMINDER_DAYS)
    packets = list(
        Packet.objects.filter(
            state__in=Packet.EDITABLE_STATES,
            cycle__submission_deadline__gt=now,
            cycle__submission_deadline__lte=horizon,
            person__is_active=True,
        )
        .exclude(person__email="")
        .select_related("person", "cycle")
        .order_by("id")
    )
    kind = NotificationSent.Kind.DEADLINE_REMINDER
    wanted = [
        (p, f"packet:{p.pk}:deadline:{p.cycle.submission_deadline.isoformat()}") for p in packets
    ]
    if not wanted:
        return 0
    preferences = notification_preferences_map(person_ids=[p.person_id for p in packets])
    done = _already_sent(kind, [(p.person_id, key) for p, key in wanted])
    sent = 0
    for packet, key in wanted:
        if not preferences[packet.person_id].deadline_reminders:
            continue
        if (packet.person_id, key) in done:
            continue
        deadline = packet.cycle.submission_deadline
        context = {
            "packet": packet,
            "deadline": deadline,
            "days_left": max((deadline - now).days, 0),
            "packet_url": site_url(reverse("packets:detail", args=[packet.pk])),
        }
        sent += _send_once(
            person=packet.person,
            kind=kind,
            key=key,
            send=lambda packet=packet, context=context: mail_send(
                person=packet.person,
                subject=f"[ladder_tracker] {packet.cycle.name}: submit your packet by "
                f"{packet.cycle.submission_deadline:%Y-%m-%d}",
                template="deadline_reminder",
                context=context,
            ),
        )
    return sent


def waiting_reminders_send(*, now: datetime | None = None) -> int:
    """Remind the reviewer of a packet submitted, or the committee of a packet endorsed,
    more than NOTIFICATIONS_WAITING_REMINDER_DAYS ago. Once per packet and waiting stretch
    (the event that put it there): a packet resubmitted later brings a new reminder."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.NOTIFICATIONS_WAITING_REMINDER_DAYS)
    entered = PacketEvent.objects.filter(
        packet=OuterRef("pk"), to_state=OuterRef("state")
    ).order_by("-at", "-id")
    packets = list(
        Packet.objects.filter(state__in=(S.SUBMITTED, S.ENDORSED))
        .annotate(
            entered_at=Subquery(entered.values("at")[:1]),
            entered_event=Subquery(entered.values("id")[:1]),
        )
        .filter(entered_at__lte=cutoff)
        .select_related("person__manager", "cycle")
        .order_by("id")
    )
    if not packets:
        return 0
    kind = NotificationSent.Kind.WAITING_REMINDER
    waiting = [(packet, _reviewers_of(packet, packet.state)) for packet in packets]
    preferences = notification_preferences_map(
        person_ids=[r.pk for _packet, reviewers in waiting for r in reviewers]
    )
    keyed = {p.pk: f"packet:{p.pk}:{p.state}:event:{p.entered_event}" for p in packets}
    done = _already_sent(kind, [(r.pk, keyed[p.pk]) for p, reviewers in waiting for r in reviewers])
    sent = 0
    for packet, reviewers in waiting:
        context = {
            "packet": packet,
            "owner": packet.person,
            "state": packet.get_state_display().lower(),
            "days": (now - packet.entered_at).days,
            "packet_url": site_url(reverse("packets:detail", args=[packet.pk])),
        }
        for reviewer in reviewers:
            if not preferences[reviewer.pk].waiting_reminders:
                continue
            if (reviewer.pk, keyed[packet.pk]) in done:
                continue
            sent += _send_once(
                person=reviewer,
                kind=kind,
                key=keyed[packet.pk],
                send=lambda reviewer=reviewer, context=context: mail_send(
                    person=reviewer,
                    subject=f"[ladder_tracker] {context['owner'].name}'s packet has waited "
                    f"{context['days']} days",
                    template="waiting_reminder",
                    context=context,
                ),
            )
    return sent


def candidate_digest_send(*, now: datetime | None = None) -> int:
    """Weekly: mail each person the candidates imported in the last seven days whose
    suggested expectations are gaps of their next level (no usable evidence yet). Once per
    person and ISO week."""
    now = now or timezone.now()
    since = now - timedelta(days=7)
    suggested = (
        EvidenceLink.objects.filter(
            origin=EvidenceLink.Origin.SUGGESTED,
            expectation__isnull=False,
            evidence__status=Evidence.Status.CANDIDATE,
            evidence__deleted_at__isnull=True,
            evidence__created_at__gte=since,
            evidence__person__is_active=True,
        )
        .exclude(evidence__person__email="")
        .values_list("evidence__person_id", "evidence_id", "expectation_id")
    )
    by_person: dict[int, dict[int, set[int]]] = {}
    for person_id, evidence_id, expectation_id in suggested:
        by_person.setdefault(person_id, {}).setdefault(evidence_id, set()).add(expectation_id)
    if not by_person:
        return 0
    preferences = notification_preferences_map(person_ids=by_person)
    year, week, _ = now.isocalendar()
    key = f"week:{year}-W{week:02d}"
    kind = NotificationSent.Kind.CANDIDATE_DIGEST
    done = _already_sent(kind, [(pid, key) for pid in by_person])
    sent = 0
    for person in Person.objects.filter(pk__in=by_person).order_by("id"):
        if not preferences[person.pk].candidate_digest or (person.pk, key) in done:
            continue
        coverage = evidence_coverage(person=person)
        gaps = {i.expectation.pk: i.expectation for i in coverage.items if not i.covered}
        closing = {
            evidence_id: sorted(gaps[e].code for e in exps if e in gaps)
            for evidence_id, exps in by_person[person.pk].items()
            if exps & gaps.keys()
        }
        if not closing:
            continue
        candidates = [
            {"evidence": ev, "codes": closing[ev.pk]}
            for ev in Evidence.objects.filter(pk__in=closing).order_by("-created_at", "-id")
        ]
        context = {
            "candidates": candidates,
            "level": coverage.level,
            "inbox_url": site_url(reverse("evidence:inbox")),
        }
        sent += _send_once(
            person=person,
            kind=kind,
            key=key,
            send=lambda person=person, context=context: mail_send(
                person=person,
                subject=f"[ladder_tracker] {len(context['candidates'])} new candidate"
                f"{'s' if len(context['candidates']) != 1 else ''} for level {context['level']}",
                template="candidate_digest",
                context=context,
            ),
        )
    return sent
