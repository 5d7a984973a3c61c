"""The sync engine: keyset paging from the Table API into work items, people and evidence.

One run reads `BASE ∧ (ts, sys_id) > cursor ∧ ts ≤ upper` page by page, ordered by
(sys_updated_on, sys_id), with no offsets. Each page's upserts, the cursor and the run's
counters commit in one transaction, so a run killed at any point resumes from its last page
and converges: the next run starts `overlap` seconds before the cursor, and an incoming row
older than the stored one (by sys_updated_on, then sys_mod_count) is skipped.

Facts this relies on (DESIGN.md, "ServiceNow sync"): pages may come back short when ACLs
hide rows (X-Total-Count still counts them), may repeat a row, and rows change while we page;
the upper bound fixed at the start keeps a run finite, and edits after it land in the next
run's window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceEvent, EvidenceLink
from apps.ladders.models import Expectation, LadderVersion, Skill
from apps.people.models import Person
from apps.people.services import person_would_cycle_ids
from ladder_tracker.bulk import copy_rows, insert_fields, rows_insert

from .client import (
    AuthorizationError,
    Page,
    ServiceNowClient,
    TransactionCancelledError,
    field_value,
)
from .models import Source, SuggestionRule, SyncCursor, SyncRun, WorkItem
from .query import format_timestamp, id_keyset_query, keyset_query, parse_timestamp

logger = logging.getLogger(__name__)

# Smallest page we shrink to when the instance cancels a transaction for taking too long.
MIN_PAGE_SIZE = 10
WORK_ITEM_FIELDS = (
    "sys_id",
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "category",
    "opened_at",
    "resolved_at",
    "closed_at",
    "sys_created_on",
    "sys_updated_on",
    "sys_mod_count",
)
USER_FIELDS = (
    "sys_id",
    "user_name",
    "email",
    "name",
    "first_name",
    "last_name",
    "title",
    "manager",
    "active",
    "sys_updated_on",
    "sys_mod_count",
)
SNAPSHOT_FIELDS = (
    "number",
    "short_description",
    "description",
    "state",
    "priority",
    "category",
    "opened_at",
    "resolved_at",
    "closed_at",
)
ATTRIBUTION_CHUNK = 2000  # work items per query when attaching newly known people
STATS_AFTER_ROWS = 5000  # PostgreSQL: rows written before a run refreshes the statistics


@dataclass
class Counters:
    rows_seen: int = 0
    created: int = 0
    updated: int = 0
    skipped_stale: int = 0
    deleted: int = 0
    evidence_created: int = 0


# --- paging -------------------------------------------------------------------------------


def iter_keyset_pages(
    client: ServiceNowClient,
    table: str,
    *,
    query_for: Callable[[tuple[datetime, str] | None], str],
    key: Callable[[dict], tuple[datetime, str]],
    fields: list[str],
    page_size: int,
    after: tuple[datetime, str] | None,
    on_note: Callable[[str], None] = lambda _msg: None,
    on_total: Callable[[int | None], None] = lambda _total: None,
) -> Iterator[tuple[list[dict], tuple[datetime, str]]]:
    """Yield the non-empty pages of a keyset query with the furthest key each holds (where a
    cursor may move to once the page is stored), fetching the next page while the caller
    stores the current one.

    The first request asks for X-Total-Count: when everything fits in it we are done after
    one request. An empty page later on may only mean that ACLs hide a whole window of rows,
    so a one-row count probe decides; if rows exist but none is visible we step over them by
    offset and resume keyset paging after the next visible row.
    """
    size = page_size

    def fetch(after_: tuple[datetime, str] | None, offset: int | None, count: bool):
        page = fetch_page(after_, offset, count)
        keys = {key(row) for row in page.rows}
        return page, keys

    def fetch_page(after_: tuple[datetime, str] | None, offset: int | None, count: bool) -> Page:
        nonlocal size
        while True:
            try:
                return client.get_page(
                    table,
                    query=query_for(after_),
                    fields=fields,
                    limit=size,
                    offset=offset,
                    count=count,
                )
            except TransactionCancelledError:
                if size <= MIN_PAGE_SIZE:
                    raise
                size = max(MIN_PAGE_SIZE, size // 2)
                on_note(f"instance cancelled a page as too slow; page size now {size}")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sn-prefetch") as pool:
        offset: int | None = None
        first = True
        # Rows the last count said lie beyond the cursor, and distinct rows read since then:
        # once we have read them all there is nothing left to ask for.
        expected: int | None = None
        seen = 0
        future = pool.submit(fetch, after, offset, True)
        while future is not None:
            page, keys = future.result()
            future = None
            if first:
                on_total(page.total_count)
                expected = page.total_count
            if page.rows:
                last = max(keys)
                after = last if after is None else max(after, last)
                seen += len(keys)
                offset, first = None, False
                if expected is None or seen < expected:
                    future = pool.submit(fetch, after, None, False)
                yield page.rows, last
                continue
            expected = page.total_count if first else fetch_page(after, None, True).total_count
            seen, first = 0, False
            if not expected:
                return
            offset = (offset or 0) + size
            if offset >= expected:
                return
            on_note(f"{offset} rows in a row are hidden from this user; stepping over them")
            future = pool.submit(fetch, after, offset, False)


# --- row helpers --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _parse_ts(raw: str) -> datetime | None:
    # Each row's sys_updated_on is read several times (keys, newest copy, cursor): a small
    # cache serves the repeats. Small, so memory stays flat however many rows a run reads.
    return parse_timestamp(raw) if raw else None


def _ts(value) -> datetime | None:
    return _parse_ts(field_value(value))


def _int(value, default: int = 0) -> int:
    try:
        return int(field_value(value) or default)
    except ValueError:
        return default


def _row_key(ts_field: str) -> Callable[[dict], tuple[datetime, str]]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def key(row: dict) -> tuple[datetime, str]:
        return (_ts(row.get(ts_field)) or epoch, field_value(row.get("sys_id")))

    return key


def _newest_per_sys_id(rows: list[dict]) -> dict[str, tuple[datetime, int, dict]]:
    """Duplicates inside a page collapse to the newest copy of each record."""
    newest: dict[str, tuple[datetime, int, dict]] = {}
    for row in rows:
        sys_id = field_value(row.get("sys_id"))
        ts = _ts(row.get("sys_updated_on"))
        if not sys_id or ts is None:
            continue
        version = (ts, _int(row.get("sys_mod_count")), row)
        held = newest.get(sys_id)
        if held is None or version[:2] > held[:2]:
            newest[sys_id] = version
    return newest


@dataclass
class PreparedPage:
    """A page made ready to store by a writer's `prepare` (no database needed)."""

    count: int  # rows as they came, repeats included
    newest: dict[str, tuple]  # sys_id -> (sys_updated_on, sys_mod_count, writer's data)


