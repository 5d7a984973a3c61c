"""In-memory, thread-safe record store behind the ServiceNow emulator.

Each table keeps its rows in one list sorted by ``(sys_updated_on, sys_id)`` (the order an
incremental keyset sync asks for) plus a dict by ``sys_id``. Keeping that order at write
time lets the request path answer the common query shape with a bounded scan instead of a
sort per request. Every value is a string, as in ServiceNow's JSON.
"""

from __future__ import annotations

import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

Row = dict[str, str]
Clock = Callable[[], datetime]

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
AUDIT_DELETE_TABLE = "sys_audit_delete"
# Always served (empty unless the dataset has rows): who else saw a record (corroborators).
WITNESS_TABLES = ("sys_journal_field", "sysapproval_approver")

# Fields the store maintains itself; update() never takes sys_id or sys_created_on from
# the caller, so a row cannot be moved to another identity by accident.
_IMMUTABLE_ON_UPDATE = frozenset({"sys_id", "sys_created_on"})


def utc_now() -> datetime:
    """Default clock: the real time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_timestamp(moment: datetime) -> str:
    """Render a datetime the way ServiceNow's Table API does (UTC, second resolution)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime(TIMESTAMP_FORMAT)


def to_field_value(value: Any) -> str:
    """Coerce a Python value into the string form every ServiceNow field has on the wire."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)


class Table:
    """One table: rows in ``(sys_updated_on, sys_id)`` order, an index, and known fields."""

    __slots__ = ("name", "rows", "keys", "by_id", "fields")

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[Row] = []
        # Parallel to ``rows`` so bisect works on plain tuples (no key= per comparison).
        self.keys: list[tuple[str, str]] = []
        self.by_id: dict[str, Row] = {}
        self.fields: set[str] = set()

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def key_of(row: Row) -> tuple[str, str]:
        return (row.get("sys_updated_on", ""), row["sys_id"])

    def add(self, row: Row) -> None:
        key = self.key_of(row)
        index = bisect_right(self.keys, key)
        self.keys.insert(index, key)
        self.rows.insert(index, row)
        self.by_id[row["sys_id"]] = row
        self.fields.update(row)

    def remove(self, row: Row) -> None:
        key = self.key_of(row)
        index = bisect_left(self.keys, key)
        # Keys are unique because sys_id is, so the bisect lands exactly on the row.
        if index >= len(self.keys) or self.rows[index] is not row:
            raise RuntimeError(f"store index out of sync for {self.name}/{row['sys_id']}")
        del self.keys[index]
        del self.rows[index]
        del self.by_id[row["sys_id"]]

    def load(self, rows: Iterable[Row]) -> None:
        """Bulk load (dataset start-up): one sort instead of n bisect inserts."""
        for row in rows:
            if row["sys_id"] in self.by_id:
                raise ValueError(f"duplicate sys_id {row['sys_id']} in table {self.name}")
            self.by_id[row["sys_id"]] = row
            self.fields.update(row)
        self.rows = sorted(self.by_id.values(), key=self.key_of)
        self.keys = [self.key_of(row) for row in self.rows]

    def resort(self) -> None:
        self.rows.sort(key=self.key_of)
        self.keys = [self.key_of(row) for row in self.rows]

    def index_range(self, lower: str | None, upper: str | None) -> tuple[int, int]:
        """Slice bounds of the rows whose sys_updated_on lies in [lower, upper]."""
        start = 0 if lower is None else bisect_left(self.keys, (lower, ""))
        # chr(0x10FFFF) sorts after every sys_id, so equal timestamps stay inside the range.
        stop = len(self.keys) if upper is None else bisect_right(self.keys, (upper, "\U0010ffff"))
        return start, max(start, stop)


class Store:
    """Thread-safe tables of string-valued rows with ServiceNow's system-field bookkeeping.

    Public methods take the lock themselves and hand out copies. The request path holds
    ``lock`` (re-entrant) around a whole query so that a page is read from one consistent
    state, and uses ``table()`` to reach the live rows without copying them.
    """

    def __init__(
        self,
        tables: Mapping[str, Iterable[Mapping[str, Any]]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.clock: Clock = clock or utc_now
        self.lock = threading.RLock()
        self._tables: dict[str, Table] = {}
        # Values repeat a lot (timestamps of a burst, user sys_ids, states); sharing one
        # string object per distinct short value keeps 100k-row datasets small in memory.
        intern: dict[str, str] = {}
        now = self.now()
        for name, rows in (tables or {}).items():
            table = Table(name)
            table.load(self._normalise_loaded(row, now, intern) for row in rows)
            self._tables[name] = table
        for name in (AUDIT_DELETE_TABLE, *WITNESS_TABLES):
            self._tables.setdefault(name, Table(name))

    # -- helpers -----------------------------------------------------------------------

    def now(self) -> str:
        return format_timestamp(self.clock())

    @staticmethod
    def _normalise_loaded(row: Mapping[str, Any], now: str, intern: dict[str, str]) -> Row:
        clean: Row = {}
        for field, value in row.items():
            text = to_field_value(value)
            if len(text) <= 40:
                text = intern.setdefault(text, text)
            clean[field] = text
        if not clean.get("sys_id"):
            clean["sys_id"] = uuid.uuid4().hex
        clean.setdefault("sys_created_on", now)
        clean.setdefault("sys_updated_on", clean["sys_created_on"])
        clean.setdefault("sys_mod_count", "0")
        return clean

    def _require(self, name: str) -> Table:
        table = self._tables.get(name)
        if table is None:
            raise KeyError(f"no table {name}")
        return table

    # -- reads -------------------------------------------------------------------------

    def table(self, name: str) -> Table | None:
        """The live table (no copy); callers must hold ``lock`` while they use it."""
        return self._tables.get(name)

    def table_names(self) -> list[str]:
        with self.lock:
            return sorted(self._tables)

    def has_table(self, name: str) -> bool:
        with self.lock:
            return name in self._tables

    def rows(self, table: str) -> list[Row]:
        """Copies of every row, in ``(sys_updated_on, sys_id)`` order."""
        with self.lock:
            found = self._tables.get(table)
            return [dict(row) for row in found.rows] if found else []

    def get(self, table: str, sys_id: str) -> Row | None:
        with self.lock:
            found = self._tables.get(table)
            row = found.by_id.get(sys_id) if found else None
            return dict(row) if row is not None else None

    def count(self, table: str) -> int:
        with self.lock:
            found = self._tables.get(table)
            return len(found) if found else 0

    # -- writes ------------------------------------------------------------------------

    def insert(self, table: str, fields: Mapping[str, Any]) -> Row:
        """Add a row; creates the table when new. Caller-given system fields are kept."""
        with self.lock:
            target = self._tables.get(table)
            if target is None:
                target = self._tables[table] = Table(table)
            row = {field: to_field_value(value) for field, value in fields.items()}
            if not row.get("sys_id"):
                row["sys_id"] = uuid.uuid4().hex
            if row["sys_id"] in target.by_id:
                raise ValueError(f"sys_id {row['sys_id']} already exists in {table}")
            now = self.now()
            row.setdefault("sys_created_on", now)
            row.setdefault("sys_updated_on", now)
            row.setdefault("sys_mod_count", "0")
            target.add(row)
            return dict(row)

    def _apply_update(self, row: Row, fields: Mapping[str, Any], now: str) -> None:
        for field, value in fields.items():
            if field not in _IMMUTABLE_ON_UPDATE:
                row[field] = to_field_value(value)
        # An explicit sys_updated_on lets tests stage "older" versions; otherwise now.
        if "sys_updated_on" not in fields:
            row["sys_updated_on"] = now
        row["sys_mod_count"] = str(int(row.get("sys_mod_count") or "0") + 1)

    def update(self, table: str, sys_id: str, fields: Mapping[str, Any]) -> Row:
        """Change fields, stamp sys_updated_on = now and bump sys_mod_count."""
        with self.lock:
            target = self._require(table)
            row = target.by_id.get(sys_id)
            if row is None:
                raise KeyError(f"no row {sys_id} in {table}")
            target.remove(row)
            self._apply_update(row, fields, self.now())
            target.add(row)
            return dict(row)

    def bulk_update(self, table: str, sys_ids: Iterable[str], fields: Mapping[str, Any]) -> int:
        """Update many rows in one go, all stamped with the same second; returns the count.

        Unknown sys_ids are skipped. Rows are re-sorted once rather than moved one by one.
        """
        with self.lock:
            target = self._require(table)
            now = self.now()
            updated = 0
            for sys_id in dict.fromkeys(sys_ids):
                row = target.by_id.get(sys_id)
                if row is not None:
                    self._apply_update(row, fields, now)
                    updated += 1
            if updated:
                target.fields.update(fields)
                target.resort()
            return updated

    def delete(self, table: str, sys_id: str) -> Row:
        """Remove a row and record it in sys_audit_delete; returns the removed row."""
        with self.lock:
            target = self._require(table)
            row = target.by_id.get(sys_id)
            if row is None:
                raise KeyError(f"no row {sys_id} in {table}")
            target.remove(row)
            now = self.now()
            audit = self._tables[AUDIT_DELETE_TABLE]
            audit.add(
                {
                    "sys_id": uuid.uuid4().hex,
                    "tablename": table,
                    "documentkey": sys_id,
                    "sys_created_on": now,
                    "sys_updated_on": now,
                    "sys_mod_count": "0",
                }
            )
            return dict(row)
