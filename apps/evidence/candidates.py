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

Each new candidate also gets its ranked `suggestions` (rules first, then the learned model's
or, without one, the similar expectations: apps/evidence/suggestions.py), and
`candidates_suggestions_refresh` recomputes them for every open candidate after a training
(`suggestions_train`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import date
from typing import NamedTuple

from django.db import connections, router
from django.db.models import Q
from django.utils import timezone

from apps.ladders.models import Expectation, Skill
from apps.ladders.selectors import ladder_versions_published
from apps.people.models import Person
from ladder_tracker.bulk import in_values, rows_insert
from ladder_tracker.canonical import snapshot_sha256

from . import suggestions as learned
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
    text: str = ""  # the record's text and fields, as the models read it (work_item_text)
    snapshot_sha256: str | None = None  # when the caller hashed the snapshot already
    # Ranked suggestions the caller computed already (the sync's fetching process, with the
    # same suggester): None computes them here.
    suggestions: list[dict] | None = None


class ExpectationIndex:
    """Per ladder: expectation ids by code and skill ids by lower-case name, of its current
    published version. Read once, on first use: a run that suggests nothing never reads it."""

    def __init__(self):
        self._expectations: dict[int, dict[str, int]] | None = None
        self._levels: dict[int, int] = {}  # expectation id -> its level's number
        self._skills: dict[int, dict[str, list[int]]] = {}
        self._texts: dict[int, dict[str, str]] = {}  # ladder id -> {code: expectation text}
        self._level_by_code: dict[int, dict[str, int]] = {}
        self._suggesters: dict[int, learned.LadderSuggester] = {}

    def _load(self) -> dict[int, dict[str, int]]:
        if self._expectations is None:
            ladder_of = {v.pk: lid for lid, v in ladder_versions_published().items()}
            expectations: dict[int, dict[str, int]] = {lid: {} for lid in ladder_of.values()}
            self._skills = {lid: {} for lid in ladder_of.values()}
            self._texts = {lid: {} for lid in ladder_of.values()}
            self._level_by_code = {lid: {} for lid in ladder_of.values()}
            for pk, code, version_id, level, text in (
                Expectation.objects.filter(version_id__in=ladder_of)
                .order_by("level__number", "position", "pk")
                .values_list("pk", "code", "version_id", "level__number", "text")
            ):
                lid = ladder_of[version_id]
                expectations[lid][code] = pk
                self._levels[pk] = level
                self._texts[lid][code] = text
                self._level_by_code[lid][code] = level
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

    def codes(self, ladder_id: int) -> list[str]:
        """The ladder's expectation codes, by level and position."""
        return list(self._load().get(ladder_id, {}))

    def suggester(self, ladder_id: int) -> learned.LadderSuggester | None:
        """The ladder's suggester: its newest learned model, else similarity. Made once per
        index (one query for the model's version; the model itself is cached per process)."""
        if ladder_id not in self._suggesters:
            self._load()
            if ladder_id not in self._texts:
                return None
            self._suggesters[ladder_id] = learned.LadderSuggester(
                levels=self._level_by_code[ladder_id],
                texts=self._texts[ladder_id],
                learned=learned.learned_model_for(ladder_id),
            )
        return self._suggesters[ladder_id]


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
    *,
    candidates: Sequence[CandidateData],
    index: ExpectationIndex | None = None,
    new_work_item_ids: Collection[int] = (),
) -> int:
    """One evidence candidate per (person, work item): create the missing ones, each with an
    "imported" event and the links and skills suggested for it; refresh the snapshot of the
    ones that exist. `index` may be kept across calls (one per sync run). Returns how many
    candidates were new."""
    if not candidates:
        return 0
    now = timezone.now()
    # Work items the caller has just created (`new_work_item_ids`) have no evidence yet.
    look = {c.work_item_id for c in candidates} - set(new_work_item_ids)
    existing = {(person_id, wi_id): pk for pk, person_id, wi_id in _evidence_keys(look)}
    new: list[CandidateData] = []
    refreshed: list[Evidence] = []
    for c in candidates:
        pk = existing.get((c.person_id, c.work_item_id))
        if pk is not None:
            refreshed.append(
                Evidence(
                    pk=pk,
                    snapshot=c.snapshot,
                    snapshot_sha256=c.snapshot_sha256 or snapshot_sha256(c.snapshot),
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
    index = index or ExpectationIndex()
    people = _people(new)
    todo = [i for i, c in enumerate(new) if c.suggestions is None]
    ranked = [c.suggestions for c in new]
    computed_all = _suggestions_compute([new[i] for i in todo], people, index)
    for i, computed in zip(todo, computed_all, strict=True):
        ranked[i] = computed
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
                "snapshot_sha256": c.snapshot_sha256 or snapshot_sha256(c.snapshot),
                "snapshot_updated_at": now,
                "suggestions": suggested,
            }
            for c, suggested in zip(new, ranked, strict=True)
        ),
    )
    ids = {  # (person, work item) is unique among candidates: read the new ids back by it
        (p, w): pk for pk, p, w in _evidence_keys({c.work_item_id for c in new})
    }
    new_ids = [ids[(c.person_id, c.work_item_id)] for c in new]
    rows_insert(
        EvidenceEvent,
        ({"evidence_id": pk, "action": EvidenceEvent.Action.IMPORTED.value} for pk in new_ids),
    )
    suggested = [(pk, c) for pk, c in zip(new_ids, new, strict=True) if c.links or c.skills]
    if suggested:
        _suggestions_write(suggested, index, people)
    return len(new)


