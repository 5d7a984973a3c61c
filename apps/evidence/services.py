"""Writes to evidence. Each write records an EvidenceEvent (who, when, what changed).

Every write takes the actor and refuses by itself: only the owner changes their evidence
(selectors.evidence_can_edit; EvidenceForbidden, 403, for anyone else). Field errors are
Django ValidationErrors, which the API handler and the page helpers map once.

Imported evidence keeps its ServiceNow snapshot read-only: only the engineer's own fields
(title, description, dates, url, visibility, skills, links) are editable, and a re-sync
refreshes the snapshot without touching them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from apps.ladders.models import Deliverable, Expectation, Skill
from apps.ladders.selectors import ladder_version_published
from apps.people.models import Person
from ladder_tracker.errors import ForbiddenError

from .markdown import markdown_check_length, markdown_render
from .models import Attachment, Evidence, EvidenceEvent, EvidenceLink, LadderChange
from .selectors import evidence_can_edit
from .uploads import upload_check

EDITABLE_FIELDS = ("title", "description", "occurred_on", "occurred_until", "url", "visibility")


@dataclass(frozen=True)
class LinkSpec:
    expectation: str | None = None  # code, e.g. "TE-3.1"
    deliverable: int | None = None  # id
    rationale: str = ""


class EvidenceForbidden(ForbiddenError):
    """The actor may read the evidence but not change it (a manager, an admin)."""


def evidence_require_owner(*, actor, evidence: Evidence) -> None:
    """Refuse anyone but the owner (pages that show an owner-only form ask this first)."""
    if not evidence_can_edit(viewer=actor, evidence=evidence):
        raise EvidenceForbidden("Only the owner changes their evidence.")


def _event(evidence: Evidence, actor, action: str, changes: dict | None = None) -> None:
    EvidenceEvent.objects.create(
        evidence=evidence, actor=actor, action=action, changes=changes or {}
    )


def _resolve_links(person: Person, links: list[LinkSpec]) -> list[EvidenceLink]:
    version = ladder_version_published(ladder_id=person.ladder_id)
    if links and version is None:
        raise ValidationError({"links": "This person has no published ladder to link to."})
    codes = {link.expectation for link in links if link.expectation}
    expectations = (
        {e.code: e for e in Expectation.objects.filter(version=version, code__in=codes)}
        if codes
        else {}
    )
    deliverable_ids = {link.deliverable for link in links if link.deliverable}
    deliverables = (
        {d.pk: d for d in Deliverable.objects.filter(version=version, pk__in=deliverable_ids)}
        if deliverable_ids
        else {}
    )
    problems, resolved, seen = [], [], set()
    for i, link in enumerate(links):
        if bool(link.expectation) == bool(link.deliverable):
            problems.append(f"[{i}]: give either an expectation code or a deliverable id")
            continue
        if link.expectation and link.expectation not in expectations:
            problems.append(f"[{i}]: {link.expectation!r} is not an expectation of your ladder")
            continue
        if link.deliverable and link.deliverable not in deliverables:
            problems.append(f"[{i}]: deliverable {link.deliverable} is not in your ladder")
            continue
        key = (link.expectation, link.deliverable)
        if key in seen:
            continue
        seen.add(key)
        resolved.append(
            EvidenceLink(
                expectation=expectations.get(link.expectation) if link.expectation else None,
                deliverable=deliverables.get(link.deliverable) if link.deliverable else None,
                rationale=link.rationale.strip(),
                origin=EvidenceLink.Origin.ENGINEER,
            )
        )
    if problems:
        raise ValidationError({"links": problems})
    return resolved


def _resolve_skills(person: Person, names: list[str]) -> list[Skill]:
    version = ladder_version_published(ladder_id=person.ladder_id)
    wanted = {n.strip().lower(): n for n in names if n.strip()}
    if not wanted:
        return []
    found: dict[str, Skill] = {}
    if version is not None:
        for skill in Skill.objects.filter(version=version):
            found.setdefault(skill.name.lower(), skill)
    unknown = [orig for low, orig in wanted.items() if low not in found]
    if unknown:
        raise ValidationError({"skills": [f"{u!r} is not a skill of your ladder" for u in unknown]})
    return [found[low] for low in wanted]


def _check_dates(occurred_on: date | None, occurred_until: date | None) -> None:
    if occurred_until and not occurred_on:
        raise ValidationError({"occurred_on": "A range needs a start date."})
    if occurred_on and occurred_until and occurred_until < occurred_on:
        raise ValidationError({"occurred_until": "The range ends before it starts."})


@transaction.atomic
def _check_title(title: str) -> None:
    """A title is required and fits its column (a longer one was a database error on
    PostgreSQL, which SQLite never raises)."""
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "A title is required."})
    limit = Evidence._meta.get_field("title").max_length
    if len(title) > limit:
        raise ValidationError({"title": f"At most {limit} characters (it has {len(title)})."})


def evidence_create(
    *,
    person: Person,
    actor,
    title: str,
    description: str = "",
    occurred_on: date | None = None,
    occurred_until: date | None = None,
    url: str = "",
    visibility: str = Evidence.Visibility.MANAGER,
    skills: list[str] | None = None,
    links: list[LinkSpec] | None = None,
) -> Evidence:
    if person.user_id != actor.pk:
        raise EvidenceForbidden("Evidence is added by its owner.")
    _check_title(title)
    markdown_check_length(description, field="description")
    _check_dates(occurred_on, occurred_until)
    resolved_links = _resolve_links(person, links or [])
    resolved_skills = _resolve_skills(person, skills or [])
    evidence = Evidence.objects.create(
        person=person,
        title=title.strip(),
        description=description,
        description_html=markdown_render(description),
        occurred_on=occurred_on or timezone.localdate(),
        occurred_until=occurred_until,
        url=url,
        visibility=visibility,
        source=Evidence.Source.MANUAL,
        status=Evidence.Status.ACCEPTED,
    )
    for link in resolved_links:
        link.evidence = evidence
    EvidenceLink.objects.bulk_create(resolved_links)
    evidence.skills.set(resolved_skills)
    _event(evidence, actor, EvidenceEvent.Action.CREATED)
    return evidence


def _link_key(link: EvidenceLink) -> tuple:
    return (link.expectation.code if link.expectation_id else None, link.deliverable_id)


def _links_summary(evidence: Evidence) -> list[str]:
    out = []
    for link in evidence.links.select_related("expectation", "deliverable").order_by("id"):
        out.append(link.expectation.code if link.expectation else f"D{link.deliverable_id}")
    return out


@transaction.atomic
def evidence_update(
    *,
    evidence: Evidence,
    actor,
    skills: list[str] | None = None,
    links: list[LinkSpec] | None = None,
    **fields,
) -> Evidence:
    """Update the named fields only (HackSoft model_update contract): what is not passed is
    left alone; `links` and `skills`, when passed, replace the current set."""
    evidence_require_owner(actor=actor, evidence=evidence)
    return _update(evidence=evidence, actor=actor, skills=skills, links=links, **fields)


def _update(*, evidence: Evidence, actor, skills=None, links=None, **fields) -> Evidence:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({f: "This field cannot be changed." for f in sorted(unknown)})
    evidence = Evidence.objects.select_for_update().get(pk=evidence.pk)
    changes: dict[str, list] = {}
    for name, value in fields.items():
        if name == "title":
            value = (value or "").strip()
            _check_title(value)
        old = getattr(evidence, name)
        if old != value:
            changes[name] = [_jsonable(old), _jsonable(value)]
            setattr(evidence, name, value)
    _check_dates(evidence.occurred_on, evidence.occurred_until)
    if "description" in changes:
        markdown_check_length(evidence.description, field="description")
        evidence.description_html = markdown_render(evidence.description)
    if skills is not None:
        new_skills = _resolve_skills(evidence.person, skills)
        old_names = sorted(evidence.skills.values_list("name", flat=True))
        if sorted(s.name for s in new_skills) != old_names:
            changes["skills"] = [old_names, sorted(s.name for s in new_skills)]
            evidence.skills.set(new_skills)
    if links is not None:
        before = _links_summary(evidence)
        # A link the item has already stays the same row (what it was made against, its
        # ladder flag; a link to an expectation a newer version removed stays possible);
        # the others are resolved against the current version, the unnamed ones go.
        current = {_link_key(lk): lk for lk in evidence.links.select_related("expectation")}
        kept: dict[tuple, str] = {}
        fresh = []
        for spec in links:
            key = (spec.expectation or None, None if spec.expectation else spec.deliverable)
            if key in current and key not in kept:
                kept[key] = spec.rationale.strip()
            elif key not in current:
                fresh.append(spec)
        resolved = [
            lk for lk in _resolve_links(evidence.person, fresh) if _link_key(lk) not in kept
        ]
        for key, link in current.items():
            if key not in kept:
                link.delete()
            elif link.rationale != kept[key] or link.origin != EvidenceLink.Origin.ENGINEER:
                # named by the owner now: theirs, as a newly made link would be
                link.rationale, link.origin = kept[key], EvidenceLink.Origin.ENGINEER
                link.save(update_fields=["rationale", "origin"])
        for link in resolved:
            link.evidence = evidence
        EvidenceLink.objects.bulk_create(resolved)
        after = _links_summary(evidence)
        if before != after:
            changes["links"] = [before, after]
    if changes:
        evidence.save()
        _event(evidence, actor, EvidenceEvent.Action.UPDATED, changes)
    return evidence


def _jsonable(value):
    return value.isoformat() if isinstance(value, date) else value


@transaction.atomic
def evidence_share_with_reviewers(
    *, evidence_ids: Collection[int], actor, packet_id: int
) -> list[int]:
    """The owner's act of sharing private items with their managers, because they put them
    in a packet (DESIGN.md "Who sees what"): each private item among `evidence_ids` becomes
    visible to managers (`Visibility.MANAGER`) with a "shared" event naming the packet.
    Items already visible are left alone. Returns the ids that changed."""
    rows = list(
        Evidence.objects.select_for_update()
        .select_related("person")
        .filter(pk__in=list(evidence_ids), visibility=Evidence.Visibility.PRIVATE)
    )
    for evidence in rows:
        evidence_require_owner(actor=actor, evidence=evidence)
    ids = [e.pk for e in rows]
    if not ids:
        return []
    Evidence.objects.filter(pk__in=ids).update(
        visibility=Evidence.Visibility.MANAGER, updated_at=timezone.now()
    )
    EvidenceEvent.objects.bulk_create(
        EvidenceEvent(
            evidence_id=pk,
            actor=actor,
            action=EvidenceEvent.Action.SHARED,
            changes={
                "visibility": [Evidence.Visibility.PRIVATE, Evidence.Visibility.MANAGER],
                "packet": [None, packet_id],
            },
        )
        for pk in ids
    )
    return ids


@transaction.atomic
def evidence_accept(*, evidence: Evidence, actor, links: list[LinkSpec] | None = None) -> Evidence:
    """Accept an imported candidate; suggested links become the engineer's unless replaced."""
    evidence_require_owner(actor=actor, evidence=evidence)
    return _accept(evidence, actor, links)


