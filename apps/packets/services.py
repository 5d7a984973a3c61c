"""Writes to packets: create, edit drafts, and the state machine (DESIGN.md "Packet states").

Who may do what from which state is the table in transitions.py; every write here reads
it (_authorize) and refuses by itself: PacketForbidden (403) for the wrong person,
PacketConflict (409) for the wrong state. Every transition is one transaction under a row
lock on the packet: a repeated or concurrent transition finds the state already moved and
gets PacketConflict, changing nothing. Each writes a PacketEvent; after commit,
apps/notifications mails whoever acts next and the engineer. A submission freezes the
packet into a PacketSnapshot (JSON + sha256).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.evidence.markdown import MARKDOWN_MAX_LENGTH, markdown_render, markdown_too_long
from apps.evidence.models import Evidence
from apps.evidence.services import evidence_share_with_reviewers
from apps.evidence.verification import VerifyItem, verifications_run
from apps.ladders.models import Expectation
from apps.ladders.selectors import ladder_version_published
from apps.notifications.services import packet_transition_notify
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids
from apps.people.services import person_update
from ladder_tracker.canonical import canonical_sha256, snapshot_sha256
from ladder_tracker.errors import ConflictError, ForbiddenError, InvalidError
from ladder_tracker.history import history_context

from .models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketItem,
    PacketSnapshot,
    PromotionCycle,
)
from .selectors import packet_coverage, packet_target_expectations
from .transitions import TRANSITIONS, role_refusal

logger = logging.getLogger(__name__)
S = Packet.State


class PacketConflict(ConflictError):
    """The packet is not in a state that allows this (or another request just moved it)."""


class PacketForbidden(ForbiddenError):
    """The actor may see the packet but may not do this to it."""


class PacketInvalid(InvalidError):
    """The request breaks a rule (deadline, coverage, missing comment...). 400."""

    # the pages show the gaps, the unassessed expectations and the coverage in place
    detail_shown_apart = frozenset({"gaps", "missing", "coverage"})


@dataclass(frozen=True)
class ItemSpec:
    expectation: str  # code
    evidence: int
    note: str = ""
    # the owner's answer for a private item: share it with reviewers (else it is refused)
    share: bool = False


@dataclass(frozen=True)
class AssessmentSpec:
    expectation: str  # code
    rating: str
    comment: str = ""


# --- cycles -------------------------------------------------------------------------------


def cycle_save(*, cycle: PromotionCycle, actor=None) -> PromotionCycle:
    """Save a cycle; the change is history (ladder_tracker/history.py), by `actor` or the
    request's user."""
    if not (Decimal(0) <= Decimal(cycle.min_coverage) <= Decimal(1)):
        raise ValidationError({"min_coverage": "Between 0 and 1."})
    if cycle.submission_deadline.date() < cycle.opens_on:
        raise ValidationError({"submission_deadline": "The deadline is before the cycle opens."})
    if cycle.decision_on < cycle.submission_deadline.date():
        raise ValidationError({"decision_on": "Decisions come after the submission deadline."})
    with history_context(actor=actor):
        cycle.save()
    return cycle


def cycle_is_open(*, cycle: PromotionCycle, now=None) -> bool:
    now = now or timezone.now()
    return cycle.opens_on <= timezone.localdate(now) and now <= cycle.submission_deadline


# --- drafting -----------------------------------------------------------------------------


def packet_create(
    *, person: Person, actor, cycle: PromotionCycle, target_level: int | None = None
) -> Packet:
    if person.user_id != actor.pk:
        raise PacketForbidden("Only the engineer starts their packet.")
    version = ladder_version_published(ladder_id=person.ladder_id)
    if version is None:
        raise PacketInvalid("You have no published ladder to build a packet against.")
    target = target_level or (person.level or 0) + 1
    if not version.levels.filter(number=target).exists():
        raise PacketInvalid(
            f"{version.ladder.name} has no level {target}.", {"target_level": f"no level {target}"}
        )
    if person.level and target <= person.level:
        raise PacketInvalid(
            "The target level must be above your current level.",
            {"target_level": f"you are at level {person.level}"},
        )
    try:
        with transaction.atomic():
            packet = Packet.objects.create(
                person=person,
                cycle=cycle,
                ladder_version=version,
                from_level=person.level,
                target_level=target,
            )
            PacketEvent.objects.create(
                packet=packet, actor=actor, action="create", to_state=S.DRAFT
            )
    except IntegrityError:
        raise PacketConflict(f"You already have an open packet in {cycle}.") from None
    return packet


