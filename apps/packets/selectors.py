"""Reads of packets, scoped (DESIGN.md "Who sees what"):

owner: their packets; managers at any depth: their reports' packets; committee members:
endorsed and decided packets of anyone; admins: all. Anything else is a 404 upstream.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from apps.evidence.models import Corroboration, Evidence, EvidenceLink, evidence_usable_q
from apps.evidence.selectors import evidence_withheld_ids
from apps.ladders.models import Competency, Deliverable, Expectation, LadderVersion
from apps.ladders.selectors import ladder_version_diff, ladder_version_published
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids
from ladder_tracker.canonical import canonical_sha256
from servicenow.query import format_timestamp

from .models import Assessment, Packet, PacketEvent, PacketItem, PacketSnapshot, PromotionCycle
from .transitions import TRANSITIONS, role_refusal


def packet_scope(*, viewer: AbstractBaseUser) -> QuerySet[Packet]:
    qs = Packet.objects.select_related("person", "cycle", "ladder_version__ladder")
    if not viewer.is_authenticated:
        return qs.none()
    if viewer.is_staff:
        return qs
    me = person_for_user(user=viewer)
    if me is None:
        return qs.none()
    visible = Q(person=me)
    reports = person_report_ids(person=me)
    if reports:
        visible |= Q(person_id__in=reports)
    if me.is_committee:
        visible |= Q(state__in=Packet.COMMITTEE_STATES)
    return qs.filter(visible)


def packet_get(*, viewer: AbstractBaseUser, pk) -> Packet:
    try:
        return packet_scope(viewer=viewer).get(pk=pk)
    except (Packet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such packet.") from None


class PacketItemRow(NamedTuple):
    """One item of a packet as the API lists it: a plain row, no model instances."""

    expectation_code: str
    evidence_id: int
    note: str
    evidence_visibility: str


def packet_item_rows(*, packet_ids: Collection[int]) -> dict[int, list[PacketItemRow]]:
    """Each packet's items in the packet's order, for any number of packets in one query.

    Rows, not PacketItem and Evidence instances: a packet may offer thousands of items, and
    two model instances per item (each with its __dict__ and state) were most of the
    detail's time and all of its tail, the garbage collector's full passes over what they
    left in the old generation (benchmarks/README.md, "make bench-web")."""
    rows: dict[int, list[PacketItemRow]] = {pk: [] for pk in packet_ids}
    if not rows:
        return rows
    query = (
        PacketItem.objects.filter(packet_id__in=list(rows))
        .order_by("packet_id", "position", "id")
        .values_list(
            "packet_id", "expectation__code", "evidence_id", "note", "evidence__visibility"
        )
    )
    for packet_id, code, evidence_id, note, visibility in query:
        rows[packet_id].append(PacketItemRow(code, evidence_id, note, visibility))
    return rows


def packet_review_queue(*, viewer: AbstractBaseUser) -> QuerySet[Packet]:
    """Submitted packets of the viewer's reports (any depth): what waits for them."""
    me = person_for_user(user=viewer)
    if me is None:
        return Packet.objects.none()
    return packet_scope(viewer=viewer).filter(
        person_id__in=person_report_ids(person=me), state=Packet.State.SUBMITTED
    )


def packet_committee_queue(*, viewer: AbstractBaseUser, cycle_id: int | None = None):
    me = person_for_user(user=viewer)
    if me is None or not me.is_committee:
        return Packet.objects.none()
    qs = packet_scope(viewer=viewer).filter(state=Packet.State.ENDORSED)
    if cycle_id:
        qs = qs.filter(cycle_id=cycle_id)
    return qs


@dataclass
class PacketExpectationCoverage:
    code: str
    text: str
    competency: str
    expectation_id: int
    evidence: list[int] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.evidence)


@dataclass
class PacketCoverage:
    expectations: list[PacketExpectationCoverage]
    by_competency: dict[str, float]
    deliverables: list[dict]

    @property
    def overall(self) -> float:
        if not self.expectations:
            return 0.0
        return sum(1 for e in self.expectations if e.covered) / len(self.expectations)

    @property
    def gaps(self) -> list[str]:
        return [e.code for e in self.expectations if not e.covered]

    def as_dict(self) -> dict:
        return {
            "overall": round(self.overall, 4),
            "by_competency": {k: round(v, 4) for k, v in self.by_competency.items()},
            "expectations": [
                {
                    "code": e.code,
                    "text": e.text,
                    "competency": e.competency,
                    "covered": e.covered,
                    "evidence": e.evidence,
                }
                for e in self.expectations
            ],
            "gaps": self.gaps,
            "deliverables": self.deliverables,
        }