# --- work items and evidence --------------------------------------------------------------


@dataclass
class LadderIndex:
    """Per ladder: expectation ids by code and skill ids by name, of its published version."""

    expectations: dict[int, dict[str, int]]
    skills: dict[int, dict[str, list[int]]]

    @classmethod
    def load(cls) -> LadderIndex:
        published = {}
        for version in LadderVersion.objects.filter(status=LadderVersion.Status.PUBLISHED):
            held = published.get(version.ladder_id)
            if held is None or version.number > held.number:
                published[version.ladder_id] = version
        by_version = {v.pk: ladder_id for ladder_id, v in published.items()}
        expectations: dict[int, dict[str, int]] = {lid: {} for lid in published}
        for pk, code, version_id in Expectation.objects.filter(
            version_id__in=by_version
        ).values_list("pk", "code", "version_id"):
            expectations[by_version[version_id]][code] = pk
        skills: dict[int, dict[str, list[int]]] = {lid: {} for lid in published}
        for pk, name, version_id in Skill.objects.filter(version_id__in=by_version).values_list(
            "pk", "name", "version_id"
        ):
            skills[by_version[version_id]].setdefault(name.lower(), []).append(pk)
        return cls(expectations=expectations, skills=skills)


def _rule_matches(rule: SuggestionRule, raw: dict) -> bool:
    for cond in rule.conditions:
        actual = str(raw.get(cond.get("field", ""), ""))
        op, expected = cond.get("op", "="), cond.get("value", "")
        if op == "=" and actual != str(expected):
            return False
        if op == "!=" and actual == str(expected):
            return False
        if op == "contains" and str(expected).lower() not in actual.lower():
            return False
        if op == "startswith" and not actual.lower().startswith(str(expected).lower()):
            return False
        if op == "in" and actual not in [str(v) for v in expected]:
            return False
    return True


