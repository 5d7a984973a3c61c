"""Who sees which evidence, in one place (DESIGN.md "Who sees what").

- the owner: all of their own, private included (and their trash, when asked for);
- a manager at any depth: their reports' evidence that is not private and not deleted;
- an admin: every record that is not deleted;
- anyone else: nothing. Views turn "not in this queryset" into a 404.

The API, the pages, exports, attachment downloads and search all read through here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from apps.ladders.models import Expectation, LadderVersion
from apps.ladders.selectors import ladder_version_published
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_report_ids

from .models import Attachment, Corroboration, Evidence, EvidenceLink, evidence_usable_q


def evidence_shared_q(prefix: str = "") -> Q:
    """Evidence a manager of its owner may read: not private and not deleted. `prefix` is
    the path from another model, e.g. "evidence__" from a work item."""
    return ~Q(**{f"{prefix}visibility": Evidence.Visibility.PRIVATE}) & Q(
        **{f"{prefix}deleted_at__isnull": True}
    )


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
            visible |= Q(person_id__in=reports) & evidence_shared_q()
    if viewer.is_staff:
        visible = Q()
    return qs.filter(visible, deleted_at__isnull=True)


def _links_prefetch() -> Prefetch:
    return Prefetch(
        "links",
        queryset=EvidenceLink.objects.select_related(
            "expectation__competency", "expectation__level"
        ).order_by("id"),
    )


def evidence_inbox_prefetched(qs: QuerySet[Evidence]) -> QuerySet[Evidence]:
    """What an inbox row shows: the item, its work item and its (suggested) links; no
    skills or files, which the row does not show (two queries a page fewer)."""
    return qs.prefetch_related(None).prefetch_related(_links_prefetch())


def evidence_prefetched(qs: QuerySet[Evidence]) -> QuerySet[Evidence]:
    """What lists and pages show, in a fixed number of queries whatever the size."""
    return qs.select_related("person", "work_item", "work_item__connection").prefetch_related(
        _links_prefetch(),
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
    table: str | None = None  # the ServiceNow table of the work item, e.g. "incident"
    state: str | None = None  # the work item's stored state value, e.g. "6"
    suggested: str | None = None  # an expectation code a suggestion (not the owner) linked
    sort: str | None = None  # a key of EVIDENCE_SORTS


# The orders a list may ask for (the inbox offers them all); the id breaks ties so that
# paging is stable. Priority is ServiceNow's stored value: "1" is the most urgent.
EVIDENCE_SORTS: dict[str, tuple[str, ...]] = {
    "newest": ("-occurred_on", "-id"),
    "oldest": ("occurred_on", "id"),
    "priority": ("work_item__priority", "-occurred_on", "-id"),
    "title": ("title", "id"),
}


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
        qs = qs.filter(
            Q(title__icontains=f.q)
            | Q(description__icontains=f.q)
            | Q(work_item__number__icontains=f.q)
            | Q(work_item__short_description__icontains=f.q)
        )
    if f.table:
        qs = qs.filter(work_item__table=f.table)
    if f.state:
        qs = qs.filter(work_item__state=f.state)
    if f.suggested:
        qs = qs.filter(
            links__expectation__code=f.suggested, links__origin=EvidenceLink.Origin.SUGGESTED
        )
    if f.competency or f.level or f.expectation or f.skill or f.suggested:
        qs = qs.distinct()
    order = EVIDENCE_SORTS.get(f.sort or "newest", EVIDENCE_SORTS["newest"])
    return evidence_prefetched(qs).order_by(*order)


class EvidenceRowsPage:
    """A list queryset as DRF's paginator reads it: sliced into dicts of the named columns,
    counted on the plain queryset. Counting the values() would keep its joins (person, work
    item), which SQLite cannot drop; the plain COUNT is served by the (person, deleted_at,
    …) index alone, about 4x cheaper at 5,000 items (benchmarks/evidence.py)."""

    ordered = True  # the queryset is: evidence_list orders it

    def __init__(self, qs: QuerySet[Evidence], *, columns: tuple[str, ...]):
        self.qs = qs.prefetch_related(None).select_related(None)
        self.columns = columns

    def count(self) -> int:
        return self.qs.order_by().count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        return self.qs.values(*self.columns)[key]


def evidence_rows(*, ids: list[int], columns: tuple[str, ...]) -> list[dict]:
    """The named columns (`id` among them) of these evidence rows, in the order of `ids`
    (missing ones left out). Callers scope first, with evidence_scope/evidence_list."""
    by_pk = {r["id"]: r for r in Evidence.objects.filter(pk__in=ids).values(*columns)}
    return [by_pk[pk] for pk in ids if pk in by_pk]


@dataclass
class EvidenceSatellites:
    """The links, skills and attachments of some evidence rows, by evidence id, each in its
    display order. Links and attachments are dicts of named columns."""

    links: dict[int, list[dict]]
    skills: dict[int, list[str]]
    attachments: dict[int, list[dict]]
    corroborations: dict[int, list[dict]] = field(default_factory=dict)


def evidence_satellites(*, ids: list[int]) -> EvidenceSatellites:
    """Links, skills, attachments and corroborations of these evidence rows in ONE query.

    Raw SQL on purpose: this runs for every page of every list, and three ORM queries cost
    more to compile than to execute (benchmarks/evidence.py). Table names come from the
    models, values are parameters."""
    if not ids:
        return EvidenceSatellites(links={}, skills={}, attachments={}, corroborations={})
    link_t, exp_t = EvidenceLink._meta.db_table, Expectation._meta.db_table
    version_t = LadderVersion._meta.db_table
    through = Evidence.skills.through
    skill_t, through_t = (
        through._meta.get_field("skill").related_model._meta.db_table,
        (through._meta.db_table),
    )
    att_t = Attachment._meta.db_table
    cor_t, person_t = Corroboration._meta.db_table, Person._meta.db_table
    marks = ", ".join(["%s"] * len(ids))
    # The attachments branch comes first so that PostgreSQL takes each column's type from a
    # real column (a NULL in the first branch would make the timestamp column text).
    sql = f"""
        SELECT 3, a.evidence_id, a.id, a.name, a.content_type, NULL, a.size, a.created_at,
               NULL, NULL, NULL, NULL
          FROM {att_t} a
         WHERE a.evidence_id IN ({marks})
        UNION ALL
        SELECT 1, l.evidence_id, l.id, e.code, l.rationale, l.origin, l.deliverable_id, NULL,
               l.ladder_change, m.id, v.number, m.text
          FROM {link_t} l LEFT JOIN {exp_t} e ON e.id = l.expectation_id
               LEFT JOIN {exp_t} m ON m.id = COALESCE(l.made_against_id, l.expectation_id)
               LEFT JOIN {version_t} v ON v.id = m.version_id
         WHERE l.evidence_id IN ({marks})
        UNION ALL
        SELECT 2, t.evidence_id, s.position, s.name, NULL, NULL, t.skill_id, NULL,
               NULL, NULL, NULL, NULL
          FROM {through_t} t JOIN {skill_t} s ON s.id = t.skill_id
         WHERE t.evidence_id IN ({marks})
        UNION ALL
        SELECT 4, c.evidence_id, c.id, p.name, c.comment, c.state, c.person_id, c.answered_at,
               NULL, NULL, NULL, NULL
          FROM {cor_t} c JOIN {person_t} p ON p.id = c.person_id
         WHERE c.evidence_id IN ({marks})
    """  # noqa: S608 (identifiers from model metadata; values are parameters)
    links: dict[int, list] = {}
    skills: dict[int, list] = {}
    files: dict[int, list] = {}
    cors: dict[int, list] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, *ids, *ids, *ids])
        for row in cursor.fetchall():
            kind, ev_id, key, text1, text2, text3, num, stamp = row[:8]
            if kind == 1:
                change, against_id, against_version, against_text = row[8:]
                links.setdefault(ev_id, []).append(
                    (
                        key,
                        {
                            "expectation": text1,
                            "deliverable": num,
                            "rationale": text2,
                            "origin": text3,
                            "ladder_change": change or "",
                            "made_against": {
                                "expectation": against_id,
                                "code": text1,
                                "version": against_version,
                                "text": against_text,
                            }
                            if against_id is not None
                            else None,
                        },
                    )
                )
            elif kind == 2:
                skills.setdefault(ev_id, []).append((key, num, text1))
            elif kind == 4:
                cors.setdefault(ev_id, []).append(
                    (
                        key,
                        {
                            "person": num,
                            "name": text1,
                            "state": text3,
                            "comment": text2,
                            "answered_at": _aware(stamp),
                        },
                    )
                )
            else:
                if isinstance(stamp, str):
                    stamp = parse_datetime(stamp)
                if stamp is not None and stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=UTC)
                files.setdefault(ev_id, []).append(
                    (
                        key,
                        {
                            "id": key,
                            "name": text1,
                            "size": num,
                            "content_type": text2,
                            "created_at": stamp,
                        },
                    )
                )
    return EvidenceSatellites(
        links={k: [d for _, d in sorted(v, key=lambda x: x[0])] for k, v in links.items()},
        skills={k: [name for *_, name in sorted(v)] for k, v in skills.items()},
        attachments={k: [d for _, d in sorted(v, key=lambda x: x[0])] for k, v in files.items()},
        corroborations={k: [d for _, d in sorted(v, key=lambda x: x[0])] for k, v in cors.items()},
    )


def _aware(stamp):
    if isinstance(stamp, str):
        stamp = parse_datetime(stamp)
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp


def evidence_get(*, viewer: AbstractBaseUser, pk: int, trash: bool = False) -> Evidence:
    from django.http import Http404

    try:
        return evidence_prefetched(evidence_scope(viewer=viewer, trash=trash)).get(pk=pk)
    except (Evidence.DoesNotExist, ValueError, TypeError):
        raise Http404("No such evidence.") from None


def evidence_withheld_ids(*, viewer: AbstractBaseUser, evidence_ids: Collection[int]) -> set[int]:
    """Which of `evidence_ids` the viewer may not read where a packet shows them: the
    private ones, unless the viewer owns them or is an admin (the evidence_scope rule). A
    packet's readers see such an item as withheld. One query; none for an admin."""
    if viewer.is_staff or not evidence_ids:
        return set()
    private = Evidence.objects.filter(
        pk__in=list(evidence_ids), visibility=Evidence.Visibility.PRIVATE
    )
    if viewer.is_authenticated:
        private = private.exclude(person__user_id=viewer.pk)
    return set(private.values_list("pk", flat=True))