@transaction.atomic
def packet_update(
    *,
    packet: Packet,
    actor,
    narratives: dict[str, str] | None = None,
    items: list[ItemSpec] | None = None,
) -> Packet:
    """Save a draft as you go: narratives (per competency name) and/or the items (replace).
    Only the owner edits, and only while the packet is editable (TRANSITIONS["edit"])."""
    packet = Packet.objects.select_for_update().get(pk=packet.pk)
    _authorize(packet, actor, "edit")
    if narratives is not None:
        names = set(packet.ladder_version.competencies.values_list("name", flat=True))
        unknown = sorted(set(narratives) - names)
        if unknown:
            raise PacketInvalid(
                "Narratives are per competency.",
                {"narratives": f"unknown competency: {', '.join(unknown)}"},
            )
        too_long = [
            f"{name}: {markdown_too_long(text)}"
            for name, text in sorted(narratives.items())
            if text and len(text) > MARKDOWN_MAX_LENGTH
        ]
        if too_long:
            raise PacketInvalid("A narrative is too long.", {"narratives": too_long})
        packet.narratives = {k: v for k, v in narratives.items() if v is not None}
        packet.narratives_html = {k: markdown_render(v) for k, v in packet.narratives.items()}
    if items is not None:
        _items_replace(packet, items, actor)
    packet.save()
    return packet


def _items_replace(packet: Packet, items: list[ItemSpec], actor) -> None:
    """Replace the packet's items. A private item goes in only with `share` (the owner
    agreeing to show it to reviewers): it is then shared, with an evidence event; without
    it the whole change is refused, naming the item."""
    expectations = {e.code: e for e in packet_target_expectations(packet=packet)}
    wanted_ids = {i.evidence for i in items}
    mine = {
        pk: (title, visibility)
        for pk, title, visibility in Evidence.objects.usable()
        .filter(pk__in=wanted_ids, person=packet.person)
        .values_list("pk", "title", "visibility")
    }
    sharing = {i.evidence for i in items if i.share}
    problems = []
    for n, item in enumerate(items):
        if item.expectation not in expectations:
            problems.append(
                f"[{n}]: {item.expectation!r} is not an expectation of level {packet.target_level}"
            )
        if item.evidence not in mine:
            problems.append(f"[{n}]: evidence {item.evidence} is not one of your accepted items")
        elif mine[item.evidence][1] == Evidence.Visibility.PRIVATE and item.evidence not in sharing:
            problems.append(
                f"[{n}]: evidence {item.evidence} \u201c{mine[item.evidence][0]}\u201d is private: "
                'share it with your reviewers to use it ("share": true)'
            )
    if problems:
        raise PacketInvalid("Some items cannot be used.", {"items": problems})
    private = [pk for pk in sharing if pk in mine and mine[pk][1] == Evidence.Visibility.PRIVATE]
    if private:
        evidence_share_with_reviewers(evidence_ids=private, actor=actor, packet_id=packet.pk)
    packet.items.all().delete()
    seen = set()
    rows = []
    for n, item in enumerate(items):
        key = (item.expectation, item.evidence)
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            PacketItem(
                packet=packet,
                expectation=expectations[item.expectation],
                evidence_id=item.evidence,
                note=item.note,
                position=n,
            )
        )
    PacketItem.objects.bulk_create(rows)


# --- a newer ladder version ---------------------------------------------------------------


@dataclass(frozen=True)
class PacketMove:
    packet: Packet
    from_version: int
    to_version: int
    carried: list[dict]  # [{expectation, evidence}] now on the new version's expectation
    reworded: list[str]  # codes carried whose text (level, competency) changed
    dropped: list[dict]  # [{expectation, evidence}]: the code is not at the target level now
    narratives_dropped: list[str]  # competency names the new version does not have
    gaps: list[str]  # the target level's codes no item covers after the move