class WorkItemUpsert:
    """One `INSERT … ON CONFLICT (connection, table, sys_id) DO UPDATE` per page, executed
    with executemany on rows of ready-made database values.

    The ORM's bulk_create(update_conflicts=True) costs ~15x the fetch per row (it prepares
    every value through its field and recompiles the statement per batch of 47 rows on
    SQLite; benchmarks/sync.py). Here values are adapted once by the backend's own
    adapters, timestamps through a cache (a page shares a handful of seconds), and the
    statement is built once per run. Works on SQLite (≥ 3.24) and PostgreSQL alike."""

    columns = (
        "connection_id",
        "source_id",
        "table",
        "sys_id",
        "number",
        "short_description",
        "state",
        "priority",
        "opened_at",
        "resolved_at",
        "closed_at",
        "person_id",
        "attributions",
        "sys_updated_on",
        "sys_mod_count",
        "raw",
        "deleted_at",
        "deleted_reason",
        "first_seen_at",
        "last_synced_at",
    )
    conflict = ("connection_id", "table", "sys_id")
    keep = ("first_seen_at",)  # set when the row is first inserted, never after
    person_index = columns.index("person_id")

    def __init__(self):
        model_columns = tuple(f.attname for f in insert_fields(WorkItem))
        if model_columns != self.columns:  # prepare() builds its rows in this order
            raise ImproperlyConfigured(
                f"WorkItemUpsert.columns {self.columns} != WorkItem's {model_columns}"
            )
        connection = connections[router.db_for_write(WorkItem)]
        ops = connection.ops
        q = ops.quote_name
        updates = [c for c in self.columns if c not in self.conflict and c not in self.keep]
        # Names are this class's constants, quoted by the backend; values are parameters.
        table = q(WorkItem._meta.db_table)
        names = ", ".join(q(c) for c in self.columns)
        marks = ", ".join(["%s"] * len(self.columns))
        conflict = ", ".join(q(c) for c in self.conflict)
        sets = ", ".join(f"{q(c)} = EXCLUDED.{q(c)}" for c in updates)
        self.sql = f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT ({conflict}) DO UPDATE SET {sets}"  # noqa: S608, E501
        # PostgreSQL: executemany would parse and plan one INSERT per row; COPY into a
        # temporary table and one INSERT … SELECT per page cost a fraction of that. The
        # table lives as long as the database session, so pages do not churn the catalogs;
        # ON COMMIT DELETE ROWS truncates it at each commit (a DELETE alone would leave dead
        # rows that no autovacuum ever removes from a temporary table, and every later page
        # would scan them), and the DELETE empties it for a second page in one transaction.
        # Needs the TEMP privilege, which PostgreSQL grants to every role unless revoked.
        stage = q("sn_workitem_stage")
        self.pg_statements = (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {names} FROM {table} WITH NO DATA",  # noqa: S608, E501
            f"COPY {stage} ({names}) FROM STDIN",
            f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} ON CONFLICT ({conflict}) DO UPDATE SET {sets}",  # noqa: S608, E501
            f"DELETE FROM {stage}",  # noqa: S608
        )
        self.connection = connection
        # The candidates' table grows with the work items and is looked up the same way.
        self.analyze_sql = f"ANALYZE {table}, {q(Evidence._meta.db_table)}"
        self.stats_rows: float | None = None  # PostgreSQL: rows its statistics describe
        self.written_since_stats = 0
        self.adapt_datetime = ops.adapt_datetimefield_value

        # SQLite keeps an aware datetime as its naive UTC text, which is the Table API's own
        # format: there the raw text is the database value once it parsed and is exactly
        # 19 characters (parse_timestamp strips; padded text must not be stored as is).
        probe = "2001-02-03 04:05:06"
        as_text = ops.adapt_datetimefield_value(_parse_ts(probe)) == probe

        @lru_cache(maxsize=4096)
        def adapt_timestamp(raw: str):
            if not raw:
                return None
            parsed = _parse_ts(raw)  # raises on anything but YYYY-MM-DD HH:MM:SS
            if as_text and len(raw) == 19:
                return raw
            return ops.adapt_datetimefield_value(parsed)

        self.adapt_timestamp = adapt_timestamp
        self.adapt_json = lambda value: ops.adapt_json_value(value, None)

    def execute(self, values: list[tuple]) -> None:
        connection = self.connection
        # A savepoint when the page's transaction is open: a failure leaves nothing behind
        # (not even the temporary table), and the page's transaction decides the rest.
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            if connection.vendor != "postgresql":
                cursor.executemany(self.sql, values)
                return
            create, copy_sql, insert, empty = self.pg_statements
            cursor.execute(create)
            copy_rows(connection, cursor, copy_sql, values)
            cursor.execute(insert)
            cursor.execute(empty)
            self._keep_statistics(cursor, len(values))

    def _keep_statistics(self, cursor, written: int) -> None:
        """ANALYZE the table once this run has written as many rows as its statistics
        describe (and at least STATS_AFTER_ROWS). Without statistics, as after a first
        bulk load into a fresh database, the planner takes `sys_id IN (…1000 ids…)` for a
        filter over every row of the (connection, table) prefix instead of 1000 index
        probes, and each page's stale check gets slower as the table grows (~70 ms a page
        at 100k rows against ~9 ms; autovacuum would notice only minutes later)."""
        if self.stats_rows is None:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                [WorkItem._meta.db_table],
            )
            self.stats_rows = max(0.0, float(cursor.fetchone()[0]))  # -1: never analyzed
        self.written_since_stats += written
        if self.written_since_stats >= max(STATS_AFTER_ROWS, self.stats_rows):
            cursor.execute(self.analyze_sql)
            self.stats_rows += self.written_since_stats
            self.written_since_stats = 0


