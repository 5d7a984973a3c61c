"""Reads of packets, scoped (DESIGN.md "Who sees what"):

owner: their packets; managers at any depth: their reports' packets; committee members:
endorsed and decided packets of anyone; admins: all. Anything else is a 404 upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from apps.evidence.models import Corroboration, Evidence, EvidenceLink, evidence_usable_q
from apps.evidence.selectors import evidence_withheld_ids
from apps.ladders.models import Competency, Deliverable, Expectation
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids

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


def packet_builder(*, packet: Packet) -> list[BuilderCompetency]:
    """What the builder page offers for each expectation of the target level: the owner's
    accepted, live evidence, linked (or already picked) items first, each with how many
    people confirmed it. Five queries whatever the number of evidence items."""
    expectations = packet_target_expectations(packet=packet)
    evidence = list(
        Evidence.objects.usable()
        .filter(person_id=packet.person_id)
        .order_by("-occurred_on", "-id")
        .values_list("pk", "title", "occurred_on", "source", "visibility")
    )
    linked = set(
        EvidenceLink.objects.filter(
            evidence__person_id=packet.person_id, expectation__in=[e.pk for e in expectations]
        ).values_list("expectation_id", "evidence_id")
    )
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
                confirmations=confirmed.get(pk, 0),
            )
            for pk, title, occurred_on, source, visibility in evidence
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
    confirmed_items: int = 0  # items of the packet that someone who saw the work confirmed


def packet_committee_rows(*, viewer: AbstractBaseUser, packets: list[Packet]) -> list[CommitteeRow]:
    """The committee's side-by-side summary: each packet's latest snapshot coverage and the
    managers' assessment counts, and how many of its items were confirmed by someone who saw
    the work. Three queries whatever the number of packets."""
    ids = [p.pk for p in packets]
    latest = (
        PacketSnapshot.objects.filter(packet_id=OuterRef("packet_id"))
        .order_by("-number")
        .values("number")[:1]
    )
    coverage = dict(
        PacketSnapshot.objects.filter(packet_id__in=ids, number=Subquery(latest)).values_list(
            "packet_id", "data__coverage"
        )
    )
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
