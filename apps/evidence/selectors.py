"""Who sees which evidence, in one place (DESIGN.md "Who sees what").

- the owner: all of their own, private included (and their trash, when asked for);
- a manager at any depth: their reports' evidence that is not private and not deleted;
- an admin: every record that is not deleted;
- anyone else: nothing. Views turn "not in this queryset" into a 404.

The API, the pages, exports, attachment downloads and search all read through here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch, Q, QuerySet

from apps.ladders.models import Expectation, LadderVersion
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids

from .models import Attachment, Evidence, EvidenceLink


def evidence_scope(*, viewer: AbstractBaseUser, trash: bool = False) -> QuerySet[Evidence]:
    """Every evidence row the viewer may read (not prefetched; callers add what they show)."""
    qs = Evidence.objects.all()
    if not viewer.is_authenticated:
        return qs.none()
    me = person_for_user(user=viewer)
    if trash:  # only ever your own deleted items
        return qs.filter(person=me, deleted_at__isnull=False) if me else qs.none()
    visible = Q(pk__in=[])
    if me is not None:
        visible |= Q(person=me)
        reports = person_report_ids(person=me)
        if reports:
            visible |= Q(person_id__in=reports) & ~Q(visibility=Evidence.Visibility.PRIVATE)
    if viewer.is_staff:
        visible = Q()
    return qs.filter(visible, deleted_at__isnull=True)


def evidence_prefetched(qs: QuerySet[Evidence]) -> QuerySet[Evidence]:
    """What lists and pages show, in a fixed number of queries whatever the size."""
    return qs.select_related("person", "work_item", "work_item__connection").prefetch_related(
        Prefetch(
            "links",
            queryset=EvidenceLink.objects.select_related(
                "expectation__competency", "expectation__level", "deliverable__level"
            ).order_by("id"),
        ),
        "skills",
        Prefetch("attachments", queryset=Attachment.objects.order_by("id")),
    )


@dataclass
class EvidenceFilters:
    person: int | None = None
    status: str | None = None
    source: str | None = None
    visibility: str | None = None
    competency: str | None = None  # code, e.g. TE
    level: int | None = None
    skill: str | None = None
    expectation: str | None = None  # code
    date_from: date | None = None
    date_to: date | None = None
    q: str | None = None


def evidence_list(
    *, viewer: AbstractBaseUser, filters: EvidenceFilters | None = None, trash: bool = False
) -> QuerySet[Evidence]:
    qs = evidence_scope(viewer=viewer, trash=trash)
    f = filters or EvidenceFilters()
    if f.person:
        qs = qs.filter(person_id=f.person)
    if f.status:
        qs = qs.filter(status=f.status)
    if f.source:
        qs = qs.filter(source=f.source)
    if f.visibility:
        qs = qs.filter(visibility=f.visibility)
    if f.competency:
        qs = qs.filter(links__expectation__competency__code=f.competency)
    if f.level:
        qs = qs.filter(links__expectation__level__number=f.level)
    if f.expectation:
        qs = qs.filter(links__expectation__code=f.expectation)
    if f.skill:
        qs = qs.filter(skills__name__iexact=f.skill)
    if f.date_from:
        qs = qs.filter(Q(occurred_until__gte=f.date_from) | Q(occurred_on__gte=f.date_from))
    if f.date_to:
        qs = qs.filter(occurred_on__lte=f.date_to)
    if f.q:
        qs = qs.filter(Q(title__icontains=f.q) | Q(description__icontains=f.q))
    if f.competency or f.level or f.expectation or f.skill:
        qs = qs.distinct()
    return evidence_prefetched(qs).order_by("-occurred_on", "-id")


def evidence_get(*, viewer: AbstractBaseUser, pk: int, trash: bool = False) -> Evidence:
    from django.http import Http404

    try:
        return evidence_prefetched(evidence_scope(viewer=viewer, trash=trash)).get(pk=pk)
    except (Evidence.DoesNotExist, ValueError, TypeError):
        raise Http404("No such evidence.") from None


def evidence_can_edit(*, viewer: AbstractBaseUser, evidence: Evidence) -> bool:
    me = person_for_user(user=viewer)
    return me is not None and evidence.person_id == me.pk


def ladder_version_current(*, person: Person) -> LadderVersion | None:
    if not person.ladder_id:
        return None
    return (
        LadderVersion.objects.filter(ladder_id=person.ladder_id, status="published")
        .order_by("-number")
        .first()
    )


@dataclass
class ExpectationCoverage:
    expectation: Expectation
    evidence_ids: list[int] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.evidence_ids)


@dataclass
class Coverage:
    level: int | None
    items: list[ExpectationCoverage]

    @property
    def covered(self) -> int:
        return sum(1 for i in self.items if i.covered)

    @property
    def fraction(self) -> float:
        return self.covered / len(self.items) if self.items else 0.0


def evidence_coverage(*, person: Person, level: int | None = None) -> Coverage:
    """Which expectations of a level (default: the person's next) have accepted evidence."""
    version = ladder_version_current(person=person)
    if version is None:
        return Coverage(level=None, items=[])
    if level is None:
        level = (person.level or 0) + 1
    expectations = list(
        Expectation.objects.filter(version=version, level__number=level)
        .select_related("competency", "level")
        .order_by("position")
    )
    linked = EvidenceLink.objects.filter(
        expectation__in=expectations,
        evidence__person=person,
        evidence__status=Evidence.Status.ACCEPTED,
        evidence__deleted_at__isnull=True,
    ).values_list("expectation_id", "evidence_id")
    by_exp: dict[int, list[int]] = {}
    for exp_id, ev_id in linked:
        by_exp.setdefault(exp_id, []).append(ev_id)
    return Coverage(
        level=level,
        items=[ExpectationCoverage(e, sorted(set(by_exp.get(e.pk, [])))) for e in expectations],
    )