class WorkItemWriter:
    """Stores pages of a work-item source; one instance per run (holds lookups it reuses)."""

    def __init__(self, *, source: Source, counters: Counters):
        self.source = source
        self.counters = counters
        self.fields = sorted(
            set(WORK_ITEM_FIELDS)
            | set(source.fields or [])
            | set(self.attribution_fields)
            | {c.get("field", "") for r in self.rules for c in r.conditions} - {""}
        )
        self.ladders = LadderIndex.load()
        self.upsert = WorkItemUpsert()

    @property
    def attribution_fields(self) -> list[str]:
        return list(self.source.attribution_fields or ["assigned_to"])

    @property
    def rules(self) -> list[SuggestionRule]:
        if not hasattr(self, "_rules"):
            self._rules = list(SuggestionRule.objects.filter(enabled=True, table=self.source.table))
        return self._rules

    def prepare(self, rows: list[dict]) -> PreparedPage:
        """Everything about a page that needs no database: values ready for the upsert."""
        upsert = self.upsert
        db_ts, db_json = upsert.adapt_timestamp, upsert.adapt_json
        now = upsert.adapt_datetime(timezone.now())
        source = self.source
        connection_id, source_id, table = source.connection_id, source.pk, source.table
        fields, attribution_fields = self.fields, self.attribution_fields
        newest = _newest_per_sys_id(rows)
        for sys_id, (ts, mod, row) in newest.items():
            raw = {f: field_value(row[f]) for f in fields if f in row}
            attributions = {f: raw[f] for f in attribution_fields if raw.get(f)}
            values = [
                connection_id,
                source_id,
                table,
                sys_id,
                raw.get("number", "")[:40],
                raw.get("short_description", ""),
                raw.get("state", "")[:40],
                raw.get("priority", "")[:40],
                db_ts(raw.get("opened_at", "")),
                db_ts(raw.get("resolved_at", "")),
                db_ts(raw.get("closed_at", "")),
                None,
                db_json(attributions),  # person_id: set by store, which knows people
                db_ts(raw["sys_updated_on"]),
                mod,
                db_json(raw),
                None,
                "",
                now,
                now,
            ]
            newest[sys_id] = (ts, mod, (raw, attributions, values))
        return PreparedPage(count=len(rows), newest=newest)

    def store(self, page: PreparedPage) -> None:
        source = self.source
        newest = page.newest
        self.counters.rows_seen += page.count
        existing = {
            sys_id: (ts, mod, deleted)
            for sys_id, ts, mod, deleted in WorkItem.objects.filter(
                connection_id=source.connection_id, table=source.table, sys_id__in=list(newest)
            ).values_list("sys_id", "sys_updated_on", "sys_mod_count", "deleted_at")
        }
        wanted = {
            v for _t, _m, (_r, attributions, _v) in newest.values() for v in attributions.values()
        }
        people = self._people_by_sys_id(wanted)
        connection_id, table = source.connection_id, source.table
        values: list[list] = []
        owned: list[WorkItem] = []  # rows some known person owes a candidate for
        for sys_id, (ts, mod, (raw, attributions, row_values)) in newest.items():
            held = existing.get(sys_id)
            if held is not None and (ts, mod) <= held[:2] and held[2] is None:
                self.counters.skipped_stale += 1
                continue
            values.append(row_values)
            owners = [people[v] for v in attributions.values() if v in people]
            if owners:
                row_values[self.upsert.person_index] = owners[0]
                owned.append(
                    WorkItem(
                        connection=source.connection,  # record_url needs it; no query per row
                        source=source,
                        table=table,
                        sys_id=sys_id,
                        number=raw.get("number", "")[:40],
                        short_description=raw.get("short_description", ""),
                        opened_at=_ts(raw.get("opened_at")),
                        resolved_at=_ts(raw.get("resolved_at")),
                        closed_at=_ts(raw.get("closed_at")),
                        person_id=owners[0],
                        attributions=attributions,
                        sys_updated_on=ts,
                        sys_mod_count=mod,
                        raw=raw,
                    )
                )
            if held:
                self.counters.updated += 1
            else:
                self.counters.created += 1
        if not values:
            return
        self.upsert.execute(values)
        if not owned:
            return
        ids = dict(
            WorkItem.objects.filter(
                connection_id=connection_id, table=table, sys_id__in=[w.sys_id for w in owned]
            ).values_list("sys_id", "pk")
        )
        for work_item in owned:
            work_item.pk = ids[work_item.sys_id]
        self.counters.evidence_created += evidence_sync_for_work_items(
            work_items=owned, people=people, ladders=self.ladders, rules=self.rules
        )

    @staticmethod
    def _people_by_sys_id(wanted: set[str]) -> dict[str, int]:
        wanted = wanted - {""}
        if not wanted:
            return {}
        return dict(
            Person.objects.filter(servicenow_sys_id__in=wanted).values_list(
                "servicenow_sys_id", "pk"
            )
        )


def _snapshot(work_item: WorkItem) -> dict:
    snap = {f: work_item.raw.get(f, "") for f in SNAPSHOT_FIELDS}
    snap.update(
        table=work_item.table,
        sys_id=work_item.sys_id,
        sys_updated_on=format_timestamp(work_item.sys_updated_on),
        url=work_item.record_url,
    )
    return snap