def evidence_withheld(
    *, viewer: AbstractBaseUser, owner_user_id: int | None, visibility: str
) -> bool:
    """The same rule for one item whose owner and visibility the caller has read already."""
    return (
        visibility == Evidence.Visibility.PRIVATE
        and not viewer.is_staff
        and not (viewer.is_authenticated and owner_user_id == viewer.pk)
    )


def evidence_can_edit(*, viewer: AbstractBaseUser, evidence: Evidence) -> bool:
    """Only the owner changes their evidence; managers and admins read it. The services
    refuse everyone else by this rule; pages ask it to offer the buttons. No query when the
    evidence came with its person (evidence_get), one otherwise."""
    return viewer.is_authenticated and evidence.person.user_id == viewer.pk


@dataclass
class LevelExpectationCoverage:
    """One expectation of a level and the person's usable evidence linked to it."""

    expectation: Expectation
    evidence_ids: list[int] = field(default_factory=list)

    @property
    def covered(self) -> bool:
        return bool(self.evidence_ids)


@dataclass
class LevelCoverage:
    """A person's coverage of one level of their ladder (see packets' PacketCoverage for a
    packet's, which counts the evidence offered in the packet instead)."""

    level: int | None
    items: list[LevelExpectationCoverage]

    @property
    def covered(self) -> int:
        return sum(1 for i in self.items if i.covered)

    @property
    def fraction(self) -> float:
        return self.covered / len(self.items) if self.items else 0.0