def _accept(evidence: Evidence, actor, links: list[LinkSpec] | None = None) -> Evidence:
    evidence = Evidence.objects.select_for_update().get(pk=evidence.pk)
    if links is not None:
        _update(evidence=evidence, actor=actor, links=links)
    else:
        evidence.links.filter(origin=EvidenceLink.Origin.SUGGESTED).update(
            origin=EvidenceLink.Origin.ENGINEER
        )
    if evidence.status != Evidence.Status.ACCEPTED:
        old = evidence.status
        evidence.status = Evidence.Status.ACCEPTED
        evidence.save(update_fields=["status", "updated_at"])
        _event(evidence, actor, EvidenceEvent.Action.ACCEPTED, {"status": [old, "accepted"]})
    return evidence


@transaction.atomic
def evidence_dismiss(*, evidence: Evidence, actor) -> Evidence:
    evidence_require_owner(actor=actor, evidence=evidence)
    return _dismiss(evidence, actor)


def _dismiss(evidence: Evidence, actor) -> Evidence:
    evidence = Evidence.objects.select_for_update().get(pk=evidence.pk)
    if evidence.status != Evidence.Status.DISMISSED:
        old = evidence.status
        evidence.status = Evidence.Status.DISMISSED
        evidence.save(update_fields=["status", "updated_at"])
        _event(evidence, actor, EvidenceEvent.Action.DISMISSED, {"status": [old, "dismissed"]})
    return evidence