def packet_target_expectations(*, packet: Packet) -> list[Expectation]:
    return list(
        Expectation.objects.filter(
            version_id=packet.ladder_version_id, level__number=packet.target_level
        )
        .select_related("competency")
        .order_by("competency__position", "position")
    )


def packet_coverage(*, packet: Packet) -> PacketCoverage:
    """Each expectation of the target level covered (an accepted, live evidence item offered
    for it) or a gap; a fraction per competency. Three queries whatever the size."""
    expectations = packet_target_expectations(packet=packet)
    offered = PacketItem.objects.filter(evidence_usable_q("evidence__"), packet=packet).values_list(
        "expectation_id", "evidence_id"
    )
    by_exp: dict[int, list[int]] = {}
    for exp_id, ev_id in offered:
        by_exp.setdefault(exp_id, []).append(ev_id)
    items = [
        PacketExpectationCoverage(
            code=e.code,
            text=e.text,
            competency=e.competency.name,
            expectation_id=e.pk,
            evidence=sorted(set(by_exp.get(e.pk, []))),
        )
        for e in expectations
    ]
    totals: dict[str, list[int]] = {}
    for item in items:
        t = totals.setdefault(item.competency, [0, 0])
        t[0] += item.covered
        t[1] += 1
    deliverables = [
        {"id": d.pk, "text": d.text}
        for d in Deliverable.objects.filter(
            version_id=packet.ladder_version_id, level__number=packet.target_level
        ).order_by("position")
    ]
    return PacketCoverage(
        expectations=items,
        by_competency={k: (c / n if n else 0.0) for k, (c, n) in totals.items()},
        deliverables=deliverables,
    )


# What a reader sees of an item withheld from them (packet_data_for_reader).
WITHHELD_TITLE = "Private evidence (withheld)"


def packet_data_for_reader(*, viewer: AbstractBaseUser, packet: Packet, data: dict) -> dict:
    """A packet's data (snapshot shape, frozen or live) as this reader may see it. An item
    whose evidence is private now, and not the reader's own, is withheld: it keeps its place
    and its id, and none of its content (title, description, dates, link, note, ServiceNow
    snapshot) — so a private item that reached a packet before sharing was asked, or was
    made private again afterwards, is never shown to managers or the committee. Admins and
    the owner see everything (evidence_scope). Every page, export and API answer that shows
    a packet's items reads through this. One query (none for the owner or an admin); the
    data is copied only when something is withheld (the stored snapshot and its sha256 stay
    as they were)."""
    if viewer.is_staff or packet.person.user_id == viewer.pk:
        return data
    expectations = data.get("expectations") or []
    ids = {item["evidence"] for exp in expectations for item in exp.get("items", [])}
    withheld = evidence_withheld_ids(viewer=viewer, evidence_ids=ids)
    if not withheld:
        return data
    return {
        **data,
        "expectations": [
            {
                **exp,
                "items": [
                    _withheld_item(item) if item["evidence"] in withheld else item
                    for item in exp.get("items", [])
                ],
            }
            for exp in expectations
        ],
    }


def _withheld_item(item: dict) -> dict:
    return {
        "evidence": item["evidence"],
        "withheld": True,
        "title": WITHHELD_TITLE,
        "description": "",
        "description_html": "",
        "occurred_on": None,
        "occurred_until": None,
        "url": "",
        "source": "",
        "status": item.get("status", ""),
        "work_item": None,
        "note": "",
    }


# --- the ServiceNow record behind each item, as it is now ----------------------------------

# Keys packet_source_flags adds to each item of a packet's data: facts about now, not part of
# the frozen snapshot (its sha256 is over the stored data, without them).
LIVE_ITEM_KEYS = ("work_item_deleted", "work_item_changed", "last_verification", "corroborations")


@dataclass(frozen=True)
class ItemSource:
    """What an evidence item's ServiceNow record is now, for the flags on a packet's item."""

    has_work_item: bool
    private: bool  # withheld from readers other than its owner (packet_data_for_reader)
    deleted: bool  # the sync found the record deleted in ServiceNow
    snapshot_sha256: str | None  # the item's current snapshot hash (refreshed by each sync)
    # the work item's sys_updated_on as last synced ("YYYY-MM-DD HH:MM:SS" UTC): a record
    # reassigned to someone else moves on without this item's snapshot being refreshed
    updated_on: str | None = None
    verification: dict | None = None  # {result, at, by, compared_sha256}: its last Verify