def packet_move_to_latest(*, packet_id: int, actor) -> PacketMove:
    """Move a draft to its ladder's latest published version (TRANSITIONS
    "move-to-latest": the owner, a draft only; anything else is refused, 403 or 409).
    Each item goes to the expectation with the same code at the target level; an item whose
    code is gone is dropped (listed); narratives follow their competency's name. Already on
    the latest version: nothing changes."""
    with transaction.atomic():
        packet = _locked(packet_id)
        _authorize(packet, actor, "move-to-latest")
        old = packet.ladder_version
        latest = ladder_version_published(ladder_id=old.ladder_id)
        if latest is None or latest.number <= old.number:
            coverage = packet_coverage(packet=packet)
            return PacketMove(packet, old.number, old.number, [], [], [], [], coverage.gaps)
        if not latest.levels.filter(number=packet.target_level).exists():
            raise PacketInvalid(
                f"Version {latest.number} has no level {packet.target_level}.",
                {"target_level": f"no level {packet.target_level} in v{latest.number}"},
            )
        new = {
            e.code: e
            for e in Expectation.objects.filter(version=latest, level__number=packet.target_level)
        }
        carried, dropped, reworded = [], [], set()
        items = list(packet.items.select_related("expectation").order_by("position", "id"))
        keep = []
        for item in items:
            target = new.get(item.expectation.code)
            row = {"expectation": item.expectation.code, "evidence": item.evidence_id}
            if target is None:
                dropped.append(row)
                item.delete()
                continue
            if target.text != item.expectation.text:
                reworded.add(target.code)
            item.expectation = target
            keep.append(item)
            carried.append(row)
        PacketItem.objects.bulk_update(keep, ["expectation"])
        names = set(latest.competencies.values_list("name", flat=True))
        narratives_dropped = sorted(set(packet.narratives or {}) - names)
        packet.narratives = {k: v for k, v in (packet.narratives or {}).items() if k in names}
        packet.narratives_html = {
            k: v for k, v in (packet.narratives_html or {}).items() if k in names
        }
        packet.ladder_version = latest
        packet.save(update_fields=["ladder_version", "narratives", "narratives_html", "updated_at"])
        summary = (
            f"Moved from ladder v{old.number} to v{latest.number}: {len(carried)} items carried"
        )
        if dropped:
            summary += ", dropped " + ", ".join(sorted({d["expectation"] for d in dropped}))
        PacketEvent.objects.create(
            packet=packet,
            actor=actor,
            action="move-to-latest",
            from_state=packet.state,
            to_state=packet.state,
            comment=summary + ".",
        )
        coverage = packet_coverage(packet=packet)
    logger.info("packet %s: %s", packet.pk, summary)
    return PacketMove(
        packet=packet,
        from_version=old.number,
        to_version=latest.number,
        carried=carried,
        reworded=sorted(reworded),
        dropped=dropped,
        narratives_dropped=narratives_dropped,
        gaps=coverage.gaps,
    )


# --- snapshots ----------------------------------------------------------------------------


def packet_snapshot_data(*, packet: Packet) -> dict:
    """The packet as reviewers will read it: everything inline, no live references."""
    coverage = packet_coverage(packet=packet)
    items = list(
        PacketItem.objects.filter(packet=packet)
        .select_related("evidence", "expectation")
        .order_by("position", "id")
    )
    by_exp: dict[str, list[dict]] = {}
    for item in items:
        ev = item.evidence
        by_exp.setdefault(item.expectation.code, []).append(
            {
                "evidence": ev.pk,
                "title": ev.title,
                "description": ev.description,
                "description_html": ev.description_html,
                "occurred_on": ev.occurred_on.isoformat() if ev.occurred_on else None,
                "occurred_until": ev.occurred_until.isoformat() if ev.occurred_until else None,
                "url": ev.url,
                "source": ev.source,
                "status": ev.status,
                "work_item": ev.snapshot or None,
                # the hash of that copy (canonical form): what `work_item_changed` and
                # verify_snapshots compare; snapshots from before it was added have none
                "snapshot_sha256": snapshot_sha256(ev.snapshot),
                "note": item.note,
            }
        )
    return {
        "packet": packet.pk,
        "person": {"id": packet.person_id, "name": packet.person.name},
        "cycle": {"id": packet.cycle_id, "name": packet.cycle.name},
        "ladder": {
            "slug": packet.ladder_version.ladder.slug,
            "version": packet.ladder_version.number,
        },
        "from_level": packet.from_level,
        "target_level": packet.target_level,
        "narratives": packet.narratives,
        "narratives_html": packet.narratives_html,
        "coverage": coverage.as_dict(),
        "expectations": [
            {
                "code": e.code,
                "text": e.text,
                "competency": e.competency,
                "items": by_exp.get(e.code, []),
            }
            for e in coverage.expectations
        ],
    }


