"""Reads of packets, scoped (DESIGN.md "Who sees what"):

owner: their packets; managers at any depth: their reports' packets; committee members:
endorsed and decided packets of anyone; admins: all. Anything else is a 404 upstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet
from django.http import Http404

from apps.evidence.models import Evidence
from apps.ladders.models import Deliverable, Expectation
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids

from .models import Packet, PacketItem


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


def manager_chain_ids(*, person: Person) -> list[int]:
    """The person's managers, nearest first (one query per level; cycles stop the walk)."""
    chain: list[int] = []
    current = person.manager_id
    while current is not None and current not in chain and current != person.pk:
        chain.append(current)
        current = Person.objects.filter(pk=current).values_list("manager_id", flat=True).first()
    return chain


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
class ExpectationCoverage:
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
    expectations: list[ExpectationCoverage]
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
            ],  # fmt: skip
            "gaps": self.gaps,
            "deliverables": self.deliverables,
        }


def packet_target_expectations(*, packet: Packet) -> list[Expectation]:
    return list(
        Expectation.objects.filter(version_id=packet.ladder_version_id,
                                   level__number=packet.target_level)
        .select_related("competency")
        .order_by("competency__position", "position")
    )  # fmt: skip


def packet_coverage(*, packet: Packet) -> PacketCoverage:
    """Each expectation of the target level covered (an accepted, live evidence item offered
    for it) or a gap; a fraction per competency. Three queries whatever the size."""
    expectations = packet_target_expectations(packet=packet)
    offered = PacketItem.objects.filter(
        packet=packet,
        evidence__status=Evidence.Status.ACCEPTED,
        evidence__deleted_at__isnull=True,
    ).values_list("expectation_id", "evidence_id")
    by_exp: dict[int, list[int]] = {}
    for exp_id, ev_id in offered:
        by_exp.setdefault(exp_id, []).append(ev_id)
    items = [
        ExpectationCoverage(
            code=e.code, text=e.text, competency=e.competency.name, expectation_id=e.pk,
            evidence=sorted(set(by_exp.get(e.pk, []))),
        )
        for e in expectations
    ]  # fmt: skip
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
        "added": [{"expectation": k[0], "evidence": k[1], "title": b[k]["title"]}
                  for k in sorted(b.keys() - a.keys())],
        "removed": [{"expectation": k[0], "evidence": k[1], "title": a[k]["title"]}
                    for k in sorted(a.keys() - b.keys())],
        "notes_changed": [{"expectation": k[0], "evidence": k[1], "before": a[k]["note"],
                           "after": b[k]["note"]}
                          for k in sorted(a.keys() & b.keys()) if a[k]["note"] != b[k]["note"]],
        "narratives_changed": sorted(
            name for name in set(before.get("narratives", {})) | set(after.get("narratives", {}))
            if before.get("narratives", {}).get(name) != after.get("narratives", {}).get(name)
        ),
        "coverage": {"before": before["coverage"]["overall"],
                     "after": after["coverage"]["overall"]},
    }  # fmt: skip