def item_sources(*, evidence_ids) -> dict[int, ItemSource]:
    """The ServiceNow side of these evidence items, by id. One query whatever their number."""
    ids = set(evidence_ids)
    if not ids:
        return {}
    rows = Evidence.objects.filter(pk__in=ids).values_list(
        "pk",
        "work_item_id",
        "visibility",
        "work_item__deleted_at",
        "work_item__sys_updated_on",
        "snapshot_sha256",
        "verification__result",
        "verification__verified_at",
        "verification__verified_by__username",
        "verification__compared_sha256",
    )
    out = {}
    for pk, wi, visibility, deleted_at, updated_on, sha, result, at, by, compared in rows:
        verification = None
        if result:
            verification = {"result": result, "at": at, "by": by, "compared_sha256": compared}
        out[pk] = ItemSource(
            has_work_item=wi is not None,
            private=visibility == Evidence.Visibility.PRIVATE,
            deleted=deleted_at is not None,
            snapshot_sha256=sha,
            updated_on=format_timestamp(updated_on) if updated_on else None,
            verification=verification,
        )
    return out


def item_snapshot_sha256(item: dict) -> str | None:
    """The hash of the record copy a packet's item holds: the one it carries, or (snapshots
    frozen before items carried one) computed from the copy itself."""
    if item.get("snapshot_sha256"):
        return item["snapshot_sha256"]
    return canonical_sha256(item["work_item"]) if item.get("work_item") else None


def item_flags(item: dict, source: ItemSource | None) -> tuple[bool, bool]:
    """(deleted, changed) for one item of a packet's data: its record was deleted in
    ServiceNow, or it changed since the packet's copy was frozen — the item's snapshot moved
    on (a sync refreshed it: another hash), or the work item itself is newer than the copy
    (a sync stored a later version). A withheld item shows neither."""
    if source is None or item.get("withheld") or not source.has_work_item:
        return False, False
    held = item_snapshot_sha256(item)
    changed = bool(held and source.snapshot_sha256 and source.snapshot_sha256 != held)
    copy_on = (item.get("work_item") or {}).get("sys_updated_on")
    if copy_on and source.updated_on and source.updated_on > copy_on:
        changed = True
    return source.deleted, changed


def packet_source_flags(*, data: dict) -> dict:
    """A packet's data (frozen or live, as packet_data_for_reader returned it) with, on each
    item, `work_item_deleted`, `work_item_changed` and `last_verification` (LIVE_ITEM_KEYS),
    and at the top `source_changes` (how many items are flagged). Every packet page and export
    shows these. One query; a copy: the stored snapshot stays as it was."""
    expectations = data.get("expectations") or []
    sources = item_sources(
        evidence_ids=[item["evidence"] for exp in expectations for item in exp.get("items", [])]
    )
    deleted: set[int] = set()
    changed: set[int] = set()

    def flagged(item: dict) -> dict:
        source = sources.get(item["evidence"])
        gone, moved = item_flags(item, source)
        if gone:
            deleted.add(item["evidence"])
        if moved:
            changed.add(item["evidence"])
        last = None if item.get("withheld") or source is None else source.verification
        return {**item, "work_item_deleted": gone, "work_item_changed": moved,
                "last_verification": last}  # fmt: skip

    out = {
        **data,
        "expectations": [
            {**exp, "items": [flagged(item) for item in exp.get("items", [])]}
            for exp in expectations
        ],
    }
    # evidence items, not places: an item offered for three expectations counts once
    out["source_changes"] = {"deleted": len(deleted), "changed": len(changed)}
    return out


def snapshot_diff(*, before: dict, after: dict) -> dict:
    """What changed between two submissions: evidence offered per expectation (added,
    removed), notes, and narratives."""

    def items(data):
        return {
            (exp["code"], item["evidence"]): item
            for exp in data["expectations"]
            for item in exp["items"]
        }

    a, b = items(before), items(after)
    return {
        "added": [
            {"expectation": k[0], "evidence": k[1], "title": b[k]["title"]}
            for k in sorted(b.keys() - a.keys())
        ],
        "removed": [
            {"expectation": k[0], "evidence": k[1], "title": a[k]["title"]}
            for k in sorted(a.keys() - b.keys())
        ],
        "notes_changed": [
            {"expectation": k[0], "evidence": k[1], "before": a[k]["note"], "after": b[k]["note"]}
            for k in sorted(a.keys() & b.keys())
            if a[k]["note"] != b[k]["note"]
        ],
        "narratives_changed": sorted(
            name
            for name in set(before.get("narratives", {})) | set(after.get("narratives", {}))
            if before.get("narratives", {}).get(name) != after.get("narratives", {}).get(name)
        ),
        "coverage": {
            "before": before["coverage"]["overall"],
            "after": after["coverage"]["overall"],
        },
    }


# --- pages: lists, the builder, review and committee reads ---------------------------------


def cycle_open_list(*, now=None) -> QuerySet[PromotionCycle]:
    """Cycles taking submissions now (the same rule as services.cycle_is_open)."""
    now = now or timezone.now()
    return PromotionCycle.objects.filter(
        opens_on__lte=timezone.localdate(now), submission_deadline__gte=now
    ).order_by("submission_deadline", "name")