@dataclass(frozen=True)
class BulkTriage:
    updated: int
    skipped: list[int] = field(default_factory=list)  # ids left alone (the inbox only)


@transaction.atomic
def evidence_bulk_triage(
    *,
    actor,
    ids: Collection[int],
    action: str,
    inbox: bool = False,
    expectations: Collection[str] = (),
) -> BulkTriage:
    """Accept or dismiss several of the actor's own live items at once, in one transaction.

    By default (the API) it is all or nothing: an id that is not one of the actor's live
    items (someone else's, deleted, missing) is refused, naming them. From the inbox page
    (`inbox=True`) only what is still a candidate there is triaged and the rest comes back
    as skipped: another tab may have triaged it already, and a stale tick is no error.

    Accepting keeps each item's suggestions and links it to `expectations` (codes) as well;
    a code that is not of the person's ladder is refused before anything changes."""
    if action not in ("accept", "dismiss"):
        raise ValidationError({"action": "accept or dismiss"})
    if expectations and action != "accept":
        raise ValidationError({"expectations": "Links go with accept only."})
    wanted = set(ids)
    mine = Evidence.objects.filter(pk__in=wanted, person__user=actor, deleted_at__isnull=True)
    if inbox:
        mine = mine.filter(status=Evidence.Status.CANDIDATE)
    items = list(mine.order_by("pk"))
    missing = sorted(wanted - {item.pk for item in items})
    if missing and not inbox:
        raise ValidationError({"ids": f"Not your evidence: {missing}"})
    added: list[EvidenceLink] = []
    if expectations and items:
        person = Person.objects.get(user=actor)
        try:
            added = _resolve_links(person, [LinkSpec(expectation=c) for c in expectations])
        except ValidationError as exc:
            raise ValidationError({"expectations": exc.message_dict["links"]}) from None
    for item in items:
        if action == "accept":
            _accept(item, actor)
            if added:
                _links_add(item, actor, added)
        else:
            _dismiss(item, actor)
    return BulkTriage(updated=len(items), skipped=missing)