_UNSET = object()


def evidence_coverage(
    *, person: Person, level: int | None = None, version: LadderVersion | None = _UNSET
) -> LevelCoverage:
    """Which expectations of a level (default: the person's next) have accepted evidence.
    Pass `version` when the caller already read ladder_version_published."""
    if version is _UNSET:
        version = ladder_version_published(ladder_id=person.ladder_id)
    if version is None:
        return LevelCoverage(level=None, items=[])
    if level is None:
        level = (person.level or 0) + 1
    expectations = list(
        Expectation.objects.filter(version=version, level__number=level)
        .select_related("competency", "level")
        .order_by("position")
    )
    linked = EvidenceLink.objects.filter(
        evidence_usable_q("evidence__"), expectation__in=expectations, evidence__person=person
    ).values_list("expectation_id", "evidence_id")
    by_exp: dict[int, list[int]] = {}
    for exp_id, ev_id in linked:
        by_exp.setdefault(exp_id, []).append(ev_id)
    return LevelCoverage(
        level=level,
        items=[
            LevelExpectationCoverage(e, sorted(set(by_exp.get(e.pk, [])))) for e in expectations
        ],
    )


def inbox_facets(*, person: Person) -> dict[str, list[tuple[str, str]]]:
    """What the inbox's filters offer: the tables and states of the person's waiting
    candidates, each `(value, label)`. A state's label is ServiceNow's display value as the
    sync kept it in the snapshot (`snapshot["display"]`), else the stored value. One query
    over the distinct (table, state, label) triples."""
    rows = (
        Evidence.objects.filter(
            person=person,
            status=Evidence.Status.CANDIDATE,
            deleted_at__isnull=True,
            work_item__isnull=False,
        )
        .values_list("work_item__table", "work_item__state", "snapshot__display__state")
        .order_by()  # the model's ordering would join the DISTINCT: a row per candidate
        .distinct()
    )
    tables: set[str] = set()
    states: dict[str, str] = {}
    for table, state, label in rows:
        tables.add(table)
        if state and (label or state not in states):
            states[state] = str(label or state)
    return {
        "tables": [(t, t) for t in sorted(tables)],
        "states": sorted(states.items(), key=lambda kv: (len(kv[0]), kv[0])),
    }