def cycle_open_for_start(*, person: Person) -> QuerySet[PromotionCycle]:
    """Open cycles where the person may start a packet: not those where they already have an
    open one (one open packet per person and cycle; the page links to it instead)."""
    open_mine = Packet.objects.filter(person=person, state__in=Packet.OPEN_STATES)
    return cycle_open_list().exclude(pk__in=open_mine.values("cycle_id"))


def cycle_list() -> QuerySet[PromotionCycle]:
    """Every cycle, newest first, with its number of packets and of endorsed ones."""
    return PromotionCycle.objects.annotate(
        packet_count=Count("packets"),
        endorsed=Count("packets", filter=Q(packets__state=Packet.State.ENDORSED)),
    ).order_by("-opens_on", "name")


def cycle_report_allowed(*, viewer: AbstractBaseUser) -> bool:
    """Cycle reports are for admins and the committee (the page and the API ask this)."""
    if viewer.is_staff:
        return True
    me = person_for_user(user=viewer)
    return bool(me and me.is_committee)


def cycle_report_rows(*, cycle: PromotionCycle) -> list[dict]:
    """Packets of a cycle counted by target level and state (the API, the page and the CSV)."""
    counts = (
        Packet.objects.filter(cycle=cycle)
        .values("state", "target_level")
        .annotate(n=Count("id"))
        .order_by("target_level", "state")
    )
    return [
        {"target_level": c["target_level"], "state": c["state"], "count": c["n"]} for c in counts
    ]


def packet_list_for_person(*, person: Person) -> list[Packet]:
    """A person's own packets, newest first, each with `covered` and `total` expectation
    counts (covered: offered an accepted, live evidence item). One query."""
    total = (
        Expectation.objects.filter(
            version_id=OuterRef("ladder_version_id"), level__number=OuterRef("target_level")
        )
        .order_by()
        .values("version_id")
        .annotate(n=Count("id"))
        .values("n")
    )
    live = evidence_usable_q("items__evidence__")
    return list(
        Packet.objects.filter(person=person)
        .select_related("cycle")
        .annotate(
            covered=Count("items__expectation", filter=live, distinct=True),
            total=Coalesce(Subquery(total, output_field=IntegerField()), 0),
        )
        .order_by("-created_at", "-id")
    )


def packet_review_count(*, person: Person) -> int:
    """Submitted packets of the person's reports: the Reviews badge on every page."""
    reports = person_report_ids(person=person)
    if not reports:
        return 0
    return Packet.objects.filter(person_id__in=reports, state=Packet.State.SUBMITTED).count()


def packet_is_reviewer(*, person: Person, packet: Packet) -> bool:
    """The person manages the packet's owner (any depth): they review it, and as a committee
    member they do not decide it."""
    return packet.person_id != person.pk and packet.person_id in person_report_ids(person=person)


_LOOK_UP = object()


def packet_actions_allowed(
    *, viewer: AbstractBaseUser, packet: Packet, person: Person | None = _LOOK_UP
) -> set[str]:
    """The actions of transitions.TRANSITIONS the viewer may take on the packet now; the
    services refuse every other one. `person` is the viewer's, when the caller has read it
    already (None: they have no profile). Walks the org chart only when an action open in
    the packet's state depends on it."""
    me = person_for_user(user=viewer) if person is _LOOK_UP else person
    reports: set[int] | None = None

    def report_ids() -> set[int]:
        nonlocal reports
        if reports is None:
            reports = person_report_ids(person=me)
        return reports

    return {
        action
        for action, transition in TRANSITIONS.items()
        if packet.state in transition.sources
        and role_refusal(transition, packet=packet, person=me, report_ids=report_ids) is None
    }


def packet_review_get(*, viewer: AbstractBaseUser, pk) -> Packet:
    """A packet the viewer reviews: a report's (any depth). Anyone else gets a 404, the
    committee and the owner included."""
    me = person_for_user(user=viewer)
    if me is None:
        raise Http404("No such packet.")
    reports = person_report_ids(person=me) - {me.pk}
    try:
        # a manager's scope holds every report's packet: no need to build it again
        return Packet.objects.select_related("person", "cycle", "ladder_version__ladder").get(
            pk=pk, person_id__in=reports
        )
    except (Packet.DoesNotExist, ValueError, TypeError):
        raise Http404("No such packet.") from None


def packet_reports_other(*, viewer: AbstractBaseUser, person: Person) -> QuerySet[Packet]:
    """The viewer's reports' packets that are not waiting for review (for context)."""
    return (
        packet_scope(viewer=viewer)
        .filter(person_id__in=person_report_ids(person=person))
        .exclude(state=Packet.State.SUBMITTED)
        .order_by("-updated_at", "-id")
    )


