"""Work items: pages of a work-item source stored as WorkItem rows (one upsert per page),
and the evidence candidates their owners are owed, handed to `apps.evidence.candidates`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
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
)
from apps.evidence.models import Evidence  # read only: its statistics (written by candidates)
from apps.evidence.suggestions import work_item_text
from apps.people.selectors import person_ids_by_servicenow_sys_id
from ladder_tracker.bulk import (
    TableStatistics,
    in_values,
    insert_fields,
    json_text,
    rows_upsert,
    values_insert,
)

from ..client import ServiceNowClient, field_display, field_value
from ..models import Source, SuggestionRule, WorkItem, record_url
from ..query import format_timestamp
from .choices import Labels, choice_labels
from .fields import DEFAULT_ATTRIBUTION_FIELDS, DISPLAY_FIELDS, SNAPSHOT_FIELDS, WORK_ITEM_FIELDS
from .paging import Newest, PreparedPage, newest_per_sys_id, parse_ts, ts_value
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


class PreparedRow(NamedTuple):
    raw: dict  # {field: value} as stored in WorkItem.raw
    attributions: dict  # {attribution field: user sys_id}
    values: list  # database values in COLUMNS order
    display: dict  # {field: label} where the instance sent a label (DISPLAY_FIELDS)


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


class ValueAdapters:
    """The backend's adapters for one run: a page shares a handful of timestamps, so they
    go through a small cache."""

    def __init__(self):
        ops = connections[router.db_for_write(WorkItem)].ops
        # SQLite keeps an aware datetime as its naive UTC text, which is the Table API's own
        # format: there the raw text is the database value once it parsed and is exactly
        # 19 characters (parse_timestamp strips; padded text must not be stored as is).
        probe = "2001-02-03 04:05:06"
        as_text = ops.adapt_datetimefield_value(parse_ts(probe)) == probe

        @lru_cache(maxsize=4096)
        def timestamp(raw: str):
            if not raw:
                return None
            parsed = parse_ts(raw)  # raises on anything but YYYY-MM-DD HH:MM:SS
            if as_text and len(raw) == 19:
                return raw
            return ops.adapt_datetimefield_value(parsed)

        self.timestamp = timestamp
        self.datetime = ops.adapt_datetimefield_value
        self.json = json_text


def work_item_snapshot(
    *, instance_url: str, table: str, sys_id: str, raw: dict, updated_on, display=None
) -> dict:
    """What an evidence item keeps of its record: the stored values, and the labels the
    instance shows for them (`display`, e.g. {"state": "Resolved"}) when it sent any."""
    snap = {f: raw.get(f, "") for f in SNAPSHOT_FIELDS}
    if display:
        snap["display"] = dict(display)
    snap.update(
        table=table,
        sys_id=sys_id,
        sys_updated_on=format_timestamp(updated_on),
        url=record_url(instance_url, table, sys_id),
    )
    return snap


def work_item_occurred(*, resolved_at, closed_at, opened_at, updated_on) -> datetime:
    """When the work happened, as far as the record tells."""
    return resolved_at or closed_at or opened_at or updated_on


def work_item_candidate(
    *, work_item_id: int, person_id: int, snapshot: dict, raw: dict, occurred: datetime, rules
) -> CandidateData:
    """The candidate a work item's owner is owed: its title, date and the rules' suggestions."""
    number, text = raw.get("number", "")[:40], raw.get("short_description", "")
    links, skills = rules_suggest(rules, raw) if rules else ((), ())
    return CandidateData(
        person_id=person_id,
        work_item_id=work_item_id,
        title=(f"{number}: {text}" if number else text) or snapshot["sys_id"],
        occurred_on=occurred.date(),
        url=snapshot["url"],
        snapshot=snapshot,
        links=links,
        skills=skills,
        text=work_item_text(table=snapshot.get("table", ""), raw=raw),
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
        self.adapt = ValueAdapters()
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

    def prepare(self, rows: list[dict]) -> PreparedPage:
        """Everything about a page that needs no database: values ready for the upsert."""
        adapt = self.adapt
        db_ts, db_json = adapt.timestamp, adapt.json
        now = adapt.datetime(timezone.now())
        source = self.source
        connection_id, source_id, table = source.connection_id, source.pk, source.table
        fields, attribution_fields = self.fields, self.attribution_fields
        labels = self.labels
        newest = newest_per_sys_id(rows)
        for sys_id, (ts, mod, row) in newest.items():
            raw = {f: field_value(row[f]) for f in fields if f in row}
            if labels is None:  # pages came with display values
                display = {
                    f: label
                    for f in DISPLAY_FIELDS
                    if f in row and (label := field_display(row[f])) and label != raw[f]
                }
            else:
                display = {
                    f: label
                    for f in DISPLAY_FIELDS
                    if f in raw and (label := labels[f].get(raw[f])) and label != raw[f]
                }
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
                None,  # person_id: set by store, which knows people
                db_json(attributions),
                db_ts(raw["sys_updated_on"]),
                mod,
                db_json(raw),
                None,
                "",
                now,
                now,
            ]
            newest[sys_id] = Newest(ts, mod, PreparedRow(raw, attributions, values, display))
        return PreparedPage(count=len(rows), newest=newest)

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
            owners = list(
                dict.fromkeys(people[v] for v in row.attributions.values() if v in people)
            )
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
            ts, raw = version.updated_on, version.data.raw
            snapshot = work_item_snapshot(
                instance_url=instance_url,
                table=source.table,
                sys_id=sys_id,
                raw=raw,
                updated_on=ts,
                display=version.data.display,
            )
            occurred = work_item_occurred(
                resolved_at=ts_value(raw.get("resolved_at")),
                closed_at=ts_value(raw.get("closed_at")),
                opened_at=ts_value(raw.get("opened_at")),
                updated_on=ts,
            )
            candidates += [
                work_item_candidate(
                    work_item_id=ids[sys_id],
                    person_id=person_id,
                    snapshot=snapshot,
                    raw=raw,
                    occurred=occurred,
                    rules=self.rules,
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
