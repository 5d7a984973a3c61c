"""Parse ServiceNow encoded queries and compile them into row predicates for the emulator.

Grammar handled (as ServiceNow reads it): ``^`` joins conditions with AND, ``^OR`` joins a
condition to the previous one with OR (binding tighter than AND), ``^NQ`` starts a new
query OR'ed with everything before it, and ``ORDERBY<field>`` / ``ORDERBYDESC<field>``
may appear anywhere and apply to the whole result. A query is parsed and compiled once
per request; evaluating a row then costs only closure calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

Row = dict[str, str]
Getter = Callable[[Row], str]
Predicate = Callable[[Row], bool]

# Longest operators first so that e.g. "NOT IN" wins over "IN" and ">=" over ">".
OPERATORS: tuple[str, ...] = (
    "NOT IN",
    "NOTLIKE",
    "ISNOTEMPTY",
    "ISEMPTY",
    "STARTSWITH",
    "ENDSWITH",
    "BETWEEN",
    "ANYTHING",
    "LIKE",
    "IN",
    "!=",
    ">=",
    "<=",
    "=",
    ">",
    "<",
)
_VALUELESS = frozenset({"ISEMPTY", "ISNOTEMPTY", "ANYTHING"})

# ServiceNow column names are lowercase; operators start with an uppercase letter or a
# symbol, so a greedy lowercase field name can never swallow the operator.
_CONDITION_RE = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_.]*)(?P<op>"
    + "|".join(re.escape(op) for op in OPERATORS)
    + r")(?P<value>.*)$",
    re.DOTALL,
)

UPDATED_FIELD = "sys_updated_on"


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class OrderBy:
    field: str
    descending: bool = False


@dataclass
class ParsedQuery:
    """``branches`` are the ^NQ parts; each is a list of AND-ed groups of OR-ed conditions."""

    branches: list[list[list[Condition]]] = field(default_factory=list)
    order_by: list[OrderBy] = field(default_factory=list)
    # Terms that matched no known operator; ServiceNow ignores them, so do we.
    ignored_terms: list[str] = field(default_factory=list)


def parse_condition(term: str) -> Condition | None:
    match = _CONDITION_RE.match(term)
    if match is None:
        return None
    op = match["op"]
    value = "" if op in _VALUELESS else match["value"]
    return Condition(match["field"], op, value)


def parse_encoded_query(text: str) -> ParsedQuery:
    parsed = ParsedQuery()
    for segment in (text or "").split("^NQ"):
        groups: list[list[Condition]] = []
        for term in segment.split("^"):
            if not term or term == "EQ":
                continue
            if term.startswith("ORDERBYDESC"):
                parsed.order_by.append(OrderBy(term[len("ORDERBYDESC") :], descending=True))
                continue
            if term.startswith("ORDERBY"):
                parsed.order_by.append(OrderBy(term[len("ORDERBY") :]))
                continue
            is_or = term.startswith("OR") and bool(groups)
            condition = parse_condition(term[2:] if is_or else term)
            if condition is None:
                parsed.ignored_terms.append(term)
                continue
            if is_or:
                groups[-1].append(condition)
            else:
                groups.append([condition])
        if groups:
            parsed.branches.append(groups)
    parsed.order_by = [order for order in parsed.order_by if order.field]
    return parsed


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ordering_predicate(get: Getter, op: str, target: str, numeric: bool) -> Predicate:
    """>, >=, <, <=: empty values never match (ServiceNow stores them as NULL)."""
    compare: Callable[[object, object], bool] = {
        ">": lambda a, b: a > b,  # type: ignore[operator]
        ">=": lambda a, b: a >= b,  # type: ignore[operator]
        "<": lambda a, b: a < b,  # type: ignore[operator]
        "<=": lambda a, b: a <= b,  # type: ignore[operator]
    }[op]
    target_number = _number(target) if numeric else None
    if target_number is not None:

        def numeric_check(row: Row) -> bool:
            value = _number(get(row) or "x")
            return value is not None and compare(value, target_number)

        return numeric_check

    # Specialise the hot keyset comparisons to avoid one extra call per row.
    if op == ">":
        return lambda row: (value := get(row)) != "" and value > target
    if op == "<=":
        return lambda row: (value := get(row)) != "" and value <= target
    return lambda row: (value := get(row)) != "" and compare(value, target)


def _equality(numeric: bool, target: str) -> Callable[[str], bool]:
    target_number = _number(target) if numeric else None
    if target_number is None:
        return lambda value: value == target

    def equal(value: str) -> bool:
        number = _number(value) if value else None
        return number == target_number if number is not None else value == target

    return equal


def _membership(numeric: bool, items: list[str]) -> Callable[[str], bool]:
    plain = frozenset(items)
    numbers = {n for n in (_number(item) for item in items) if n is not None} if numeric else set()

    def member(value: str) -> bool:
        if value in plain:
            return True
        if numbers and value:
            number = _number(value)
            return number is not None and number in numbers
        return False

    return member


def compile_condition(condition: Condition, get: Getter, numeric: bool) -> Predicate:
    op, target = condition.op, condition.value
    if op == "=":
        equal = _equality(numeric, target)
        if not numeric:
            return lambda row: get(row) == target
        return lambda row: equal(get(row))
    if op == "!=":
        equal = _equality(numeric, target)
        return lambda row: not equal(get(row))
    if op in (">", ">=", "<", "<="):
        return _ordering_predicate(get, op, target, numeric)
    if op in ("IN", "NOT IN"):
        member = _membership(numeric, target.split(","))
        if op == "IN":
            return lambda row: member(get(row))
        return lambda row: not member(get(row))
    # Text matching is case-insensitive on ServiceNow (database collation), so fold case.
    folded = target.casefold()
    if op == "LIKE":
        return lambda row: folded in get(row).casefold()
    if op == "NOTLIKE":
        return lambda row: folded not in get(row).casefold()
    if op == "STARTSWITH":
        return lambda row: get(row).casefold().startswith(folded)
    if op == "ENDSWITH":
        return lambda row: get(row).casefold().endswith(folded)
    if op == "ISEMPTY":
        return lambda row: get(row) == ""
    if op == "ISNOTEMPTY":
        return lambda row: get(row) != ""
    if op == "BETWEEN":
        low, _, high = target.partition("@")
        above = _ordering_predicate(get, ">=", low, numeric)
        below = _ordering_predicate(get, "<=", high, numeric)
        return lambda row: above(row) and below(row)
    if op == "ANYTHING":
        return lambda row: True
    raise ValueError(f"unsupported operator {op}")


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda row: any(predicate(row) for predicate in predicates)


def _all_of(predicates: Sequence[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda row: first(row) and second(row)

    def every(row: Row) -> bool:
        # A plain loop: noticeably cheaper than all() over a generator on the hot path.
        for predicate in predicates:  # noqa: SIM110
            if not predicate(row):
                return False
        return True

    return every


@dataclass
class CompiledQuery:
    """A ready-to-run filter plus the sys_updated_on window every match must fall into."""

    predicate: Predicate | None  # None means "every row matches"
    lower: str | None  # inclusive bounds on sys_updated_on, or None when unbounded
    upper: str | None
    order_by: list[OrderBy]


def _branch_bounds(groups: list[list[Condition]]) -> tuple[str | None, str | None]:
    """The tightest sys_updated_on window implied by single-condition AND groups."""
    lower: str | None = None
    upper: str | None = None
    for group in groups:
        if len(group) != 1 or group[0].field != UPDATED_FIELD:
            continue
        condition = group[0]
        low = high = None
        if condition.op in (">", ">="):
            low = condition.value
        elif condition.op in ("<", "<="):
            high = condition.value
        elif condition.op == "=":
            low = high = condition.value
        elif condition.op == "BETWEEN":
            low, _, high = condition.value.partition("@")
        if low is not None and (lower is None or low > lower):
            lower = low
        if high is not None and (upper is None or high < upper):
            upper = high
    return lower, upper


def compile_query(
    parsed: ParsedQuery,
    known_fields: Collection[str],
    getter_for: Callable[[str], Getter],
    numeric_fields: Collection[str],
) -> CompiledQuery:
    """Compile for one table. Conditions on fields the table lacks are dropped silently.

    A field is known when some row has it, it is a ``sys_`` field, or (for dot-walks
    such as ``assigned_to.email``) its first segment is known.
    """

    def known(name: str) -> bool:
        head = name.split(".", 1)[0]
        return head in known_fields or head.startswith("sys_")

    branch_predicates: list[Predicate] = []
    windows: list[tuple[str | None, str | None]] = []
    match_all = False
    for groups in parsed.branches:
        kept_groups = [[c for c in group if known(c.field)] for group in groups]
        kept_groups = [group for group in kept_groups if group]
        windows.append(_branch_bounds(kept_groups))
        if not kept_groups:
            match_all = True
            continue
        and_parts = [
            _any_of(
                [
                    compile_condition(
                        c, getter_for(c.field), c.field.split(".")[-1] in numeric_fields
                    )
                    for c in group
                ]
            )
            for group in kept_groups
        ]
        branch_predicates.append(_all_of(and_parts))

    if match_all or not branch_predicates:
        return CompiledQuery(None, None, None, list(parsed.order_by))
    # The union of the branches' windows: bounded only if every branch is bounded.
    lowers = [low for low, _ in windows]
    uppers = [high for _, high in windows]
    lower = None if any(low is None for low in lowers) else min(lowers)  # type: ignore[type-var]
    upper = None if any(high is None for high in uppers) else max(uppers)  # type: ignore[type-var]
    return CompiledQuery(_any_of(branch_predicates), lower, upper, list(parsed.order_by))