def packet_decide_get(*, viewer: AbstractBaseUser, pk) -> Packet:
    """A packet on the committee's table (endorsed or decided), for a committee member."""
    packet = packet_get(viewer=viewer, pk=pk)
    me = person_for_user(user=viewer)
    if me is None or not me.is_committee or packet.state not in Packet.COMMITTEE_STATES:
        raise Http404("No such packet.")
    return packet


def packet_snapshot_list(*, packet: Packet) -> list[PacketSnapshot]:
    return list(
        packet.snapshots.order_by("number").only(
            "id", "packet_id", "number", "sha256", "created_at"
        )
    )


def packet_event_list(*, packet: Packet) -> list[PacketEvent]:
    return list(packet.events.select_related("actor__person").order_by("at", "id"))


def packet_assessment_list(*, packet: Packet) -> list[Assessment]:
    """Every reviewer's assessments of the packet (what the committee reads)."""
    return list(
        Assessment.objects.filter(packet=packet)
        .select_related("expectation", "reviewer")
        .order_by("expectation__position", "reviewer__name")
    )


def packet_assessment_map(*, packet: Packet, reviewer: Person) -> dict[str, Assessment]:
    """The reviewer's saved assessments of the packet, by expectation code."""
    rows = Assessment.objects.filter(packet=packet, reviewer=reviewer).select_related("expectation")
    return {a.expectation.code: a for a in rows}


@dataclass
class EvidenceChoice:
    """One accepted evidence item offered (or not) for one expectation in the builder."""

    evidence_id: int
    title: str
    occurred_on: date | None
    source: str
    linked: bool  # the engineer linked it to this expectation on the evidence itself
    picked: bool  # it is in the packet for this expectation
    note: str = ""
    private: bool = False  # picking it asks to share it with reviewers
    work_item_deleted: bool = False  # its ServiceNow record was deleted
    # its ServiceNow snapshot moved on since the packet's last submission froze a copy
    work_item_changed: bool = False
    confirmations: int = 0  # people who confirmed the work (apps/evidence/corroboration.py)


@dataclass
class BuilderExpectation:
    expectation: Expectation
    choices: list[EvidenceChoice]  # most relevant first: linked or picked, then the rest

    @property
    def relevant(self) -> list[EvidenceChoice]:
        return [c for c in self.choices if c.linked or c.picked]

    @property
    def others(self) -> list[EvidenceChoice]:
        return [c for c in self.choices if not (c.linked or c.picked)]


@dataclass
class BuilderCompetency:
    competency: Competency
    expectations: list[BuilderExpectation]
    narrative: str


def _submitted_items(packet: Packet) -> dict[int, dict]:
    """{evidence id: its item} in the packet's latest snapshot (none before the first
    submission). One query."""
    data = (
        PacketSnapshot.objects.filter(packet=packet)
        .order_by("-number")
        .values_list("data", flat=True)
        .first()
    ) or {}
    return {
        item["evidence"]: item
        for exp in data.get("expectations", [])
        for item in exp.get("items", [])
        if item.get("work_item")
    }


def packet_builder(*, packet: Packet) -> list[BuilderCompetency]:
    """What the builder page offers for each expectation of the target level: the owner's
    accepted, live evidence, linked (or already picked) items first, each flagged when its
    ServiceNow record was deleted or changed since the last submission, and with how many
    people confirmed it. Six queries whatever the number of evidence items."""
    expectations = packet_target_expectations(packet=packet)
    evidence = list(
        Evidence.objects.usable()
        .filter(person_id=packet.person_id)
        .order_by("-occurred_on", "-id")
        .values_list(
            "pk",
            "title",
            "occurred_on",
            "source",
            "visibility",
            "work_item_id",
            "work_item__deleted_at",
            "work_item__sys_updated_on",
            "snapshot_sha256",
        )
    )
    submitted = _submitted_items(packet)
    moved = set()  # changed in ServiceNow since the last submission (item_flags)
    for pk, _t, _o, _s, visibility, wi, deleted_at, updated_on, sha in evidence:
        if pk in submitted:
            source = ItemSource(
                has_work_item=wi is not None,
                private=visibility == Evidence.Visibility.PRIVATE,
                deleted=deleted_at is not None,
                snapshot_sha256=sha,
                updated_on=format_timestamp(updated_on) if updated_on else None,
            )
            if item_flags(submitted[pk], source)[1]:
                moved.add(pk)
    # By code: the engineer's links follow the ladder's newest version, and a packet pinned
    # to an older one still finds them (services.evidence_links_follow_version).
    by_code = {e.code: e.pk for e in expectations}
    linked = {
        (by_code[code], ev_id)
        for code, ev_id in EvidenceLink.objects.filter(
            evidence__person_id=packet.person_id,
            expectation__version__ladder_id=packet.ladder_version.ladder_id,
            expectation__code__in=list(by_code),
        ).values_list("expectation__code", "evidence_id")
    }
    picked = {
        (exp_id, ev_id): note
        for exp_id, ev_id, note in PacketItem.objects.filter(packet=packet).values_list(
            "expectation_id", "evidence_id", "note"
        )
    }
    confirmed = confirmations_count(evidence_ids=[row[0] for row in evidence])
    groups: dict[int, BuilderCompetency] = {}
    for exp in expectations:
        choices = [
            EvidenceChoice(
                evidence_id=pk,
                title=title,
                occurred_on=occurred_on,
                source=source,
                linked=(exp.pk, pk) in linked,
                picked=(exp.pk, pk) in picked,
                note=picked.get((exp.pk, pk), ""),
                private=visibility == Evidence.Visibility.PRIVATE,
                work_item_deleted=deleted_at is not None,
                work_item_changed=pk in moved,
                confirmations=confirmed.get(pk, 0),
            )
            for pk, title, occurred_on, source, visibility, _wi, deleted_at, _on, _sha in evidence
        ]
        choices.sort(key=lambda c: not (c.picked or c.linked))  # stable: newest first within
        group = groups.get(exp.competency_id)
        if group is None:
            group = groups[exp.competency_id] = BuilderCompetency(
                competency=exp.competency,
                expectations=[],
                narrative=(packet.narratives or {}).get(exp.competency.name, ""),
            )
        group.expectations.append(BuilderExpectation(expectation=exp, choices=choices))
    return list(groups.values())


