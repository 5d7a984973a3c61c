"""Plain-row inserts for the sync's hot paths, without model instances.

The ORM's bulk_create prepares every value through its field and, on SQLite, recompiles
the statement for every batch of 999 parameters; for tens of thousands of rows that costs
several times the database's own work (benchmarks/sync.py). `rows_insert` adapts each
column with the backend's own adapter, once per value, and sends one `executemany`
(SQLite) or one `COPY` (PostgreSQL). Like bulk_create it sends no signals; unlike it, it
returns no ids (callers that need them read them back by a natural key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from .canonical import json_text

# Column types whose Python values the database driver takes as they are.
_AS_IS = {
    "AutoField",
    "BigAutoField",
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "ForeignKey",
    "IntegerField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SmallIntegerField",
    "TextField",
}


def _adapter(field: models.Field, ops) -> Callable[[Any], Any] | None:
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return ops.adapt_datetimefield_value
    if kind == "DateField":
        return ops.adapt_datefield_value
    if kind == "JSONField":
        if field.encoder is None:
            return json_text
        return lambda value: ops.adapt_json_value(value, field.encoder)
    if kind in _AS_IS:
        return None
    raise TypeError(f"rows_insert does not handle {field.model.__name__}.{field.name} ({kind})")


def insert_fields(model: type[models.Model]) -> list[models.Field]:
    """The columns an INSERT writes: every concrete field but the primary key, in order."""
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def copy_rows(connection, cursor, copy_sql: str, values: list[list]) -> None:
    """PostgreSQL: stream database values through psycopg's COPY, under Django's error
    translation (a DataError, not psycopg's own)."""
    with connection.wrap_database_errors, cursor.cursor.copy(copy_sql) as copy:
        for row in values:
            copy.write_row(row)


def rows_insert(model: type[models.Model], rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows given as {field attname: Python value}. A column a row leaves out takes
    the field's default (evaluated once per call); auto_now and auto_now_add fields take
    one `now`. Returns how many rows were sent."""
    connection = connections[router.db_for_write(model)]
    ops = connection.ops
    now = timezone.now()
    fields = insert_fields(model)
    columns = []
    for field in fields:
        auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        default, adapt = now if auto else field.get_default(), _adapter(field, ops)
        # A default is adapted once here, not once per row that leaves it out.
        if adapt is not None and default is not None:
            default = adapt(default)
        columns.append((field.attname, default, adapt))

    known = {name for name, _default, _adapt in columns}

    def database_values(row: dict[str, Any]) -> list[Any]:
        if unknown := row.keys() - known:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        out = []
        for name, default, adapt in columns:
            if name not in row:
                out.append(default)
                continue
            value = row[name]
            out.append(value if adapt is None or value is None else adapt(value))
        return out

    values = [database_values(row) for row in rows]
    if not values:
        return 0
    q = ops.quote_name
    table = q(model._meta.db_table)
    names = ", ".join(q(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_rows(connection, cursor, f"COPY {table} ({names}) FROM STDIN", values)
        else:
            marks = ", ".join(["%s"] * len(fields))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)  # noqa: S608
    return len(values)


class TableStatistics:
    """PostgreSQL: ANALYZE tables once a bulk load has written as many rows as their
    statistics describe (and at least `after_rows`).

    Without statistics, as after a first bulk load into a fresh database, the planner takes
    `sys_id IN (…1000 ids…)` for a filter over every row of an index prefix instead of 1000
    index probes, and each page's lookup gets slower as the table grows (~70 ms a page at
    100k rows against ~9 ms; autovacuum would notice only minutes later). The first model's
    table is the one whose row count is tracked; the others grow with it."""

    def __init__(self, *models_: type[models.Model], after_rows: int = 5000):
        self.models = models_
        self.after_rows = after_rows
        self.described: float | None = None  # rows the statistics describe
        self.written = 0

    def rows_written(self, connection, cursor, count: int) -> None:
        if connection.vendor != "postgresql":
            return
        if self.described is None:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                [self.models[0]._meta.db_table],
            )
            self.described = max(0.0, float(cursor.fetchone()[0]))  # -1: never analyzed
        self.written += count
        if self.written >= max(self.after_rows, self.described):
            q = connection.ops.quote_name
            cursor.execute("ANALYZE " + ", ".join(q(m._meta.db_table) for m in self.models))
            self.described += self.written
            self.written = 0


def _upsert_statements(connection, model, conflict: tuple[str, ...], keep: tuple[str, ...]):
    q = connection.ops.quote_name
    columns = [f.column for f in insert_fields(model)]
    updates = [c for c in columns if c not in conflict and c not in keep]
    # Names are the model's own columns, quoted by the backend; values are parameters.
    table = q(model._meta.db_table)
    names = ", ".join(q(c) for c in columns)
    on_conflict = (
        f"ON CONFLICT ({', '.join(q(c) for c in conflict)}) "
        f"DO UPDATE SET {', '.join(f'{q(c)} = EXCLUDED.{q(c)}' for c in updates)}"
    )
    if connection.vendor != "postgresql":
        marks = ", ".join(["%s"] * len(columns))
        return (f"INSERT INTO {table} ({names}) VALUES ({marks}) {on_conflict}",)  # noqa: S608
    # PostgreSQL: executemany would parse and plan one INSERT per row; COPY into a temporary
    # table and one INSERT … SELECT per call cost a fraction of that. The table lives as long
    # as the database session, so calls do not churn the catalogs; ON COMMIT DELETE ROWS
    # truncates it at each commit (a DELETE alone would leave dead rows that no autovacuum
    # ever removes from a temporary table, and every later call would scan them), and the
    # DELETE empties it for a second call in one transaction. Needs the TEMP privilege,
    # which PostgreSQL grants to every role unless revoked.
    stage = q(f"{model._meta.db_table}_stage")
    return (
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS SELECT {names} FROM {table} WITH NO DATA",  # noqa: S608, E501
        f"COPY {stage} ({names}) FROM STDIN",
        f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} {on_conflict}",  # noqa: S608
        f"DELETE FROM {stage}",  # noqa: S608
    )


_statements: dict[tuple, tuple[str, ...]] = {}


def rows_upsert(
    model: type[models.Model],
    values: list[list],
    *,
    conflict: tuple[str, ...],
    keep: tuple[str, ...] = (),
    statistics: TableStatistics | None = None,
) -> None:
    """`INSERT … ON CONFLICT (conflict) DO UPDATE` of rows of ready-made database values, in
    `insert_fields(model)` order: executemany on SQLite (≥ 3.24), COPY staging on PostgreSQL.
    `keep` columns are written on insert only. Atomic: inside an open transaction it runs in
    a savepoint, so a failure leaves nothing behind (not even the staging table).

    The ORM's bulk_create(update_conflicts=True) costs ~15x the fetch per row for the sync
    (it prepares every value through its field and recompiles the statement per batch of
    47 rows on SQLite; benchmarks/sync.py); callers adapt values once with the backend's own
    adapters instead (`ops.adapt_*`)."""
    if not values:
        return
    connection = connections[router.db_for_write(model)]
    key = (connection.alias, model, conflict, keep)
    statements = _statements.get(key)
    if statements is None:
        statements = _statements[key] = _upsert_statements(connection, model, conflict, keep)
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(statements[0], values)
            return
        create, copy_sql, insert, empty = statements
        cursor.execute(create)
        copy_rows(connection, cursor, copy_sql, values)
        cursor.execute(insert)
        cursor.execute(empty)
        if statistics is not None:
            statistics.rows_written(connection, cursor, len(values))


def in_values(connection, column: str, values: list) -> tuple[str, list]:
    """`column IN (values)` as SQL with one parameter, however many values: SQLite reads a
    JSON array through json_each, PostgreSQL an array through = ANY. The ORM's `__in` makes a
    placeholder per value and compiles the lookup each time (half of a 1000-row page's key
    check on SQLite); one parameter costs the same for one value or a thousand."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json_text(list(values))]  # noqa: S608


def values_insert(
    model: type[models.Model], values: list[list], *, statistics: TableStatistics | None = None
) -> None:
    """A plain INSERT of rows of ready-made database values in `insert_fields(model)` order
    (as rows_upsert takes them), for rows known to be new: executemany on SQLite, COPY
    straight into the table on PostgreSQL (no staging, no conflict check). A row that exists
    after all fails the statement (IntegrityError): the caller's transaction rolls back."""
    if not values:
        return
    connection = connections[router.db_for_write(model)]
    q = connection.ops.quote_name
    columns = [f.column for f in insert_fields(model)]
    table, names = q(model._meta.db_table), ", ".join(q(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            copy_rows(connection, cursor, f"COPY {table} ({names}) FROM STDIN", values)
            if statistics is not None:
                statistics.rows_written(connection, cursor, len(values))
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)  # noqa: S608