def evidence_sync_for_work_items(
    *,
    work_items: list[WorkItem],
    people: dict[str, int],
    ladders: LadderIndex,
    rules: list[SuggestionRule],
) -> int:
    """One evidence candidate per attributed person and work item; refresh the snapshot of
    the ones that exist (never the engineer's own title or text). Returns how many were new."""
    if not work_items or not people:
        return 0
    now = timezone.now()
    existing = {
        (person_id, wi_id): pk
        for pk, person_id, wi_id in Evidence.objects.filter(
            work_item_id__in=[w.pk for w in work_items]
        ).values_list("pk", "person_id", "work_item_id")
    }
    person_ladder = dict(
        Person.objects.filter(pk__in=set(people.values())).values_list("pk", "ladder_id")
    )
    new: list[dict] = []  # rows for rows_insert
    refreshed: list[Evidence] = []
    for wi in work_items:
        owners = {people[s] for s in wi.attributions.values() if s in people}
        if not owners:
            continue
        snapshot = _snapshot(wi)
        for person_id in owners:
            pk = existing.get((person_id, wi.pk))
            if pk is not None:
                refreshed.append(Evidence(pk=pk, snapshot=snapshot, snapshot_updated_at=now))
                continue
            occurred = wi.resolved_at or wi.closed_at or wi.opened_at or wi.sys_updated_on
            title = f"{wi.number}: {wi.short_description}" if wi.number else wi.short_description
            new.append(
                {
                    "person_id": person_id,
                    "title": (title or wi.sys_id)[:300],
                    "occurred_on": occurred.date(),
                    "url": snapshot["url"],
                    "source": Evidence.Source.SERVICENOW.value,
                    "status": Evidence.Status.CANDIDATE.value,
                    "work_item_id": wi.pk,
                    "snapshot": snapshot,
                    "snapshot_updated_at": now,
                }
            )
    if refreshed:
        Evidence.objects.bulk_update(refreshed, ["snapshot", "snapshot_updated_at"])
    if not new:
        return 0
    # Plain rows, not model instances: at one candidate per work item this is the sync's
    # largest cost after the work items themselves (benchmarks/README.md).
    rows_insert(Evidence, new)
    ids = {  # (person, work item) is unique among candidates: read the new ids back by it
        (p, w): pk
        for pk, p, w in Evidence.objects.filter(
            work_item_id__in={row["work_item_id"] for row in new}
        ).values_list("pk", "person_id", "work_item_id")
    }
    created = [
        NewCandidate(ids[(r["person_id"], r["work_item_id"])], r["person_id"], r["work_item_id"])
        for r in new
    ]
    rows_insert(
        EvidenceEvent,
        ({"evidence_id": c.pk, "action": EvidenceEvent.Action.IMPORTED.value} for c in created),
    )
    _suggest_links(created, {w.pk: w for w in work_items}, person_ladder, ladders, rules)
    return len(created)


class NewCandidate(NamedTuple):
    pk: int
    person_id: int
    work_item_id: int


def _suggest_links(evidence, work_items, person_ladder, ladders: LadderIndex, rules) -> None:
    if not rules:
        return
    links: list[EvidenceLink] = []
    skill_rows = []
    through = Evidence.skills.through
    for ev in evidence:
        ladder_id = person_ladder.get(ev.person_id)
        if ladder_id is None or ladder_id not in ladders.expectations:
            continue
        seen_codes, seen_skills = set(), set()
        raw = work_items[ev.work_item_id].raw
        for rule in rules:
            if not _rule_matches(rule, raw):
                continue
            for code in rule.expectation_codes:
                exp_id = ladders.expectations[ladder_id].get(code)
                if exp_id and code not in seen_codes:
                    seen_codes.add(code)
                    links.append(
                        EvidenceLink(
                            evidence_id=ev.pk,
                            expectation_id=exp_id,
                            rationale=rule.rationale or f"Suggested by rule {rule.name!r}",
                            origin=EvidenceLink.Origin.SUGGESTED,
                        )
                    )
            for name in rule.skills:
                for skill_id in ladders.skills[ladder_id].get(name.lower(), []):
                    if skill_id not in seen_skills:
                        seen_skills.add(skill_id)
                        skill_rows.append(through(evidence_id=ev.pk, skill_id=skill_id))
    EvidenceLink.objects.bulk_create(links, ignore_conflicts=True)
    through.objects.bulk_create(skill_rows, ignore_conflicts=True)