@dataclass
class CommitteeRow:
    packet: Packet
    coverage: float | None
    by_competency: dict[str, float]
    ratings: dict[str, int]  # below / meets / exceeds, over all reviewers
    own_report: bool  # the viewer manages this person: they do not decide it
    # items of the latest snapshot whose ServiceNow record was deleted / changed since
    # (private items, withheld from the committee, are not counted)
    source_deleted: int = 0
    source_changed: int = 0
    confirmed_items: int = 0  # items of the packet that someone who saw the work confirmed


def packet_committee_rows(*, viewer: AbstractBaseUser, packets: list[Packet]) -> list[CommitteeRow]:
    """The committee's side-by-side summary: each packet's latest snapshot coverage and the
    managers' assessment counts, how many of its items' ServiceNow records were deleted or
    changed since, and how many of its items someone who saw the work confirmed. A fixed
    number of queries whatever the number of packets."""
    ids = [p.pk for p in packets]
    latest = (
        PacketSnapshot.objects.filter(packet_id=OuterRef("packet_id"))
        .order_by("-number")
        .values("number")[:1]
    )
    snapshots = dict(
        PacketSnapshot.objects.filter(packet_id__in=ids, number=Subquery(latest)).values_list(
            "packet_id", "data"
        )
    )
    coverage = {pk: data.get("coverage") for pk, data in snapshots.items()}
    items = {
        pk: [item for exp in data.get("expectations", []) for item in exp.get("items", [])]
        for pk, data in snapshots.items()
    }
    sources = item_sources(evidence_ids=[i["evidence"] for rows in items.values() for i in rows])
    flags: dict[int, tuple[int, int]] = {}
    for pk, rows in items.items():
        deleted, changed = set(), set()  # evidence items, each counted once
        for i in rows:
            source = sources.get(i["evidence"])
            if source is None or source.private:
                continue
            gone, moved = item_flags(i, source)
            if gone:
                deleted.add(i["evidence"])
            if moved:
                changed.add(i["evidence"])
        flags[pk] = (len(deleted), len(changed))
    ratings: dict[int, dict[str, int]] = {}
    for packet_id, rating, n in (
        Assessment.objects.filter(packet_id__in=ids)
        .values("packet_id", "rating")
        .annotate(n=Count("id"))
        .values_list("packet_id", "rating", "n")
    ):
        ratings.setdefault(packet_id, {})[rating] = n
    confirmed: dict[int, int] = dict(
        PacketItem.objects.filter(
            packet_id__in=ids,
            evidence__corroborations__state=Corroboration.State.CONFIRMED,
        )
        .values("packet_id")
        .annotate(n=Count("evidence_id", distinct=True))
        .values_list("packet_id", "n")
    )
    me = person_for_user(user=viewer)
    reports = person_report_ids(person=me) if me else set()
    rows = []
    for packet in packets:
        cov = coverage.get(packet.pk) or {}
        counts = ratings.get(packet.pk, {})
        rows.append(
            CommitteeRow(
                packet=packet,
                coverage=cov.get("overall"),
                by_competency=cov.get("by_competency") or {},
                ratings={r: counts.get(r, 0) for r in Assessment.Rating.values},
                own_report=packet.person_id in reports,
                source_deleted=flags.get(packet.pk, (0, 0))[0],
                source_changed=flags.get(packet.pk, (0, 0))[1],
                confirmed_items=confirmed.get(packet.pk, 0),
            )
        )
    return rows