# --- transitions --------------------------------------------------------------------------


def _locked(packet_id: int) -> Packet:
    return (
        Packet.objects.select_for_update()
        .select_related("person", "cycle", "ladder_version__ladder")
        .get(pk=packet_id)
    )


def packet_require_role(*, packet: Packet, actor, action: str) -> Person | None:
    """Refuse (PacketForbidden) an actor TRANSITIONS never lets take `action` on this packet,
    whatever its state; the API asks this before it reads a body. Returns their person."""
    transition = TRANSITIONS[action]
    me = person_for_user(user=actor)
    refusal = role_refusal(
        transition, packet=packet, person=me, report_ids=lambda: person_report_ids(person=me)
    )
    if refusal:
        raise PacketForbidden(refusal)
    return me


def _authorize(packet: Packet, actor, action: str) -> Person:
    """The actor's person, when TRANSITIONS lets them take `action` on the packet now:
    PacketForbidden when they may not take it at all, PacketConflict when the state does not
    allow it."""
    transition = TRANSITIONS[action]
    me = packet_require_role(packet=packet, actor=actor, action=action)
    if packet.state not in transition.sources:
        raise PacketConflict(transition.conflict_message(packet))
    return me


def _move(packet: Packet, actor, action: str, comment: str = "", to_state: str = "") -> None:
    """Move the packet where TRANSITIONS says `action` leads (`to_state` picks one when it
    leads to several), write the event, and mail whoever acts next after commit."""
    targets = TRANSITIONS[action].targets
    to_state = to_state or (targets[0] if len(targets) == 1 else "")
    if to_state not in targets:
        raise ValueError(f"{action} does not lead to {to_state!r}")  # a bug, not a request
    from_state = packet.state
    packet.state = to_state
    packet.save(update_fields=["state", "updated_at", "submitted_at"])
    PacketEvent.objects.create(
        packet=packet,
        actor=actor,
        action=action,
        from_state=from_state,
        to_state=to_state,
        comment=comment,
    )
    # who acts next, and the engineer for a review or decision, each by their preferences
    transaction.on_commit(
        lambda: packet_transition_notify(
            packet_id=packet.pk, to_state=to_state, comment=comment, from_state=from_state
        )
    )
    logger.info("packet %s: %s → %s by %s", packet.pk, from_state, to_state, actor)


def packet_submit(*, packet_id: int, actor, comment: str = "") -> Packet:
    with transaction.atomic():
        packet = _locked(packet_id)
        _authorize(packet, actor, "submit")
        if not cycle_is_open(cycle=packet.cycle):
            raise PacketInvalid(
                f"{packet.cycle.name} does not take submissions now (deadline "
                f"{packet.cycle.submission_deadline:%Y-%m-%d %H:%M} UTC)."
            )
        coverage = packet_coverage(packet=packet)
        minimum = float(packet.cycle.min_coverage)
        if coverage.overall < minimum:
            raise PacketInvalid(
                f"Coverage {coverage.overall:.0%} is below the cycle's minimum {minimum:.0%}.",
                {"gaps": coverage.gaps, "coverage": round(coverage.overall, 4)},
            )
        data = packet_snapshot_data(packet=packet)
        number = packet.snapshots.count() + 1
        PacketSnapshot.objects.create(
            packet=packet, number=number, data=data, sha256=canonical_sha256(data)
        )
        packet.submitted_at = timezone.now()
        _move(packet, actor, "submit", comment)
    return packet


