"""The manager's overview: one row per report, read across people, evidence and packets.

This app owns no table. It sits above people, evidence and packets (it imports all three;
none of them imports it) and answers "how ready is each of my people?" in a fixed number
of queries whatever the size of the team (asserted in tests/team/).

What a row counts follows the evidence visibility rule (DESIGN: a manager reads a report's
evidence unless it is private; admins read everything), so a private item never shows up
as a number either. `coverage` is the number the packet builder shows when the person has
a packet in the current cycle (its offered items against its target level); otherwise the
share of the next level's expectations that have accepted, live evidence linked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Max, Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceLink, evidence_usable_q
from apps.evidence.selectors import evidence_shared_q
from apps.ladders.models import Expectation
from apps.ladders.selectors import ladder_versions_published
from apps.packets.models import Packet, PacketItem, PromotionCycle
from apps.people.models import Person
from apps.people.selectors import person_reports_subquery
from ladder_tracker.errors import NotFoundError

RECENT_DAYS = 90
SORTS = (
    "name",
    "manager",
    "level",
    "coverage",
    "candidates_waiting",
    "evidence_90d",
    "last_activity",
    "packet_state",
)


@dataclass
class TeamFilters:
    q: str = ""
    manager: int | None = None
    level: int | None = None
    packet_state: str = ""  # a Packet.State value, or "none" for no packet this cycle
    sort: str = "name"  # one of SORTS, "-" in front for descending


@dataclass(frozen=True)
class PersonRef:
    id: int
    name: str

    @property
    def pk(self) -> int:
        return self.id


@dataclass(frozen=True)
class Member:
    """The few fields of a person the overview shows (read as values, not model instances:
    a department is hundreds of rows)."""

    id: int
    name: str
    email: str
    level: int | None
    ladder_id: int | None
    manager_id: int | None
    manager_name: str | None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def manager(self) -> PersonRef | None:
        if self.manager_id is None:
            return None
        return PersonRef(self.manager_id, self.manager_name or "")


@dataclass
class TeamRow:
    person: Member
    next_level: int | None
    coverage: float
    packet: Packet | None
    candidates_waiting: int = 0
    evidence_90d: int = 0
    last_activity: datetime | None = None

    @property
    def manager(self) -> PersonRef | None:
        return self.person.manager

    @property
    def coverage_percent(self) -> int:
        return round(self.coverage * 100)


@dataclass
class TeamGroup:
    manager: PersonRef | None
    rows: list[TeamRow] = field(default_factory=list)


def cycle_current(*, today: date | None = None) -> PromotionCycle | None:
    """The cycle people mean by "this cycle": the newest one that has opened (else None)."""
    today = today or timezone.localdate()
    return PromotionCycle.objects.filter(opens_on__lte=today).order_by("-opens_on", "-pk").first()


def team_people(*, viewer: AbstractBaseUser, team: RawSQL | None = None) -> list[Member]:
    """Who the viewer oversees: admins everyone active, managers their reports at any
    depth, anyone else nobody (one query)."""
    if not viewer.is_authenticated:
        return []
    qs = Person.objects.filter(is_active=True)
    if not viewer.is_staff:
        qs = qs.filter(pk__in=team if team is not None else person_reports_subquery(user=viewer))
    fields = ("id", "name", "email", "level", "ladder_id", "manager_id", "manager__name")
    return [Member(*row) for row in qs.order_by("name", "pk").values_list(*fields)]


def _visible_q(viewer: AbstractBaseUser, prefix: str = "") -> Q:
    if viewer.is_staff:
        return Q()
    return ~Q(**{f"{prefix}visibility": Evidence.Visibility.PRIVATE})


def team_overview(*, viewer: AbstractBaseUser, filters: TeamFilters | None = None) -> list[TeamRow]:
    f = filters or TeamFilters()
    team = None if viewer.is_staff else person_reports_subquery(user=viewer)
    people = team_people(viewer=viewer, team=team)
    if not people:
        return []

    def of_people(prefix: str = "") -> Q:
        # Admins oversee every active person: a join, not an IN of every id in the company;
        # a manager's team is the org walk as a subquery, not an IN of a few hundred ids
        # bound into every read (a third of the overview's time at 200 people).
        if viewer.is_staff:
            return Q(**{f"{prefix}person__is_active": True})
        # (inactive reports' rows are read too, and no row is made for them)
        return Q(**{f"{prefix}person_id__in": team})

    versions = ladder_versions_published()
    cycle = cycle_current()

    packets: dict[int, Packet] = {}
    if cycle is not None:
        # Newest first: an open packet wins over an older closed one of the same cycle.
        for packet in (
            Packet.objects.filter(of_people(), cycle=cycle)
            .only("id", "person_id", "state", "ladder_version_id", "target_level", "updated_at")
            .order_by("-created_at", "-pk")
        ):
            current = packets.get(packet.person_id)
            if current is None or (
                current.state not in Packet.OPEN_STATES and packet.state in Packet.OPEN_STATES
            ):
                packets[packet.person_id] = packet

    # Every expectation of the versions involved (a ladder has a few dozen per level).
    version_ids = {v.pk for v in versions.values()}
    version_ids |= {p.ladder_version_id for p in packets.values()}
    expectations: dict[tuple[int, int], set[int]] = {}
    for exp_id, version_id, level in Expectation.objects.filter(
        version_id__in=version_ids
    ).values_list("pk", "version_id", "level__number"):
        expectations.setdefault((version_id, level), set()).add(exp_id)

    linked: dict[int, set[int]] = {}
    for person_id, exp_id in (
        EvidenceLink.objects.filter(
            evidence_usable_q("evidence__"),
            _visible_q(viewer, "evidence__"),
            of_people("evidence__"),
        )
        .order_by()
        .values_list("evidence__person_id", "expectation_id")
        .distinct()
    ):
        linked.setdefault(person_id, set()).add(exp_id)

    offered: dict[int, set[int]] = {}
    if packets:
        for packet_id, exp_id in (
            PacketItem.objects.filter(
                evidence_usable_q("evidence__"), packet_id__in=[p.pk for p in packets.values()]
            )
            .order_by()
            .values_list("packet_id", "expectation_id")
            .distinct()
        ):
            offered.setdefault(packet_id, set()).add(exp_id)

    since = timezone.localdate() - timedelta(days=RECENT_DAYS)
    counts = {
        row["person_id"]: row
        for row in Evidence.objects.filter(_visible_q(viewer), of_people(), deleted_at__isnull=True)
        .values("person_id")
        .annotate(
            waiting=Count("pk", filter=Q(status=Evidence.Status.CANDIDATE)),
            recent=Count("pk", filter=Q(status=Evidence.Status.ACCEPTED, occurred_on__gte=since)),
            last=Max("updated_at", filter=Q(status=Evidence.Status.ACCEPTED)),
        )
    }

    rows = []
    for person in people:
        version = versions.get(person.ladder_id) if person.ladder_id else None
        next_level = (person.level or 0) + 1 if version else None
        if version and (version.pk, next_level) not in expectations:
            next_level = None  # at the top of the ladder
        packet = packets.get(person.pk)
        if packet is not None:
            wanted = expectations.get((packet.ladder_version_id, packet.target_level), set())
            have = offered.get(packet.pk, set())
        elif version is not None and next_level is not None:
            wanted = expectations.get((version.pk, next_level), set())
            have = linked.get(person.pk, set())
        else:
            wanted, have = set(), set()
        coverage = len(wanted & have) / len(wanted) if wanted else 0.0
        count = counts.get(person.pk, {})
        activity = [t for t in (count.get("last"), packet.updated_at if packet else None) if t]
        rows.append(
            TeamRow(
                person=person,
                next_level=next_level,
                coverage=coverage,
                packet=packet,
                candidates_waiting=count.get("waiting", 0),
                evidence_90d=count.get("recent", 0),
                last_activity=max(activity) if activity else None,
            )
        )
    return team_rows_select(rows, f)


def team_rows_select(rows: list[TeamRow], f: TeamFilters) -> list[TeamRow]:
    """The rows a filter keeps, in its sort order (no query: rows are already read)."""
    return _sorted(_filtered(rows, f), f.sort)


def _filtered(rows: list[TeamRow], f: TeamFilters) -> list[TeamRow]:
    if f.q:
        needle = f.q.casefold()
        rows = [r for r in rows if needle in f"{r.person.name} {r.person.email}".casefold()]
    if f.manager:
        rows = [r for r in rows if r.person.manager_id == f.manager]
    if f.level:
        rows = [r for r in rows if r.person.level == f.level]
    if f.packet_state == "none":
        rows = [r for r in rows if r.packet is None]
    elif f.packet_state:
        rows = [r for r in rows if r.packet is not None and r.packet.state == f.packet_state]
    return rows


_EPOCH = datetime.min.replace(tzinfo=timezone.get_fixed_timezone(0))
_KEYS = {
    "name": lambda r: r.person.name.casefold(),
    "manager": lambda r: r.manager.name.casefold() if r.manager else "",
    "level": lambda r: r.person.level or 0,
    "coverage": lambda r: r.coverage,
    "candidates_waiting": lambda r: r.candidates_waiting,
    "evidence_90d": lambda r: r.evidence_90d,
    "last_activity": lambda r: r.last_activity or _EPOCH,
    "packet_state": lambda r: r.packet.state if r.packet else "",
}


def _sorted(rows: list[TeamRow], sort: str) -> list[TeamRow]:
    descending = sort.startswith("-")
    key = _KEYS.get(sort.lstrip("-"), _KEYS["name"])
    # Ties keep name order whichever way the main key runs.
    rows = sorted(rows, key=_KEYS["name"])
    return sorted(rows, key=key, reverse=descending)


def team_groups(rows: list[TeamRow]) -> list[TeamGroup]:
    """Rows grouped by direct manager, groups in the order their first row appears."""
    groups: dict[int | None, TeamGroup] = {}
    for row in rows:
        key = row.person.manager_id
        groups.setdefault(key, TeamGroup(manager=row.manager)).rows.append(row)
    return list(groups.values())


@dataclass
class ExpectationEvidence:
    code: str
    text: str
    competency: str
    evidence: list[Evidence]

    @property
    def covered(self) -> bool:
        return bool(self.evidence)


@dataclass
class PersonOverview:
    person: Person
    next_level: int | None
    expectations: list[ExpectationEvidence]
    packets: list[Packet]
    level_changes: list

    @property
    def coverage(self) -> float:
        if not self.expectations:
            return 0.0
        return sum(e.covered for e in self.expectations) / len(self.expectations)

    @property
    def coverage_percent(self) -> int:
        return round(self.coverage * 100)


def team_person(*, viewer: AbstractBaseUser, person_id: int) -> PersonOverview:
    """One person of the viewer's team: ladder position, each next-level expectation with the
    evidence behind it that the viewer may read, packets, level history. NotFoundError when the
    person is not someone the viewer oversees (the same answer as for nobody)."""
    # One read that is also the membership test (the same people team_people lists), not
    # a read of the whole team to look for one id.
    people = Person.objects.filter(pk=person_id, is_active=True)
    if not viewer.is_staff:
        people = people.filter(pk__in=person_reports_subquery(user=viewer))
    person = people.select_related("manager", "ladder").first() if viewer.is_authenticated else None
    if person is None:
        raise NotFoundError("No such person in your team.")
    version = ladder_versions_published().get(person.ladder_id) if person.ladder_id else None
    next_level = (person.level or 0) + 1 if version else None
    expectations: list[ExpectationEvidence] = []
    if version is not None:
        rows = list(
            Expectation.objects.filter(version=version, level__number=next_level)
            .select_related("competency")
            .order_by("competency__position", "position")
        )
        if not rows:
            next_level = None
        # evidence_scope narrowed to this one report (its reading of the whole org chart
        # again is not needed: the person is in the team): not private unless an admin reads
        visible = Evidence.objects.filter(evidence_usable_q(), person=person)
        if not viewer.is_staff:
            visible = visible.filter(evidence_shared_q())
        by_exp: dict[int, list[Evidence]] = {}
        for link in (
            EvidenceLink.objects.filter(expectation__in=rows, evidence__in=visible)
            .select_related("evidence")
            .order_by("-evidence__occurred_on", "evidence_id")
        ):
            by_exp.setdefault(link.expectation_id, []).append(link.evidence)
        expectations = [
            ExpectationEvidence(e.code, e.text, e.competency.name, by_exp.get(e.pk, []))
            for e in rows
        ]
    packets = list(
        Packet.objects.filter(person=person).select_related("cycle").order_by("-created_at")
    )
    changes = list(
        person.level_changes.select_related("changed_by").order_by("-effective_on", "-id")
    )
    return PersonOverview(person, next_level, expectations, packets, changes)