def evidence_inbox_count(*, person: Person) -> int:
    """How many imported candidates wait for their owner's triage (the nav badge, on every
    page: one COUNT on the person's own rows rather than the whole visibility scope)."""
    return Evidence.objects.filter(
        person=person, status=Evidence.Status.CANDIDATE, deleted_at__isnull=True
    ).count()


def evidence_ladder_behind(*, person: Person, version: LadderVersion | None) -> bool:
    """The person has usable (accepted, live) evidence linked to an expectation of an older
    version than `version` (the current one), or flagged removed / reworded by a newer
    version: the evidence page then links to "What changed". One query."""
    if version is None:
        return False
    return (
        EvidenceLink.objects.filter(
            evidence_usable_q("evidence__"),
            evidence__person=person,
            expectation__version__ladder_id=version.ladder_id,
        )
        .annotate(
            against=Coalesce(F("made_against__version__number"), F("expectation__version__number"))
        )
        .filter(Q(against__lt=version.number) | ~Q(ladder_change=""))
        .exists()
    )


def nav_counts(*, person: Person) -> tuple[int, int]:
    """(imported candidates waiting for triage, corroboration requests waiting on me): the
    navigation's two badges in ONE query (every page shows them)."""
    from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
    from django.db.models.functions import Coalesce

    def counted(qs) -> Coalesce:
        sub = qs.values("person_id").annotate(n=Count("id")).values("n")
        return Coalesce(Subquery(sub, output_field=IntegerField()), Value(0))

    candidates = Evidence.objects.filter(
        person=OuterRef("pk"), status=Evidence.Status.CANDIDATE, deleted_at__isnull=True
    )
    asks = Corroboration.objects.filter(
        person=OuterRef("pk"),
        state=Corroboration.State.PENDING,
        evidence__deleted_at__isnull=True,
    )
    row = (
        Person.objects.filter(pk=person.pk)
        .annotate(inbox_n=counted(candidates), asks_n=counted(asks))
        .values_list("inbox_n", "asks_n")
        .first()
    )
    return row or (0, 0)