def confirmations_count(*, evidence_ids: list[int]) -> dict[int, int]:
    """{evidence id: confirmed corroborations} in one query."""
    if not evidence_ids:
        return {}
    return dict(
        Corroboration.objects.filter(
            evidence_id__in=evidence_ids, state=Corroboration.State.CONFIRMED
        )
        .values("evidence_id")
        .annotate(n=Count("id"))
        .values_list("evidence_id", "n")
    )


def packet_data_with_corroborations(data: dict) -> dict:
    """The packet's data with each shown item's answered corroborations (who confirmed or
    declined the work, live: answers after a submission show too; not part of the frozen
    snapshot or its sha256), under `corroborations` on the items that have any. One query
    when an imported item is shown, none otherwise; withheld items get none."""
    expectations = data.get("expectations") or []
    ids = {
        item["evidence"]
        for exp in expectations
        for item in exp.get("items", [])
        if not item.get("withheld") and item.get("source") == Evidence.Source.SERVICENOW
    }
    if not ids:  # only imported items have corroborators: no query without one
        return data
    from apps.evidence.corroboration import corroborations_for_evidence

    found = corroborations_for_evidence(evidence_ids=sorted(ids), answered_only=True)
    return {
        **data,
        "expectations": [
            {
                **exp,
                "items": [
                    {**item, "corroborations": found[item["evidence"]]}
                    if item["evidence"] in found and not item.get("withheld")
                    else item
                    for item in exp.get("items", [])
                ],
            }
            for exp in expectations
        ],
    }


def packet_committee_decided(*, viewer: AbstractBaseUser, cycle_id: int) -> QuerySet[Packet]:
    """Packets of the cycle the committee has decided (promoted or not)."""
    me = person_for_user(user=viewer)
    if me is None or not me.is_committee:
        return Packet.objects.none()
    return (
        packet_scope(viewer=viewer)
        .filter(cycle_id=cycle_id, state__in=(Packet.State.PROMOTED, Packet.State.NOT_PROMOTED))
        .select_related("decision")
    )


# --- a newer ladder version: what changed for a person, and for a packet --------------------


@dataclass
class TouchedEvidence:
    """One of the person's evidence items linked to a changed expectation."""

    id: int
    title: str
    made_against_version: int  # the version the link was made against
    ladder_change: str  # the link's flag: "", "reworded" or "removed"


@dataclass
class ExpectationChangeForPerson:
    code: str
    change: str  # "added" | "removed" | "reworded"
    level: int
    competency: str  # code
    before: str | None  # the text in the older version (None when added)
    after: str | None  # the text in the latest version (None when removed)
    evidence: list[TouchedEvidence] = field(default_factory=list)
    packets: list[int] = field(default_factory=list)  # open packets offering it

    def as_dict(self) -> dict:
        return {
            "code": self.code,
            "change": self.change,
            "level": self.level,
            "competency": self.competency,
            "before": self.before,
            "after": self.after,
            "evidence": [vars(e) for e in self.evidence],
            "packets": self.packets,
        }


@dataclass
class LevelChanges:
    level: int
    role: str  # "next" | "current"
    added: list[ExpectationChangeForPerson] = field(default_factory=list)
    removed: list[ExpectationChangeForPerson] = field(default_factory=list)
    reworded: list[ExpectationChangeForPerson] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.reworded)

    def as_dict(self) -> dict:
        return {
            "level": self.level,
            "role": self.role,
            **{
                kind: [c.as_dict() for c in getattr(self, kind)]
                for kind in ("added", "removed", "reworded")
            },
        }


@dataclass
class PacketBehind:
    id: int
    state: str
    target_level: int
    ladder_version: int


@dataclass
class LadderChanges:
    """What newer ladder versions changed for a person: between the oldest version their
    evidence links or open packets were made against and the latest published one."""

    ladder: str | None  # slug
    from_version: int | None
    to_version: int | None
    levels: list[LevelChanges]
    packets: list[PacketBehind]
    evidence_flagged: int  # the person's items with a removed or reworded link

    @property
    def changed(self) -> bool:
        return self.from_version is not None and self.from_version != self.to_version

    def as_dict(self) -> dict:
        return {
            "ladder": self.ladder,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "changed": self.changed,
            "evidence_flagged": self.evidence_flagged,
            "levels": [lv.as_dict() for lv in self.levels],
            "packets": [vars(p) for p in self.packets],
        }