def _links_add(evidence: Evidence, actor, links: list[EvidenceLink]) -> None:
    """Add these (resolved, unsaved) expectation links to an item, as the engineer's; the
    ones it has already stay as they are. Writes one "updated" event naming the codes."""
    have = set(evidence.links.values_list("expectation_id", flat=True))
    new = [lk for lk in links if lk.expectation_id not in have]
    if not new:
        return
    EvidenceLink.objects.bulk_create(
        [
            EvidenceLink(
                evidence=evidence,
                expectation_id=lk.expectation_id,
                origin=EvidenceLink.Origin.ENGINEER,
            )
            for lk in new
        ]
    )
    codes = sorted(lk.expectation.code for lk in new)
    _event(evidence, actor, EvidenceEvent.Action.UPDATED, {"links_added": codes})


@transaction.atomic
def evidence_delete(*, evidence: Evidence, actor) -> Evidence:
    """Soft delete: gone from every list, restorable by its owner (undo)."""
    evidence_require_owner(actor=actor, evidence=evidence)
    if evidence.deleted_at is None:
        evidence.deleted_at = timezone.now()
        evidence.save(update_fields=["deleted_at", "updated_at"])
        _event(evidence, actor, EvidenceEvent.Action.DELETED)
    return evidence


@transaction.atomic
def evidence_restore(*, evidence: Evidence, actor) -> Evidence:
    evidence_require_owner(actor=actor, evidence=evidence)
    if evidence.deleted_at is not None:
        evidence.deleted_at = None
        evidence.save(update_fields=["deleted_at", "updated_at"])
        _event(evidence, actor, EvidenceEvent.Action.RESTORED)
    return evidence


@transaction.atomic
def attachment_add(*, evidence: Evidence, actor, upload) -> Attachment:
    evidence_require_owner(actor=actor, evidence=evidence)
    checked = upload_check(upload)  # raises UploadRejected
    attachment = Attachment(
        evidence=evidence,
        name=checked.name,
        size=checked.size,
        content_type=checked.content_type,
        sha256=checked.sha256,
        uploaded_by=actor,
    )
    attachment.file.save(checked.name, upload, save=False)
    attachment.save()
    _event(evidence, actor, EvidenceEvent.Action.ATTACHED, {"attachment": [None, checked.name]})
    return attachment


@transaction.atomic
def attachment_remove(*, attachment: Attachment, actor) -> None:
    evidence = attachment.evidence
    evidence_require_owner(actor=actor, evidence=evidence)
    name = attachment.name
    stored = attachment.file.name
    storage = attachment.file.storage
    attachment.delete()
    transaction.on_commit(lambda: storage.delete(stored))
    _event(evidence, actor, EvidenceEvent.Action.DETACHED, {"attachment": [name, None]})


# --- a new ladder version -------------------------------------------------------------------


@dataclass(frozen=True)
class LinksFollowed:
    """What publishing a version did to the evidence links of its ladder."""

    carried: int = 0  # moved to the expectation (or deliverable) of the new version
    reworded: int = 0  # of those, the ones whose expectation reads otherwise now
    removed: int = 0  # left where they were: the new version has no such expectation


