"""Work items: pages of a work-item source stored as WorkItem rows (one upsert per page),
and the evidence candidates their owners are owed, handed to `apps.evidence.candidates`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, router
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.evidence.candidates import (
    CandidateData,
    ExpectationIndex,
    candidates_import,
    suggesters_for,
)
from apps.evidence.models import Evidence  # read only: its statistics (written by candidates)
from apps.people.selectors import people_by_servicenow_sys_id, person_ids_by_servicenow_sys_id
from ladder_tracker.bulk import (
    TableStatistics,
    in_values,
    insert_fields,
    rows_upsert,
    values_insert,
)

from ..client import ServiceNowClient
from ..models import Source, SuggestionRule, WorkItem
from .choices import Labels, choice_labels
from .fields import DEFAULT_ATTRIBUTION_FIELDS, DISPLAY_FIELDS, WORK_ITEM_FIELDS
from .paging import Newest, PreparedPage, parse_ts
from .prepare import (  # noqa: F401 (work_item_snapshot, work_item_occurred: imported from here)
    CandidateBase,
    Preparer,
    PrepareSpec,
    candidate_base,
    record_candidate_base,
    work_item_occurred,
    work_item_snapshot,
)
from .progress import Counters
from .rules import rule_fields, rules_enabled, rules_suggest

STATS_AFTER_ROWS = 5000  # PostgreSQL: rows written before a run refreshes the statistics
# The order prepare() builds each row's values in: WorkItem's insert columns (checked).
COLUMNS = (
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
PERSON_COLUMN = COLUMNS.index("person_id")
CONFLICT = ("connection_id", "table", "sys_id")
KEEP = ("first_seen_at",)  # set when the row is first inserted, never after


class Stored(NamedTuple):
    """What the stale check reads of a work item we hold."""

    updated_on: datetime
    mod_count: int
    deleted_at: datetime | None


class Owed(NamedTuple):
    """A stored record that known people are owed a candidate for."""

    sys_id: str
    owners: list[int]  # person ids, the primary owner first
    version: Newest


def work_item_candidate(
    *,
    work_item_id: int,
    person_id: int,
    snapshot: dict,
    raw: dict,
    occurred: datetime,
    rules,
    base: CandidateBase | None = None,
    suggestions: list[dict] | None = None,
) -> CandidateData:
    """The candidate a work item's owner is owed: its title, date and the rules' suggestions.
    `base`, when the page's preparation made it (prepare.candidate_base), saves making the
    title, text and snapshot hash again."""
    base = base or candidate_base(snapshot=snapshot, raw=raw, occurred=occurred)
    links, skills = rules_suggest(rules, raw) if rules else ((), ())
    return CandidateData(
        person_id=person_id,
        work_item_id=work_item_id,
        title=base.title,
        occurred_on=base.occurred_on,
        url=snapshot["url"],
        snapshot=snapshot,
        links=links,
        skills=skills,
        text=base.text,
        snapshot_sha256=base.snapshot_sha256,
        suggestions=suggestions,
    )


def _as_datetime(value):
    """A timestamp column read by raw SQL as the ORM would give it (aware, UTC): PostgreSQL's
    driver returns aware datetimes; Django's SQLite converter naive UTC ones (or text)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = parse_ts(value) if len(value) == 19 else parse_datetime(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class WorkItemWriter:
    """Stores pages of a work-item source; one instance per run (holds lookups it reuses)."""

    def __init__(self, *, source: Source, counters: Counters):
        model_columns = tuple(f.attname for f in insert_fields(WorkItem))
        if model_columns != COLUMNS:
            raise ImproperlyConfigured(f"sync COLUMNS {COLUMNS} != WorkItem's {model_columns}")
        self.source = source
        self.counters = counters
        self.attribution_fields = list(source.attribution_fields or DEFAULT_ATTRIBUTION_FIELDS)
        self.rules: list[SuggestionRule] = rules_enabled(table=source.table)
        self.fields = sorted(
            set(WORK_ITEM_FIELDS)
            | set(source.fields or [])
            | set(self.attribution_fields)
            | rule_fields(self.rules)
        )
        self._preparer: Preparer | None = None
        # {field: {value: label}} from sys_choice (begin); None: labels come with each row.
        self.labels: Labels | None = None
        self.index = ExpectationIndex()
        # The candidates' table grows with the work items and is looked up the same way.
        self.statistics = TableStatistics(WorkItem, Evidence, after_rows=STATS_AFTER_ROWS)

    def begin(self, client: ServiceNowClient, note: Callable[[str], None], *, cursor, full: bool):
        """Before the first page: the choice labels of DISPLAY_FIELDS, so pages can come as
        raw values. The cursor keeps the last ones read from sys_choice (one request); a full
        run, or labels older than SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS, reads them again.
        Returns the pages' display_value: "false", or "all" when sys_choice cannot be read
        (each row then carries its labels)."""
        now = timezone.now()
        max_age = timedelta(seconds=settings.SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS)
        read_at = cursor.choice_labels_read_at
        if not full and cursor.choice_labels is not None and read_at and now - read_at < max_age:
            self.labels = cursor.choice_labels
            return "false"
        self.labels = choice_labels(client, table=self.source.table, fields=DISPLAY_FIELDS)
        if self.labels is None:
            note("no read access to sys_choice: pages carry display values")
            return "all"
        cursor.choice_labels, cursor.choice_labels_read_at = self.labels, now
        cursor.save(update_fields=["choice_labels", "choice_labels_read_at", "updated_at"])
        return "false"

    def spec_for_process(self) -> PrepareSpec:
        """The spec for a fetching process: it also makes the candidate base of each record
        a synced person owns (the people read here once), and ranks their suggestions with
        their ladders' suggesters, unless the source has suggestion rules (their links come
        first and are made here, with the database)."""
        people = people_by_servicenow_sys_id()
        spec = dataclasses.replace(
            self.spec(), instance_url=self.source.connection.instance_url, people=people
        )
        if self.rules:
            return spec
        suggesters = suggesters_for(self.index, {ladder for _p, ladder, _l in people.values()})
        for suggester in suggesters.values():
            suggester.similar  # noqa: B018 (fitted here, once, not in every process)
        return dataclasses.replace(spec, suggesters=suggesters or None)

    def spec(self) -> PrepareSpec:
        """What preparing this source's pages needs (after begin: the labels are in it)."""
        ops = connections[router.db_for_write(WorkItem)].ops
        probe = "2001-02-03 04:05:06"
        return PrepareSpec(
            connection_id=self.source.connection_id,
            source_id=self.source.pk,
            table=self.source.table,
            fields=tuple(self.fields),
            attribution_fields=tuple(self.attribution_fields),
            labels=self.labels,
            timestamps_as_text=ops.adapt_datetimefield_value(parse_ts(probe)) == probe,
        )

    def prepare(self, rows: list[dict]) -> PreparedPage:
        """Everything about a page that needs no database (servicenow/sync/prepare.py)."""
        if self._preparer is None or self._preparer.spec.labels is not self.labels:
            self._preparer = Preparer(self.spec())
        return self._preparer.prepare(rows)

    def store(self, page: PreparedPage) -> None:
        source = self.source
        newest = page.newest
        self.counters.rows_seen += page.count
        existing = {
            sys_id: Stored(ts, mod, deleted)
            for sys_id, ts, mod, deleted in self._keyed(
                "sys_id, sys_updated_on, sys_mod_count, deleted_at", list(newest)
            )
        }
        people = person_ids_by_servicenow_sys_id(
            sys_ids={v for n in newest.values() for v in n.data.attributions.values()}
        )
        values: list[list] = []  # rows we hold an older copy of: upserted
        fresh: list[list] = []  # rows the check did not find: inserted
        owned: list[Owed] = []
        created_ids: set[str] = set()
        for sys_id, version in newest.items():
            held = existing.get(sys_id)
            if (
                held is not None
                and (version.updated_on, version.mod_count) <= (held.updated_on, held.mod_count)
                and held.deleted_at is None
            ):
                self.counters.skipped_stale += 1
                continue
            row = version.data
            (values if held else fresh).append(row.values)
            owners = []  # person ids in attribution order, each once (the primary first)
            for user in row.attributions.values():
                person = people.get(user)
                if person is not None and person not in owners:
                    owners.append(person)
            if owners:
                row.values[PERSON_COLUMN] = owners[0]
                owned.append(Owed(sys_id, owners, version))
            if held:
                self.counters.updated += 1
            else:
                self.counters.created += 1
                created_ids.add(sys_id)
        if not values and not fresh:
            return
        # Inside the page's transaction: nothing else writes this source's rows meanwhile
        # (one run per source), so a row the check did not find is new.
        values_insert(WorkItem, fresh, statistics=self.statistics)
        rows_upsert(WorkItem, values, conflict=CONFLICT, keep=KEEP, statistics=self.statistics)
        if not owned:
            return
        ids = dict(self._keyed("sys_id, id", [o.sys_id for o in owned]))
        candidates = []
        instance_url = source.connection.instance_url
        for sys_id, owners, version in owned:
            ts, row = version.updated_on, version.data
            base = row.candidate or record_candidate_base(
                instance_url=instance_url,
                table=source.table,
                sys_id=sys_id,
                raw=row.raw,
                updated_on=ts,
                display=row.display,
            )
            candidates += [
                work_item_candidate(
                    work_item_id=ids[sys_id],
                    person_id=person_id,
                    snapshot=base.snapshot,
                    raw=row.raw,
                    occurred=base.occurred,
                    rules=self.rules,
                    base=base,
                    suggestions=(row.suggested or {}).get(person_id),
                )
                for person_id in owners
            ]
        self.counters.evidence_created += candidates_import(
            candidates=candidates,
            index=self.index,
            # A work item inserted just now can have no evidence yet: no need to look.
            new_work_item_ids={ids[sys_id] for sys_id in created_ids if sys_id in ids},
        )

    def _keyed(self, columns: str, sys_ids: list[str]) -> list[tuple]:
        """`columns` of this source's work items with these sys_ids: one statement with one
        parameter (ladder_tracker.bulk.in_values), on the (connection, table, sys_id) index."""
        if not sys_ids:
            return []
        connection = connections[router.db_for_write(WorkItem)]
        where, params = in_values(connection, "sys_id", sys_ids)
        sql = (
            f"SELECT {columns} FROM {WorkItem._meta.db_table} "  # noqa: S608 (our own names)
            f"WHERE connection_id = %s AND {connection.ops.quote_name('table')} = %s AND {where}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.source.connection_id, self.source.table, *params])
            rows = cursor.fetchall()
        if "sys_updated_on" not in columns:
            return rows
        return [
            (sys_id, _as_datetime(ts), mod, _as_datetime(deleted))
            for sys_id, ts, mod, deleted in rows
        ]