def _save_assessments(
    packet: Packet, reviewer: Person, specs: list[AssessmentSpec], actor=None
) -> None:
    """Create or change the reviewer's assessments. A change of a saved rating or comment
    replaces nothing silently: it writes a "reassess" PacketEvent with the before and after
    (the timeline shows it); saving the same values again writes nothing."""
    expectations = {e.code: e for e in packet_target_expectations(packet=packet)}
    problems = [
        f"{a.expectation!r} is not an expectation of level {packet.target_level}"
        for a in specs
        if a.expectation not in expectations
    ]
    problems += [
        f"{a.expectation}: rating must be below, meets or exceeds"
        for a in specs
        if a.rating not in Assessment.Rating.values
    ]
    if problems:
        raise PacketInvalid("Some assessments are invalid.", {"assessments": problems})
    saved = {
        a.expectation_id: a
        for a in Assessment.objects.filter(
            packet=packet,
            reviewer=reviewer,
            expectation_id__in=[expectations[s.expectation].pk for s in specs],
        )
    }
    events = []
    for spec in specs:
        expectation = expectations[spec.expectation]
        current = saved.get(expectation.pk)
        if current is None:
            saved[expectation.pk] = Assessment.objects.create(
                packet=packet,
                reviewer=reviewer,
                expectation=expectation,
                rating=spec.rating,
                comment=spec.comment,
            )
            continue
        before = {"rating": current.rating, "comment": current.comment}
        after = {"rating": spec.rating, "comment": spec.comment}
        if before == after:
            continue
        current.rating, current.comment = spec.rating, spec.comment
        current.save(update_fields=["rating", "comment", "updated_at"])
        events.append(
            PacketEvent(
                packet=packet,
                actor=actor,
                action=PacketEvent.REASSESS,
                detail={
                    "expectation": spec.expectation,
                    "reviewer": {"id": reviewer.pk, "name": reviewer.name},
                    "state": packet.state,
                    "before": before,
                    "after": after,
                },
            )
        )
    if events:
        PacketEvent.objects.bulk_create(events)


def packet_assess(*, packet_id: int, actor, assessments: list[AssessmentSpec]) -> Packet:
    """Save assessments without moving the packet (a reviewer works through it)."""
    with transaction.atomic():
        packet = _locked(packet_id)
        reviewer = _authorize(packet, actor, "assess")
        _save_assessments(packet, reviewer, assessments, actor)
    return packet


def packet_request_changes(*, packet_id: int, actor, comment: str) -> Packet:
    with transaction.atomic():
        packet = _locked(packet_id)
        _authorize(packet, actor, "request-changes")
        if not comment.strip():
            raise PacketInvalid("Say what should change.", {"comment": "required"})
        _move(packet, actor, "request-changes", comment)
    return packet


def _review_decision(packet_id, actor, comment, assessments, *, action):
    with transaction.atomic():
        packet = _locked(packet_id)
        reviewer = _authorize(packet, actor, action)
        if assessments:
            _save_assessments(packet, reviewer, assessments, actor)
        assessed = set(
            Assessment.objects.filter(packet=packet, reviewer=reviewer).values_list(
                "expectation__code", flat=True
            )
        )
        missing = [
            e.code for e in packet_target_expectations(packet=packet) if e.code not in assessed
        ]
        if missing:
            raise PacketInvalid(
                "Assess every expectation of the target level first.", {"missing": missing}
            )
        if action == "decline" and not comment.strip():
            raise PacketInvalid("Say why you decline.", {"comment": "required"})
        _move(packet, actor, action, comment)
    return packet


def packet_endorse(
    *, packet_id: int, actor, comment: str = "", assessments: list[AssessmentSpec] | None = None
) -> Packet:
    return _review_decision(packet_id, actor, comment, assessments or [], action="endorse")


