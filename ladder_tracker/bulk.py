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

from django.db import connections, models, router
from django.utils import timezone

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
        columns.append((field.attname, now if auto else field.get_default(), _adapter(field, ops)))

    known = {name for name, _default, _adapt in columns}

    def database_values(row: dict[str, Any]) -> list[Any]:
        if unknown := row.keys() - known:
            raise ValueError(f"{model.__name__} has no columns {sorted(unknown)}")
        out = []
        for name, default, adapt in columns:
            value = row.get(name, default)
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