def _evidence_keys(work_item_ids: set[int]) -> list[tuple[int, int, int]]:
    """(id, person id, work item id) of the evidence of these work items: one statement with
    one parameter however many (ladder_tracker.bulk.in_values), on the work item index."""
    if not work_item_ids:
        return []
    connection = connections[router.db_for_read(Evidence)]
    where, params = in_values(connection, "work_item_id", sorted(work_item_ids))
    table = connection.ops.quote_name(Evidence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, person_id, work_item_id FROM {table} WHERE {where}", params)  # noqa: S608
        return cursor.fetchall()


def _people(candidates: Sequence[CandidateData]) -> dict[int, tuple[int, int | None]]:
    """{person id: (ladder id, level)} of these candidates' people."""
    return {
        pk: (ladder_id, level)
        for pk, ladder_id, level in Person.objects.filter(
            pk__in={c.person_id for c in candidates}
        ).values_list("pk", "ladder_id", "level")
    }


def _rule_links(c: CandidateData, codes: dict[str, int], level, index) -> list[tuple[int, str]]:
    """The rules' (expectation id, rationale) pairs for this candidate, in level order."""
    found = [(codes[lk.code], lk.rationale) for lk in c.links if lk.code in codes]
    return suggestions_for_level(found, level, index.level_of)


def suggesters_for(index: ExpectationIndex, ladder_ids) -> dict[int, learned.LadderSuggester]:
    """The suggesters of these ladders that suggest for a candidate with no rule links, as
    `_suggestions_compute` would use them (for the sync's fetching process)."""
    out = {}
    for ladder_id in ladder_ids:
        suggester = index.suggester(ladder_id)
        if suggester is not None and index.expectation_ids(ladder_id) is not None:
            out[ladder_id] = suggester
    return out


def _suggestions_compute(
    new: Sequence[CandidateData], people: dict, index: ExpectationIndex
) -> list[list[dict]]:
    """Each new candidate's ranked suggestions (rules first), batched per ladder."""
    out: list[list[dict]] = [[] for _ in new]
    by_ladder: dict[int, list[int]] = {}
    for i, c in enumerate(new):
        ladder_id, _level = people.get(c.person_id, (None, None))
        if ladder_id is not None:
            by_ladder.setdefault(ladder_id, []).append(i)
    for ladder_id, positions in by_ladder.items():
        suggester = index.suggester(ladder_id)
        codes = index.expectation_ids(ladder_id)
        if suggester is None or codes is None:
            continue
        code_of = {pk: code for code, pk in codes.items()}
        items = []
        for i in positions:
            c = new[i]
            level = people[c.person_id][1]
            rules = tuple((code_of[pk], why) for pk, why in _rule_links(c, codes, level, index))
            items.append(learned.ItemToSuggest(c.person_id, level, c.text, rules))
        for i, ranked in zip(positions, suggester.suggest(items), strict=True):
            out[i] = ranked
    return out


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

    def rank(pair):
        return learned.level_rank(level_of(pair[0]), level)

    ranked = sorted(found, key=rank)  # stable: the rules' order within a rank
    kept = [p for p in ranked if rank(p) < 4]
    return kept or ranked


def _suggestions_write(
    suggested: list[tuple[int, CandidateData]], index: ExpectationIndex, person_ladder: dict
):
    """Suggested links and skills, resolved against each person's ladder; codes and names
    the ladder does not have are left out."""
    links: list[EvidenceLink] = []
    through = Evidence.skills.through
    skill_rows = []
    for evidence_id, c in suggested:
        ladder_id, level = person_ladder.get(c.person_id, (None, None))
        codes = index.expectation_ids(ladder_id) if ladder_id is not None else None
        if codes is None:
            continue
        for exp_id, rationale in _rule_links(c, codes, level, index):
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


# Open candidates are recomputed this many at a time: one read of their records and links,
# one UPDATE batch (bulk_update's CASE grows with the batch; 500 kept each under 0.2 s).
REFRESH_BATCH = 500


def candidates_suggestions_refresh(
    *, ladder_id: int | None = None, index: ExpectationIndex | None = None
) -> int:
    """Recompute the suggestions of every open candidate (status candidate, not deleted) of
    the ladder's people (or everyone's): the rules' suggested links stay first, the learned or
    similar ones after them are the current model's. Returns how many were recomputed."""
    index = index or ExpectationIndex()
    open_q = Q(
        status=Evidence.Status.CANDIDATE,
        deleted_at__isnull=True,
        work_item__isnull=False,
        person__ladder__isnull=False,
    )
    if ladder_id is not None:
        open_q &= Q(person__ladder_id=ladder_id)
    ids = list(Evidence.objects.filter(open_q).order_by("pk").values_list("pk", flat=True))
    done = 0
    for start in range(0, len(ids), REFRESH_BATCH):
        batch = ids[start : start + REFRESH_BATCH]
        rows = list(
            Evidence.objects.filter(pk__in=batch)
            .order_by("pk")
            .values_list(
                "pk",
                "person_id",
                "person__ladder_id",
                "person__level",
                "work_item__table",
                "work_item__raw",
            )
        )
        rules: dict[int, list[tuple[str, str]]] = {}
        for ev_id, code, rationale in (
            EvidenceLink.objects.filter(
                evidence_id__in=batch,
                origin=EvidenceLink.Origin.SUGGESTED,
                expectation__isnull=False,
            )
            .order_by("pk")
            .values_list("evidence_id", "expectation__code", "rationale")
        ):
            rules.setdefault(ev_id, []).append((code, rationale))
        by_ladder: dict[int, list[tuple[int, learned.ItemToSuggest]]] = {}
        for pk, person_id, lid, level, table, raw in rows:
            text = learned.work_item_text(table=table or "", raw=raw or {})
            item = learned.ItemToSuggest(person_id, level, text, tuple(rules.get(pk, ())))
            by_ladder.setdefault(lid, []).append((pk, item))
        updated = []
        for lid, pairs in by_ladder.items():
            suggester = index.suggester(lid)
            if suggester is None:
                continue
            ranked = suggester.suggest([item for _pk, item in pairs])
            updated += [
                Evidence(pk=pk, suggestions=s) for (pk, _), s in zip(pairs, ranked, strict=True)
            ]
        Evidence.objects.bulk_update(updated, ["suggestions"])
        done += len(updated)
    return done


def suggestions_train(*, ladder_id: int | None = None) -> list[learned.TrainingResult]:
    """Train a new suggestion model for each ladder with a published version (or the one
    named), then refresh the suggestions of its open candidates. A ladder with too few
    labels gets no model (its result says why) and keeps similarity, refreshed all the same."""
    index = ExpectationIndex()
    published = ladder_versions_published()
    results = []
    for lid in sorted(published):
        if ladder_id is not None and lid != ladder_id:
            continue
        result = learned.suggestions_train_ladder(ladder_id=lid, codes=index.codes(lid))
        result.refreshed = candidates_suggestions_refresh(ladder_id=lid, index=ExpectationIndex())
        results.append(result)
    return results