def _changes_by_level(diff, levels: list[tuple[int, str]]) -> list[LevelChanges]:
    """The diff's expectation changes that concern these levels (a reworded one counts for
    the level it is at now, or was at)."""
    out = []
    for level, role in levels:
        group = LevelChanges(level=level, role=role)
        for ch in diff.added:
            if ch.after["level"] == level:
                group.added.append(
                    ExpectationChangeForPerson(
                        ch.code, "added", level, ch.after["competency"], None, ch.after["text"]
                    )
                )
        for ch in diff.removed:
            if ch.before["level"] == level:
                group.removed.append(
                    ExpectationChangeForPerson(
                        ch.code, "removed", level, ch.before["competency"], ch.before["text"], None
                    )
                )
        for ch in diff.changed:
            if level in (ch.before["level"], ch.after["level"]):
                group.reworded.append(
                    ExpectationChangeForPerson(
                        ch.code,
                        "reworded",
                        ch.after["level"],
                        ch.after["competency"],
                        ch.before["text"],
                        ch.after["text"],
                    )
                )
        out.append(group)
    return out


def ladder_changes_for_person(*, person: Person | None) -> LadderChanges:
    """What changed for the person's next level (and their current one) between the oldest
    ladder version their usable evidence's links or open packets were made against and the
    latest published version, with the evidence and packets each change touches. A fixed
    number of queries (eight at most) whatever the evidence and packets."""
    empty = LadderChanges(
        ladder=None, from_version=None, to_version=None, levels=[], packets=[], evidence_flagged=0
    )
    if person is None or person.ladder_id is None:
        return empty
    latest = ladder_version_published(ladder_id=person.ladder_id)
    if latest is None:
        return empty
    links = list(
        EvidenceLink.objects.filter(
            evidence_usable_q("evidence__"),  # accepted and live: what counts for them
            evidence__person=person,
            expectation__version__ladder_id=person.ladder_id,
        )
        .annotate(
            against=Coalesce(F("made_against__version__number"), F("expectation__version__number"))
        )
        .filter(Q(against__lt=latest.number) | ~Q(ladder_change=""))
        .values_list(
            "evidence_id", "evidence__title", "expectation__code", "against", "ladder_change"
        )
        .order_by("evidence_id")
    )
    behind = [
        PacketBehind(id=pk, state=state, target_level=target, ladder_version=number)
        for pk, state, target, number in Packet.objects.filter(
            person=person,
            state__in=Packet.OPEN_STATES,
            ladder_version__ladder_id=person.ladder_id,
            ladder_version__number__lt=latest.number,
        )
        .order_by("-id")
        .values_list("pk", "state", "target_level", "ladder_version__number")
    ]
    flagged = len({ev for ev, _t, _c, _a, change in links if change})
    numbers = [a for *_x, a, _ch in links if a < latest.number] + [p.ladder_version for p in behind]
    slug = latest.ladder.slug
    if not numbers:
        return LadderChanges(slug, latest.number, latest.number, [], behind, flagged)
    oldest = LadderVersion.objects.get(ladder_id=person.ladder_id, number=min(numbers))
    diff = ladder_version_diff(from_version=oldest, to_version=latest)
    wanted = []
    if person.level:
        wanted.append(((person.level or 0) + 1, "next"))
        wanted.append((person.level, "current"))
    else:
        wanted.append((1, "next"))
    levels = _changes_by_level(diff, wanted)
    touched = {
        c.code: c for group in levels for kind in (group.removed, group.reworded) for c in kind
    }
    for ev_id, title, code, against, change in links:
        if code in touched and (against < latest.number or change):
            touched[code].evidence.append(TouchedEvidence(ev_id, title, against, change))
    if behind and touched:
        for packet_id, code in (
            PacketItem.objects.filter(
                packet_id__in=[p.id for p in behind], expectation__code__in=touched
            )
            .values_list("packet_id", "expectation__code")
            .distinct()
            .order_by("packet_id")
        ):
            if packet_id not in touched[code].packets:
                touched[code].packets.append(packet_id)
    return LadderChanges(
        ladder=slug,
        from_version=oldest.number,
        to_version=latest.number,
        levels=levels,
        packets=behind,
        evidence_flagged=flagged,
    )


@dataclass
class PacketMovedOn:
    """A packet pinned to an older ladder version: the latest one, and what changed for the
    packet's target level since the packet's version."""

    latest: int
    changes: LevelChanges


def packet_ladder_moved_on(*, packet: Packet) -> PacketMovedOn | None:
    """None while the packet's version is the latest published one (one query); else the
    changes for its target level (two more)."""
    latest = ladder_version_published(ladder_id=packet.ladder_version.ladder_id)
    if latest is None or latest.number <= packet.ladder_version.number:
        return None
    diff = ladder_version_diff(from_version=packet.ladder_version, to_version=latest)
    (changes,) = _changes_by_level(diff, [(packet.target_level, "target")])
    return PacketMovedOn(latest=latest.number, changes=changes)