def work_items_attach_people(*, connection_id: int, table: str | None = None) -> int:
    """Create the candidates a work item owes to people who became known after it synced
    (the users source ran later). Returns how many evidence rows were created."""
    people = dict(
        Person.objects.exclude(servicenow_sys_id="").values_list("servicenow_sys_id", "pk")
    )
    if not people:
        return 0
    ladders = LadderIndex.load()
    created = 0
    qs = (
        WorkItem.objects.filter(connection_id=connection_id)
        .exclude(attributions={})
        .select_related("connection")
    )
    if table:
        qs = qs.filter(table=table)
    rules_by_table: dict[str, list[SuggestionRule]] = {}  # read once per call, not per chunk
    last_pk = 0
    while True:
        chunk = list(qs.filter(pk__gt=last_pk).order_by("pk")[:ATTRIBUTION_CHUNK])
        if not chunk:
            return created
        last_pk = chunk[-1].pk
        owed = [w for w in chunk if any(s in people for s in w.attributions.values())]
        have = set(
            Evidence.objects.filter(work_item__in=owed).values_list("person_id", "work_item_id")
        )
        todo = [
            w
            for w in owed
            if any((people[s], w.pk) not in have for s in w.attributions.values() if s in people)
        ]
        if not todo:
            continue
        with transaction.atomic():
            by_primary: dict[int, list[int]] = {}  # one UPDATE per person, not per item
            for w in todo:
                primary = next(people[s] for s in w.attributions.values() if s in people)
                if w.person_id != primary:
                    by_primary.setdefault(primary, []).append(w.pk)
            for primary, pks in by_primary.items():
                WorkItem.objects.filter(pk__in=pks).update(person_id=primary)
            for t in sorted({w.table for w in todo}):
                if t not in rules_by_table:
                    rules_by_table[t] = list(SuggestionRule.objects.filter(enabled=True, table=t))
                created += evidence_sync_for_work_items(
                    work_items=[w for w in todo if w.table == t],
                    people=people,
                    ladders=ladders,
                    rules=rules_by_table[t],
                )


# --- users --------------------------------------------------------------------------------


class UserWriter:
    """Stores pages of sys_user: people matched by sys_id, else by email (any case)."""

    fields = list(USER_FIELDS)

    def __init__(self, *, source: Source, counters: Counters):
        self.source = source
        self.counters = counters

    def prepare(self, rows: list[dict]) -> PreparedPage:
        return PreparedPage(count=len(rows), newest=_newest_per_sys_id(rows))

    def store(self, page: PreparedPage) -> None:
        newest = page.newest
        self.counters.rows_seen += page.count
        by_sys_id = {
            p.servicenow_sys_id: p
            for p in Person.objects.filter(servicenow_sys_id__in=list(newest))
        }
        emails = {
            field_value(row.get("email")).strip().lower()
            for sys_id, (_t, _m, row) in newest.items()
            if sys_id not in by_sys_id
        } - {""}
        by_email = {
            p.email_lower: p
            for p in Person.objects.annotate(email_lower=Lower("email")).filter(
                email_lower__in=emails
            )
        }
        create, update = [], []
        for sys_id, (ts, mod, row) in newest.items():
            email = field_value(row.get("email")).strip()
            person = by_sys_id.get(sys_id) or by_email.get(email.lower())
            if (
                person is not None
                and person.servicenow_updated_on is not None
                and ((ts, mod) <= (person.servicenow_updated_on, person.servicenow_mod_count or 0))
            ):
                self.counters.skipped_stale += 1
                continue
            name = (
                field_value(row.get("name"))
                or " ".join(
                    x
                    for x in (field_value(row.get("first_name")), field_value(row.get("last_name")))
                    if x
                )
                or field_value(row.get("user_name"))
                or email
            )
            target = person or Person()
            target.servicenow_sys_id = sys_id
            target.servicenow_updated_on = ts
            target.servicenow_mod_count = mod
            target.servicenow_manager_sys_id = field_value(row.get("manager"))
            target.is_active = field_value(row.get("active")).lower() != "false"
            if not target.name:
                target.name = name[:200]
            if not target.email:
                target.email = email
            if not target.title:
                target.title = field_value(row.get("title"))[:200]
            if person is None:
                create.append(target)
                by_email[email.lower()] = target  # a second row with this email merges
                self.counters.created += 1
            elif target not in update:
                update.append(target)
                self.counters.updated += 1
        Person.objects.bulk_create([p for p in create if p.pk is None])
        if update:
            Person.objects.bulk_update(
                update,
                [
                    "servicenow_sys_id",
                    "servicenow_updated_on",
                    "servicenow_mod_count",
                    "servicenow_manager_sys_id",
                    "is_active",
                    "name",
                    "email",
                    "title",
                ],
            )

    def finish(self) -> None:
        people_managers_resolve()


