"""Imported evidence: the only writer of ServiceNow candidates, their "imported" events and
their suggested links (docs/architecture.md, "How a ServiceNow record becomes evidence").

The sync hands over plain data, one `CandidateData` per (person, work item): who, which
record, a title, a date, the record's snapshot, and the expectation codes and skill names
that its rules suggest. Here that becomes an Evidence row in the inbox (status candidate)
the first time, and a refreshed snapshot every later time; the engineer's own title, text
and links are never touched once the candidate exists.

Plain rows, not model instances (`ladder_tracker.bulk.rows_insert`): at one candidate per
work item this is the sync's largest cost after the work items themselves
(benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import NamedTuple

from django.utils import timezone

from apps.ladders.models import Expectation, Skill
from apps.ladders.selectors import ladder_versions_published
from apps.people.models import Person
from ladder_tracker.bulk import rows_insert
from ladder_tracker.canonical import snapshot_sha256

from .models import Evidence, EvidenceEvent, EvidenceLink

TITLE_CHARS = Evidence._meta.get_field("title").max_length


def title_fit(text: str) -> str:
    """An imported title cut to the column, visibly: a longer one ends in "…" (the full
    short description stays in the snapshot, and the page says it was shortened)."""
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


class SuggestedLink(NamedTuple):
    code: str  # an expectation code of the person's ladder, e.g. "TE-3.2"
    rationale: str


class CandidateData(NamedTuple):
    person_id: int
    work_item_id: int
    title: str
    occurred_on: date
    url: str
    snapshot: dict
    links: tuple[SuggestedLink, ...] = ()
    skills: tuple[str, ...] = ()  # skill names, any case


class ExpectationIndex:
    """Per ladder: expectation ids by code and skill ids by lower-case name, of its current
    published version. Read once, on first use: a run that suggests nothing never reads it."""

    def __init__(self):
        self._expectations: dict[int, dict[str, int]] | None = None
        self._levels: dict[int, int] = {}  # expectation id -> its level's number
        self._skills: dict[int, dict[str, list[int]]] = {}

    def _load(self) -> dict[int, dict[str, int]]:
        if self._expectations is None:
            ladder_of = {v.pk: lid for lid, v in ladder_versions_published().items()}
            expectations: dict[int, dict[str, int]] = {lid: {} for lid in ladder_of.values()}
            self._skills = {lid: {} for lid in ladder_of.values()}
            for pk, code, version_id, level in Expectation.objects.filter(
                version_id__in=ladder_of
            ).values_list("pk", "code", "version_id", "level__number"):
                expectations[ladder_of[version_id]][code] = pk
                self._levels[pk] = level
            for pk, name, version_id in Skill.objects.filter(version_id__in=ladder_of).values_list(
                "pk", "name", "version_id"
            ):
                self._skills[ladder_of[version_id]].setdefault(name.lower(), []).append(pk)
            self._expectations = expectations
        return self._expectations

    def expectation_ids(self, ladder_id: int) -> dict[str, int] | None:
        """{code: expectation id}, or None when the ladder has no published version."""
        return self._load().get(ladder_id)

    def level_of(self, expectation_id: int) -> int | None:
        self._load()
        return self._levels.get(expectation_id)

    def skill_ids(self, ladder_id: int, name: str) -> list[int]:
        self._load()
        return self._skills.get(ladder_id, {}).get(name.lower(), [])


def evidence_pairs(*, work_item_ids: Sequence[int]) -> set[tuple[int, int]]:
    """The (person, work item) pairs that already have evidence, among these work items."""
    if not work_item_ids:
        return set()
    return set(
        Evidence.objects.filter(work_item_id__in=work_item_ids).values_list(
            "person_id", "work_item_id"
        )
    )


def candidates_import(
    *, candidates: Sequence[CandidateData], index: ExpectationIndex | None = None
) -> int:
    """One evidence candidate per (person, work item): create the missing ones, each with an
    "imported" event and the links and skills suggested for it; refresh the snapshot of the
    ones that exist. `index` may be kept across calls (one per sync run). Returns how many
    candidates were new."""
    if not candidates:
        return 0
    now = timezone.now()
    existing = {
        (person_id, wi_id): pk
        for pk, person_id, wi_id in Evidence.objects.filter(
            work_item_id__in={c.work_item_id for c in candidates}
        ).values_list("pk", "person_id", "work_item_id")
    }
    new: list[CandidateData] = []
    refreshed: list[Evidence] = []
    for c in candidates:
        pk = existing.get((c.person_id, c.work_item_id))
        if pk is not None:
            refreshed.append(
                Evidence(
                    pk=pk,
                    snapshot=c.snapshot,
                    snapshot_sha256=snapshot_sha256(c.snapshot),
                    snapshot_updated_at=now,
                )
            )
        else:
            new.append(c)
    if refreshed:
        Evidence.objects.bulk_update(
            refreshed, ["snapshot", "snapshot_sha256", "snapshot_updated_at"]
        )
    if not new:
        return 0
    rows_insert(
        Evidence,
        (
            {
                "person_id": c.person_id,
                "title": title_fit(c.title),
                "occurred_on": c.occurred_on,
                "url": c.url,
                "source": Evidence.Source.SERVICENOW.value,
                "status": Evidence.Status.CANDIDATE.value,
                "work_item_id": c.work_item_id,
                "snapshot": c.snapshot,
                "snapshot_sha256": snapshot_sha256(c.snapshot),
                "snapshot_updated_at": now,
            }
            for c in new
        ),
    )
    ids = {  # (person, work item) is unique among candidates: read the new ids back by it
        (p, w): pk
        for pk, p, w in Evidence.objects.filter(
            work_item_id__in={c.work_item_id for c in new}
        ).values_list("pk", "person_id", "work_item_id")
    }
    new_ids = [ids[(c.person_id, c.work_item_id)] for c in new]
    rows_insert(
        EvidenceEvent,
        ({"evidence_id": pk, "action": EvidenceEvent.Action.IMPORTED.value} for pk in new_ids),
    )
    suggested = [(pk, c) for pk, c in zip(new_ids, new, strict=True) if c.links or c.skills]
    if suggested:
        _suggestions_write(suggested, index or ExpectationIndex())
    return len(new)


def suggestions_for_level(
    found: list[tuple[int, str]], level: int | None, level_of
) -> list[tuple[int, str]]:
    """The suggested (expectation id, rationale) pairs a person at `level` is offered, best
    first: their next level, then the levels above it, then their own level. A level below
    their own is offered only when nothing else fits: a level-2 engineer is not shown a
    level-1 expectation beside a level-3 one (issue 12). Order within a level is the rules'.
    The links are written in this order, and the inbox lists them by id."""
    if level is None:
        return found
    nxt = level + 1

    def rank(pair):
        lvl = level_of(pair[0])
        if lvl is None:
            return 3
        return 0 if lvl == nxt else 1 if lvl > nxt else 2 if lvl == level else 4

    ranked = sorted(found, key=rank)  # stable: the rules' order within a rank
    kept = [p for p in ranked if rank(p) < 4]
    return kept or ranked


def _suggestions_write(suggested: list[tuple[int, CandidateData]], index: ExpectationIndex):
    """Suggested links and skills, resolved against each person's ladder; codes and names
    the ladder does not have are left out."""
    person_ladder = {
        pk: (ladder_id, level)
        for pk, ladder_id, level in Person.objects.filter(
            pk__in={c.person_id for _pk, c in suggested}
        ).values_list("pk", "ladder_id", "level")
    }
    links: list[EvidenceLink] = []
    through = Evidence.skills.through
    skill_rows = []
    for evidence_id, c in suggested:
        ladder_id, level = person_ladder.get(c.person_id, (None, None))
        codes = index.expectation_ids(ladder_id) if ladder_id is not None else None
        if codes is None:
            continue
        found = [(codes[lk.code], lk.rationale) for lk in c.links if lk.code in codes]
        for exp_id, rationale in suggestions_for_level(found, level, index.level_of):
            links.append(
                EvidenceLink(
                    evidence_id=evidence_id,
                    expectation_id=exp_id,
                    rationale=rationale,
                    origin=EvidenceLink.Origin.SUGGESTED,
                )
            )
        skill_ids = {s for name in c.skills for s in index.skill_ids(ladder_id, name)}
        skill_rows += [through(evidence_id=evidence_id, skill_id=s) for s in sorted(skill_ids)]
    EvidenceLink.objects.bulk_create(links, ignore_conflicts=True)
    through.objects.bulk_create(skill_rows, ignore_conflicts=True)
