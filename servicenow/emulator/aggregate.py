"""The Aggregate API's arithmetic: counts, avg/min/max/sum per field, groups, having, order.

Shapes follow ServiceNow's reference for ``GET /api/now/stats/{tableName}``
(https://www.servicenow.com/docs/r/api-reference/rest-apis/c_AggregateAPI.html): without
``sysparm_group_by`` the result is one ``{"stats": {...}}`` object; with it, a list of
``{"stats": {...}, "groupby_fields": [{"field", "value"}]}``. Every number is a string
(averages with four decimals, as in the documented sample). Pure functions over rows; the
server does the filtering, authentication and rendering of display values.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = dict[str, str]
Getter = Callable[[Row], str]

AGGREGATES: tuple[str, ...] = ("avg", "min", "max", "sum")
_HAVING_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class AggregateError(ValueError):
    """A parameter ServiceNow would answer with HTTP 400."""


@dataclass(frozen=True)
class Having:
    aggregate: str  # count, avg, min, max, sum
    field: str
    op: str
    value: float


@dataclass(frozen=True)
class GroupOrder:
    key: str  # a group-by field, or COUNT, or AVG/MIN/MAX/SUM^field
    descending: bool


def parse_having(text: str) -> list[Having]:
    """``count^priority^>^3,avg^impact^<=^2`` (comma-separated ``aggregate^field^op^value``)."""
    clauses: list[Having] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split("^")
        if len(pieces) != 4:
            raise AggregateError(f"Invalid sysparm_having: {part}")
        aggregate, field, op, raw = pieces
        aggregate = aggregate.lower()
        if aggregate not in ("count", *AGGREGATES) or op not in _HAVING_OPS:
            raise AggregateError(f"Invalid sysparm_having: {part}")
        try:
            clauses.append(Having(aggregate, field, op, float(raw)))
        except ValueError:
            raise AggregateError(f"Invalid sysparm_having: {part}") from None
    return clauses


def parse_order(text: str) -> list[GroupOrder]:
    """``state``, ``COUNT^DESC``, ``AVG^priority``: comma-separated group orderings."""
    orders: list[GroupOrder] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        pieces = part.split("^")
        descending = pieces[-1].upper() == "DESC"
        if descending:
            pieces = pieces[:-1]
        orders.append(GroupOrder("^".join(pieces), descending))
    return orders


def _numbers(values: Sequence[str]) -> list[float]:
    numbers: list[float] = []
    for value in values:
        try:
            numbers.append(float(value))
        except ValueError:
            continue  # empty or non-numeric values take no part, as in SQL aggregates
    return numbers


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.4f}"


def _aggregate(name: str, values: Sequence[str], numeric: bool) -> tuple[str, float | None]:
    """(wire string, number for having/order) of one aggregate over one field's values."""
    if name in ("min", "max"):
        present = [v for v in values if v != ""]
        if not present:
            return "", None
        if numeric:
            picked = (min if name == "min" else max)(_numbers(present) or [0.0])
            return _format_number(picked), picked
        text = (min if name == "min" else max)(present)
        return text, None
    numbers = _numbers(values)
    if not numbers:
        return "", None
    if name == "sum":
        total = sum(numbers)
        return _format_number(total), total
    mean = sum(numbers) / len(numbers)
    return f"{mean:.4f}", mean


def compute_stats(
    rows: Sequence[Row],
    count: bool,
    fields: Mapping[str, Sequence[str]],
    getter_for: Callable[[str], Getter],
    numeric_fields: frozenset[str],
) -> tuple[dict[str, Any], dict[str, float]]:
    """The ``stats`` object for one set of rows, plus the numbers having/order compare."""
    stats: dict[str, Any] = {}
    numbers: dict[str, float] = {"count": float(len(rows))}
    if count:
        stats["count"] = str(len(rows))
    for name in AGGREGATES:
        names = fields.get(name) or ()
        if not names:
            continue
        section: dict[str, str] = {}
        for field in names:
            get = getter_for(field)
            numeric = field.rsplit(".", 1)[-1] in numeric_fields
            text, number = _aggregate(name, [get(row) for row in rows], numeric)
            section[field] = text
            if number is not None:
                numbers[f"{name}^{field}"] = number
        stats[name] = section
    return stats, numbers


def _having_value(
    clause: Having, rows: Sequence[Row], getter_for: Callable[[str], Getter]
) -> float | None:
    if clause.aggregate == "count":
        return float(len(rows))
    _, number = _aggregate(
        clause.aggregate, [getter_for(clause.field)(row) for row in rows], numeric=True
    )
    return number


def group_rows(
    rows: Sequence[Row],
    group_by: Sequence[str],
    getter_for: Callable[[str], Getter],
) -> dict[tuple[str, ...], list[Row]]:
    getters = [getter_for(field) for field in group_by]
    groups: dict[tuple[str, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(get(row) for get in getters), []).append(row)
    return groups


def grouped_stats(
    rows: Sequence[Row],
    group_by: Sequence[str],
    count: bool,
    fields: Mapping[str, Sequence[str]],
    having: Sequence[Having],
    order: Sequence[GroupOrder],
    getter_for: Callable[[str], Getter],
    numeric_fields: frozenset[str],
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """(group values, stats) per group that passes ``having``, in ``order`` (default: by
    the group values ascending, numerically for numeric fields)."""
    kept: list[tuple[tuple[str, ...], dict[str, Any], dict[str, float]]] = []
    for key, members in group_rows(rows, group_by, getter_for).items():
        passes = True
        for clause in having:
            value = _having_value(clause, members, getter_for)
            if value is None or not _HAVING_OPS[clause.op](value, clause.value):
                passes = False
                break
        if passes:
            stats, numbers = compute_stats(members, count, fields, getter_for, numeric_fields)
            kept.append((key, stats, numbers))

    def value_key(index: int) -> Callable[[tuple], Any]:
        numeric = group_by[index].rsplit(".", 1)[-1] in numeric_fields

        def key(item: tuple) -> Any:
            text = item[0][index]
            if numeric:
                try:
                    return (0, float(text), "")
                except ValueError:
                    pass
            return (1, 0.0, text)

        return key

    orders = list(order) or [GroupOrder(field, False) for field in group_by]
    # Stable multi-key sort: least significant key first.
    for spec in reversed(orders):
        if spec.key in group_by:
            kept.sort(key=value_key(list(group_by).index(spec.key)), reverse=spec.descending)
        else:
            name, _, field = spec.key.partition("^")
            metric = "count" if name.upper() == "COUNT" else f"{name.lower()}^{field}"
            kept.sort(key=lambda item, m=metric: item[2].get(m, 0.0), reverse=spec.descending)
    return [(key, stats) for key, stats, _numbers in kept]