def people_managers_resolve() -> int:
    """Point each person's manager at the person ServiceNow names, unless that makes a cycle
    (the chart keeps its previous manager then). In memory: one read, one bulk write."""
    rows = list(
        Person.objects.values_list(
            "pk", "manager_id", "servicenow_sys_id", "servicenow_manager_sys_id"
        )
    )
    by_sys_id = {sys_id: pk for pk, _m, sys_id, _ms in rows if sys_id}
    managers = {pk: manager_id for pk, manager_id, _s, _ms in rows}
    changed = []
    for pk, manager_id, _sys_id, manager_sys_id in rows:
        if not manager_sys_id:
            continue
        wanted = by_sys_id.get(manager_sys_id)
        if wanted is None or wanted == manager_id:
            continue
        if person_would_cycle_ids(person_id=pk, manager_id=wanted, managers=managers):
            logger.warning("person %s: manager %s would make a cycle; kept", pk, wanted)
            continue
        managers[pk] = wanted
        changed.append(Person(pk=pk, manager_id=wanted))
    Person.objects.bulk_update(changed, ["manager"])
    return len(changed)


# --- runs ---------------------------------------------------------------------------------


class RunContext:
    """Progress written per page: counters, requests, heartbeat, notes."""

    def __init__(self, run: SyncRun, client: ServiceNowClient, counters: Counters, on_progress):
        self.on_progress = on_progress
        self.run = run
        self.client = client
        self.counters = counters
        self.requests_before = client.request_count
        self.requests_base = run.requests  # from earlier attempts of this run

    def note(self, message: str) -> None:
        logger.warning("sync run %s: %s", self.run.pk, message)
        stamp = timezone.now().strftime("%H:%M:%S")
        self.run.log = (self.run.log + f"{stamp} {message}\n")[-20000:]

    def total(self, total: int | None) -> None:
        if total is not None and self.run.total_estimate is None:
            self.run.total_estimate = total

    def save_progress(self) -> None:
        run, c = self.run, self.counters
        run.pages += 1
        run.requests = self.run_requests()
        run.rows_seen, run.created, run.updated = c.rows_seen, c.created, c.updated
        run.skipped_stale, run.deleted, run.evidence_created = (
            c.skipped_stale,
            c.deleted,
            c.evidence_created,
        )
        run.heartbeat_at = timezone.now()
        run.save(
            update_fields=[
                "pages",
                "requests",
                "rows_seen",
                "created",
                "updated",
                "skipped_stale",
                "deleted",
                "evidence_created",
                "heartbeat_at",
                "total_estimate",
                "log",
            ]
        )
        if self.on_progress is not None:
            self.on_progress(run)

    def run_requests(self) -> int:
        return self.requests_base + (self.client.request_count - self.requests_before)


def _sync_rows(ctx: RunContext, source: Source, cursor: SyncCursor, writer, *, full: bool):
    run = ctx.run
    overlap = timedelta(seconds=source.overlap_seconds)
    after = None
    if not full and cursor.hwm_ts is not None:
        after = (cursor.hwm_ts - overlap, "")
    for rows, last in iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: keyset_query(base=source.query, after=a, upper=run.upper_bound),
        key=_row_key("sys_updated_on"),
        fields=writer.fields,
        page_size=source.connection.page_size,
        after=after,
        on_note=ctx.note,
        on_total=ctx.total,
    ):
        page = writer.prepare(rows)
        with transaction.atomic():
            writer.store(page)
            # Moving the cursor back is safe (we re-read); moving it past unseen rows is not.
            # Within a run rows come in order, so `last` is the furthest point fully read.
            if full or cursor.hwm_ts is None or last > (cursor.hwm_ts, cursor.hwm_sys_id):
                cursor.hwm_ts, cursor.hwm_sys_id = last
                cursor.save(update_fields=["hwm_ts", "hwm_sys_id", "updated_at"])
            ctx.save_progress()


def _sync_deletes(ctx: RunContext, source: Source, cursor: SyncCursor) -> None:
    run = ctx.run
    overlap = timedelta(seconds=source.overlap_seconds)
    after = (cursor.delete_hwm_ts - overlap, "")
    base = f"tablename={source.table}"
    try:
        for rows, last in iter_keyset_pages(
            ctx.client,
            "sys_audit_delete",
            query_for=lambda a: keyset_query(
                base=base, after=a, upper=run.upper_bound, ts_field="sys_created_on"
            ),
            key=_row_key("sys_created_on"),
            fields=["sys_id", "documentkey", "tablename", "sys_created_on"],
            page_size=source.connection.page_size,
            after=after,
            on_note=ctx.note,
        ):
            deleted_on = {}
            for row in rows:
                deleted_on[field_value(row.get("documentkey"))] = _ts(row.get("sys_created_on"))
            by_moment: dict[datetime | None, list[str]] = {}  # one UPDATE per moment, not row
            for sys_id, when in deleted_on.items():
                by_moment.setdefault(when, []).append(sys_id)
            with transaction.atomic():
                for when, sys_ids in by_moment.items():
                    ctx.counters.deleted += WorkItem.objects.filter(
                        connection_id=source.connection_id,
                        table=source.table,
                        sys_id__in=sys_ids,
                        deleted_at__isnull=True,
                    ).update(deleted_at=when or timezone.now(), deleted_reason="audit_delete")
                if last > (cursor.delete_hwm_ts, cursor.delete_hwm_sys_id):
                    cursor.delete_hwm_ts, cursor.delete_hwm_sys_id = last
                    cursor.save(update_fields=["delete_hwm_ts", "delete_hwm_sys_id", "updated_at"])
                ctx.save_progress()
    except AuthorizationError:
        ctx.note("no read access to sys_audit_delete: deletes come from reconcile runs only")