def packet_decline(
    *, packet_id: int, actor, comment: str = "", assessments: list[AssessmentSpec] | None = None
) -> Packet:
    return _review_decision(packet_id, actor, comment, assessments or [], action="decline")


def packet_decide(*, packet_id: int, actor, outcome: str, rationale: str) -> Packet:
    with transaction.atomic():
        packet = _locked(packet_id)
        me = _authorize(packet, actor, "decide")
        if outcome not in Decision.Outcome.values:
            raise PacketInvalid("outcome is promoted or not_promoted", {"outcome": outcome})
        if not rationale.strip():
            raise PacketInvalid("A decision needs a rationale.", {"rationale": "required"})
        Decision.objects.create(packet=packet, outcome=outcome, rationale=rationale, decided_by=me)
        _move(packet, actor, "decide", rationale, to_state=outcome)
        if outcome == Decision.Outcome.PROMOTED:
            person_update(
                person=packet.person,
                actor=actor,
                level=packet.target_level,
                reason=f"Promoted in {packet.cycle.name}",
                packet_id=packet.pk,
            )
            _withdraw_superseded(packet, actor)
    return packet


def _withdraw_superseded(promoted: Packet, actor) -> None:
    """After a promotion to level N, the person's other open packets for a level ≤ N have
    nothing left to decide: those the state table lets leave (draft, submitted, changes
    requested → withdrawn) are withdrawn, with an event saying why, so they drop out of
    their managers' review queues. An endorsed one stays for the committee (DESIGN allows it
    only promoted / not promoted)."""
    withdrawable = TRANSITIONS["withdraw"].sources
    superseded = (
        Packet.objects.select_for_update()
        .select_related("person", "cycle")
        .filter(
            person_id=promoted.person_id,
            state__in=withdrawable,
            target_level__lte=promoted.target_level,
        )
        .exclude(pk=promoted.pk)
        .order_by("pk")
    )
    for packet in superseded:
        _move(
            packet,
            actor,
            "withdraw",
            f"Withdrawn on promotion: {promoted.person.name} was promoted to level "
            f"{promoted.target_level} in {promoted.cycle.name}.",
        )


def packet_withdraw(*, packet_id: int, actor, comment: str = "") -> Packet:
    with transaction.atomic():
        packet = _locked(packet_id)
        _authorize(packet, actor, "withdraw")
        _move(packet, actor, "withdraw", comment)
    return packet


# --- verify -------------------------------------------------------------------------------


def packet_verify(*, packet: Packet, actor) -> dict:
    """Re-read from ServiceNow the record behind each imported item of the packet, as the
    actor may see the packet (the caller found it in their scope; private items withheld
    from them are skipped), and compare it with the copy the packet's latest snapshot froze
    (a packet never submitted: each item's own snapshot). Each item's answer becomes its last
    verification (apps/evidence/verification.py). Returns {packet, snapshot, items: [{evidence,
    result, diff, …}], skipped: [evidence ids not imported or withheld], summary: {result:
    count}}. A fixed number of queries, one request per connection, table and 100 records."""
    from .exports import packet_export_data  # exports import this module

    snap = packet.snapshots.order_by("-number").only("number").first()
    data, _sha, _label = packet_export_data(packet, None, viewer=actor)
    seen: dict[int, dict] = {}
    skipped: list[int] = []
    for exp in data.get("expectations", []):
        for item in exp.get("items", []):
            pk = item["evidence"]
            if pk in seen or pk in skipped:
                continue
            if item.get("withheld") or not item.get("work_item"):
                skipped.append(pk)
            else:
                seen[pk] = item["work_item"]
    work_item_of = dict(
        Evidence.objects.filter(pk__in=list(seen)).values_list("pk", "work_item_id")
    )
    items = [VerifyItem(pk, work_item_of.get(pk), copy) for pk, copy in seen.items()]
    answers = verifications_run(items=items, actor=actor) if items else []
    summary = {r: 0 for r in ("match", "changed", "deleted")}
    for answer in answers:
        summary[answer["result"]] += 1
    return {
        "packet": packet.pk,
        "snapshot": snap.number if snap else None,
        "items": answers,
        "skipped": skipped,
        "summary": summary,
    }