def evidence_links_follow_version(*, version) -> LinksFollowed:
    """Move every evidence link of the version's ladder to the version just published
    (called by apps.ladders.services.ladder_version_publish, in its transaction).

    An expectation link moves to the expectation with the same code and keeps what it was
    made against (`made_against`, set to the old expectation the first time it moves);
    it is flagged `reworded` when the text, level or competency differ from what it was
    made against, and `removed` (staying on its old expectation) when the code is gone. A
    deliverable link moves to the deliverable of the same level and text, else is flagged
    removed. Packet items are not links: a packet keeps its pinned version (a draft moves
    by packet_move_to_latest), and snapshots are frozen JSON.

    Links that share (expectation, made against) share their fate, so the writes are one
    UPDATE per such group, not per link: a handful of queries plus one per group (at most
    the old versions' expectations times what they were made against), whatever the
    number of links (benchmarks in the commit: 20,000 links in well under a second)."""
    new_exp = {
        code: (pk, (text, level, comp))
        for pk, code, text, level, comp in Expectation.objects.filter(version=version).values_list(
            "pk", "code", "text", "level__number", "competency__code"
        )
    }
    new_del = {
        (level, text): pk
        for pk, level, text in Deliverable.objects.filter(version=version).values_list(
            "pk", "level__number", "text"
        )
    }
    older = EvidenceLink.objects.filter(expectation__version__ladder_id=version.ladder_id).exclude(
        expectation__version=version
    )
    # an item that links the new expectation already (made there by hand) needs no other
    older.filter(
        Exists(
            EvidenceLink.objects.filter(
                evidence_id=OuterRef("evidence_id"),
                expectation__version=version,
                expectation__code=OuterRef("expectation__code"),
            )
        )
    ).delete()
    groups = list(
        older.values_list("expectation_id", "expectation__code", "made_against_id")
        .annotate(n=Count("pk"))
        .order_by()
    )
    against_ids = {ma or exp for exp, _code, ma, _n in groups}
    facts = {
        pk: (text, level, comp)
        for pk, text, level, comp in Expectation.objects.filter(pk__in=against_ids).values_list(
            "pk", "text", "level__number", "competency__code"
        )
    }
    carried = reworded = removed = 0
    for exp_id, code, made_against_id, n in groups:
        against = made_against_id or exp_id
        target = new_exp.get(code)
        if target is None:
            values = {"made_against_id": against, "ladder_change": LadderChange.REMOVED}
            removed += n
        else:
            same = facts.get(against) == target[1]
            values = {
                "expectation_id": target[0],
                "made_against_id": against,
                "ladder_change": LadderChange.NONE if same else LadderChange.REWORDED,
            }
            carried += n
            reworded += 0 if same else n
        EvidenceLink.objects.filter(expectation_id=exp_id, made_against_id=made_against_id).update(
            **values
        )
    older_del = EvidenceLink.objects.filter(
        deliverable__version__ladder_id=version.ladder_id
    ).exclude(deliverable__version=version)
    for del_id, level, text, n in (
        older_del.values_list("deliverable_id", "deliverable__level__number", "deliverable__text")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        target_del = new_del.get((level, text))
        rows = EvidenceLink.objects.filter(deliverable_id=del_id)
        if target_del is None:
            rows.update(ladder_change=LadderChange.REMOVED)
            removed += n
        else:
            # an item with both (a hand-made link on the new one) keeps the new one
            rows.filter(
                Exists(
                    EvidenceLink.objects.filter(
                        evidence_id=OuterRef("evidence_id"), deliverable_id=target_del
                    )
                )
            ).delete()
            rows.update(deliverable_id=target_del, ladder_change=LadderChange.NONE)
            carried += n
    return LinksFollowed(carried=carried, reworded=reworded, removed=removed)


@transaction.atomic
def evidence_link_confirm(*, evidence: Evidence, actor, code: str) -> Evidence:
    """The owner read the reworded expectation and keeps the link: it is made against the
    expectation as it reads now, and the flag goes. A removed one cannot be confirmed
    (there is nothing to link to); editing the links drops it."""
    evidence_require_owner(actor=actor, evidence=evidence)
    link = (
        evidence.links.select_related("expectation", "made_against")
        .filter(expectation__code=code, ladder_change=EvidenceLink.LadderChange.REWORDED)
        .first()
    )
    if link is None:
        raise ValidationError({"code": f"{code!r} is not a reworded link of this item."})
    before = link.made_against.version.number if link.made_against_id else None
    link.made_against = link.expectation
    link.ladder_change = EvidenceLink.LadderChange.NONE
    link.save(update_fields=["made_against", "ladder_change"])
    _event(
        evidence,
        actor,
        EvidenceEvent.Action.UPDATED,
        {"link_confirmed": [f"{code} v{before}", f"{code} v{link.expectation.version.number}"]},
    )
    return evidence