def _reconcile(ctx: RunContext, source: Source) -> None:
    remote: set[str] = set()
    for rows, _last in iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: id_keyset_query(base=source.query, after_sys_id=a[1] if a else None),
        key=lambda r: (datetime.min.replace(tzinfo=UTC), field_value(r.get("sys_id"))),
        fields=["sys_id"],
        page_size=source.connection.page_size,
        after=None,
        on_note=ctx.note,
        on_total=ctx.total,
    ):
        remote.update(field_value(r.get("sys_id")) for r in rows)
        ctx.counters.rows_seen += len(rows)
        with transaction.atomic():
            ctx.save_progress()
    local = WorkItem.objects.filter(
        connection_id=source.connection_id, table=source.table, deleted_at__isnull=True
    )
    gone = [s for s in local.values_list("sys_id", flat=True).iterator() if s not in remote]
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(gone), 500):
            ctx.counters.deleted += local.filter(sys_id__in=gone[start : start + 500]).update(
                deleted_at=now, deleted_reason="reconcile"
            )
        ctx.save_progress()


def sync_run_start(*, run_id: int, stale_after: timedelta) -> SyncRun | None:
    """Claim a queued run (or a running one whose worker died). None: nothing to do."""
    with transaction.atomic():
        run = (
            SyncRun.objects.select_for_update().select_related("source__connection").get(pk=run_id)
        )
        now = timezone.now()
        if run.status not in SyncRun.ACTIVE:
            return None
        if (
            run.status == SyncRun.Status.RUNNING
            and run.heartbeat_at
            and (now - run.heartbeat_at < stale_after)
        ):
            return None  # another worker is on it (a redelivered duplicate of the task)
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.upper_bound = now.replace(microsecond=0)
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "heartbeat_at", "upper_bound", "attempts"])
        cursor, _ = SyncCursor.objects.get_or_create(source=run.source)
        if cursor.delete_hwm_ts is None:
            # Deletes older than our first look cannot concern rows we hold.
            cursor.delete_hwm_ts = run.upper_bound
            cursor.save(update_fields=["delete_hwm_ts", "updated_at"])
    return run


def sync_run_execute(
    *,
    run: SyncRun,
    client: ServiceNowClient,
    on_progress: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    """Do the work of a claimed run. Remote errors propagate (the task decides to retry)."""
    source = run.source
    counters = Counters(
        rows_seen=run.rows_seen,
        created=run.created,
        updated=run.updated,
        skipped_stale=run.skipped_stale,
        deleted=run.deleted,
        evidence_created=run.evidence_created,
    )
    ctx = RunContext(run, client, counters, on_progress)
    cursor = SyncCursor.objects.get(source=source)
    if run.mode == SyncRun.Mode.RECONCILE:
        _reconcile(ctx, source)
    elif source.kind == Source.Kind.USERS:
        writer = UserWriter(source=source, counters=counters)
        _sync_rows(ctx, source, cursor, writer, full=run.mode == SyncRun.Mode.FULL)
        writer.finish()
        counters.evidence_created += work_items_attach_people(connection_id=source.connection_id)
    else:
        writer = WorkItemWriter(source=source, counters=counters)
        _sync_rows(ctx, source, cursor, writer, full=run.mode == SyncRun.Mode.FULL)
        if source.track_deletes:
            _sync_deletes(ctx, source, cursor)
    with transaction.atomic():
        ctx.save_progress()
        run.pages -= 1  # the closing save is not a page
        run.status = SyncRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.error = ""
        run.save(update_fields=["pages", "status", "finished_at", "error"])
    logger.info(
        "sync run %s done: %s rows, %s new, %s changed, %s stale, %s deleted, %s requests",
        run.pk,
        counters.rows_seen,
        counters.created,
        counters.updated,
        counters.skipped_stale,
        counters.deleted,
        run.requests,
    )
    return run


def sync_run_fail(*, run_id: int, error: str, retrying: bool) -> None:
    """Record a failure; a run that will be retried goes back to the queue."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        if retrying:
            run.status = SyncRun.Status.QUEUED
            stamp = timezone.now().strftime("%H:%M:%S")
            run.log = (run.log + f"{stamp} attempt {run.attempts} failed, retrying: {error}\n")[
                -20000:
            ]
        else:
            run.status = SyncRun.Status.FAILED
            run.finished_at = timezone.now()
            run.error = error[:5000]
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["status", "finished_at", "error", "log", "heartbeat_at"])
    logger.warning("sync run %s %s: %s", run_id, "will retry" if retrying else "failed", error)
