"""Cycle analytics and calibration: the numbers behind the cycle's analytics page and
`GET /api/v1/cycles/{id}/analytics/` (both read `cycle_analytics`, so they agree).

Who may read them is `selectors.cycle_report_allowed` (admins and the committee), the same
rule as the cycle report. Four queries whatever the number of packets, events or
assessments: the packets, their latest snapshots' coverage, their events, and the
assessments counted per reviewer and rating; everything else is arithmetic here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Count, OuterRef, Subquery

from .models import Assessment, Packet, PacketEvent, PacketSnapshot, PromotionCycle

S = Packet.State

# How a packet's state reads as an outcome of the cycle: decided, declined by the manager,
# withdrawn, or still open (draft, in review, awaiting the committee).
OUTCOMES: list[tuple[str, str]] = [
    ("promoted", "Promoted"),
    ("not_promoted", "Not promoted"),
    ("declined", "Declined"),
    ("withdrawn", "Withdrawn"),
    ("open", "Open"),
]
OUTCOME_OF_STATE = {
    S.PROMOTED: "promoted",
    S.NOT_PROMOTED: "not_promoted",
    S.DECLINED: "declined",
    S.WITHDRAWN: "withdrawn",
}
RATINGS: list[tuple[str, str]] = list(Assessment.Rating.choices)
# A rating as a score, for means: below 1, meets 2, exceeds 3.
RATING_SCORE = {rating: i + 1 for i, (rating, _label) in enumerate(RATINGS)}
# The events in which a manager reviews a packet: their actor is its reviewing manager.
REVIEW_ACTIONS = ("request-changes", "endorse", "decline")
COVERAGE_BUCKETS = 10  # 0–10 %, …, 90–100 % (100 % falls in the last)
NO_MANAGER = "No manager"


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default), of sorted values."""
    if not values:
        return None
    pos = (len(values) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


@dataclass
class CoverageBucket:
    low: float
    high: float
    count: int

    @property
    def label(self) -> str:
        return f"{round(self.low * 100)}–{round(self.high * 100)}%"


@dataclass
class CoverageAtSubmission:
    """Each submitted packet's coverage in its latest snapshot (what reviewers read)."""

    values: list[float]
    min_coverage: float
    buckets: list[CoverageBucket] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return _percentile(sorted(self.values), 0.5)

    @property
    def mean(self) -> float | None:
        return sum(self.values) / len(self.values) if self.values else None

    @property
    def below_minimum(self) -> int:
        return sum(1 for v in self.values if v < self.min_coverage)


@dataclass
class OutcomeRow:
    """Packets of one group (a target level, a reviewing manager) by outcome."""

    key: int | None  # the target level, or the manager's person id (None: no manager)
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class RatingRow:
    """One reviewer's assessments in the cycle (or the whole cycle's) by rating."""

    key: int | None  # the reviewer's person id; None for the cycle row
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        if not self.total:
            return None
        return sum(RATING_SCORE[r] * n for r, n in self.counts.items()) / self.total


@dataclass
class StateTime:
    """How long packets stayed in one state: completed stays (entered, then left), in
    seconds; `current` packets are in it now and are not in the figures."""

    state: str
    label: str
    seconds: list[float]
    current: int

    @property
    def count(self) -> int:
        return len(self.seconds)

    def percentile(self, q: float) -> float | None:
        return _percentile(sorted(self.seconds), q)


@dataclass
class CycleAnalytics:
    cycle: PromotionCycle
    packet_count: int
    coverage: CoverageAtSubmission
    by_level: list[OutcomeRow]
    by_manager: list[OutcomeRow]
    ratings_cycle: RatingRow
    ratings_by_manager: list[RatingRow]
    time_in_state: list[StateTime]

    def as_dict(self) -> dict:
        def rnd(x: float | None, digits: int = 4) -> float | None:
            return None if x is None else round(x, digits)

        def outcome_row(row: OutcomeRow, key_name: str) -> dict:
            return {key_name: row.key, "label": row.label, "counts": row.counts, "total": row.total}

        def rating_row(row: RatingRow) -> dict:
            cycle_mean = self.ratings_cycle.mean
            return {
                "reviewer": row.key,
                "name": row.label,
                "counts": row.counts,
                "total": row.total,
                "mean": rnd(row.mean),
                "difference": rnd(row.mean - cycle_mean)
                if row.mean is not None and cycle_mean is not None
                else None,
            }

        cov = self.coverage
        return {
            "cycle": {
                "id": self.cycle.pk,
                "name": self.cycle.name,
                "min_coverage": float(self.cycle.min_coverage),
            },
            "packets": self.packet_count,
            "outcomes": [{"key": k, "label": label} for k, label in OUTCOMES],
            "coverage_at_submission": {
                "submitted": len(cov.values),
                "median": rnd(cov.median),
                "mean": rnd(cov.mean),
                "below_minimum": cov.below_minimum,
                "buckets": [
                    {"low": b.low, "high": b.high, "label": b.label, "count": b.count}
                    for b in cov.buckets
                ],
            },
            "outcomes_by_level": [outcome_row(r, "target_level") for r in self.by_level],
            "outcomes_by_manager": [outcome_row(r, "manager") for r in self.by_manager],
            "ratings": {
                "scores": RATING_SCORE,
                "cycle": {
                    "counts": self.ratings_cycle.counts,
                    "total": self.ratings_cycle.total,
                    "mean": rnd(self.ratings_cycle.mean),
                },
                "by_reviewer": [rating_row(r) for r in self.ratings_by_manager],
            },
            "time_in_state": [
                {
                    "state": t.state,
                    "label": t.label,
                    "count": t.count,
                    "current": t.current,
                    "median_seconds": rnd(t.percentile(0.5), 1),
                    "p25_seconds": rnd(t.percentile(0.25), 1),
                    "p75_seconds": rnd(t.percentile(0.75), 1),
                    "p90_seconds": rnd(t.percentile(0.9), 1),
                    "max_seconds": rnd(max(t.seconds), 1) if t.seconds else None,
                }
                for t in self.time_in_state
            ],
        }


def _zero_outcomes() -> dict[str, int]:
    return {key: 0 for key, _label in OUTCOMES}


def _coverage(cycle: PromotionCycle) -> CoverageAtSubmission:
    latest = (
        PacketSnapshot.objects.filter(packet_id=OuterRef("packet_id"))
        .order_by("-number")
        .values("number")[:1]
    )
    values = [
        float(v)
        for v in PacketSnapshot.objects.filter(
            packet__cycle=cycle, number=Subquery(latest)
        ).values_list("data__coverage__overall", flat=True)
        if v is not None
    ]
    counts = [0] * COVERAGE_BUCKETS
    for v in values:
        counts[min(COVERAGE_BUCKETS - 1, max(0, int(v * COVERAGE_BUCKETS)))] += 1
    return CoverageAtSubmission(
        values=values,
        min_coverage=float(cycle.min_coverage),
        buckets=[
            CoverageBucket(low=i / COVERAGE_BUCKETS, high=(i + 1) / COVERAGE_BUCKETS, count=n)
            for i, n in enumerate(counts)
        ],
    )


def _state_times(events: list[tuple]) -> list[StateTime]:
    """Stays in each state from the timeline: a stay runs from the event that moved the
    packet into a state to the next event that moved it out. Events that change no state
    (an empty or repeated `to_state`) do not end a stay."""
    stays: dict[str, list[float]] = {}
    current: dict[str, int] = {}
    packet_id, state, since = None, None, None
    for pid, to_state, at in events:
        if pid != packet_id:
            if state is not None:
                current[state] = current.get(state, 0) + 1
            packet_id, state, since = pid, None, None
        if not to_state or to_state == state:
            continue
        if state is not None:
            stays.setdefault(state, []).append((at - since).total_seconds())
        state, since = to_state, at
    if state is not None:
        current[state] = current.get(state, 0) + 1
    terminal = {S.PROMOTED, S.NOT_PROMOTED, S.DECLINED, S.WITHDRAWN}
    labels = dict(S.choices)
    order = [s for s in S.values if s not in terminal]
    order += sorted((set(stays) | set(current)) - set(order) - terminal)
    return [
        StateTime(
            state=s,
            label=labels.get(s, s),
            seconds=stays.get(s, []),
            current=current.get(s, 0),
        )
        for s in order
    ]


def cycle_analytics(*, cycle: PromotionCycle) -> CycleAnalytics:
    """Coverage at submission, outcomes by target level and by reviewing manager, each
    reviewer's rating distribution beside the cycle's, and time spent in each state.

    A packet's reviewing manager is whoever last reviewed it (requested changes, endorsed or
    declined); until someone has, the owner's manager. Four queries."""
    packets = list(
        Packet.objects.filter(cycle=cycle)
        .order_by("id")
        .values_list("id", "state", "target_level", "person__manager_id", "person__manager__name")
    )
    coverage = _coverage(cycle)
    events = list(
        PacketEvent.objects.filter(packet__cycle=cycle)
        .order_by("packet_id", "at", "id")
        .values_list(
            "packet_id", "action", "to_state", "at", "actor__person__id", "actor__person__name"
        )
    )
    ratings = list(
        Assessment.objects.filter(packet__cycle=cycle)
        .values("reviewer_id", "reviewer__name", "rating")
        .annotate(n=Count("id"))
        .order_by("reviewer__name", "reviewer_id", "rating")
        .values_list("reviewer_id", "reviewer__name", "rating", "n")
    )

    reviewed_by: dict[int, tuple[int | None, str]] = {}
    for pid, action, _to, _at, person_id, name in events:
        if action in REVIEW_ACTIONS and person_id is not None:
            reviewed_by[pid] = (person_id, name)  # events are in time order: the last wins

    by_level: dict[int, OutcomeRow] = {}
    by_manager: dict[int | None, OutcomeRow] = {}
    for pid, state, level, manager_id, manager_name in packets:
        outcome = OUTCOME_OF_STATE.get(state, "open")
        row = by_level.setdefault(
            level, OutcomeRow(key=level, label=f"Level {level}", counts=_zero_outcomes())
        )
        row.counts[outcome] += 1
        mid, mname = reviewed_by.get(pid, (manager_id, manager_name))
        row = by_manager.setdefault(
            mid, OutcomeRow(key=mid, label=mname or NO_MANAGER, counts=_zero_outcomes())
        )
        row.counts[outcome] += 1

    cycle_counts = {r: 0 for r, _label in RATINGS}
    per_reviewer: dict[int, RatingRow] = {}
    for reviewer_id, name, rating, n in ratings:
        row = per_reviewer.setdefault(
            reviewer_id,
            RatingRow(key=reviewer_id, label=name, counts={r: 0 for r, _label in RATINGS}),
        )
        row.counts[rating] = row.counts.get(rating, 0) + n
        cycle_counts[rating] = cycle_counts.get(rating, 0) + n

    return CycleAnalytics(
        cycle=cycle,
        packet_count=len(packets),
        coverage=coverage,
        by_level=[by_level[k] for k in sorted(by_level)],
        by_manager=sorted(by_manager.values(), key=lambda r: (r.key is None, r.label, r.key or 0)),
        ratings_cycle=RatingRow(key=None, label="Whole cycle", counts=cycle_counts),
        ratings_by_manager=list(per_reviewer.values()),
        time_in_state=_state_times([(pid, to, at) for pid, _a, to, at, _p, _n in events]),
    )
