"""Tests for servicenow.query: timestamps, the Query builder and keyset paging.

The property tests run generated queries through a tiny reference evaluator written here,
independently of the module under test, that applies ServiceNow's encoded-query rules
(``^`` AND, ``^OR`` with the previous condition, ``^NQ`` lowest-precedence OR, ORDERBY).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicenow.query import (
    Query,
    format_timestamp,
    id_keyset_query,
    keyset_query,
    parse_timestamp,
    split_or_branches,
)

# --- reference evaluator ------------------------------------------------------------------

_CONDITION = re.compile(r"^(?P<field>[a-z_][a-z0-9_.]*)(?P<op>!=|>=|<=|=|>|<)(?P<value>.*)$")
_COMPARE = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def _parse_condition(text: str):
    m = _CONDITION.match(text)
    assert m, f"reference evaluator cannot parse condition {text!r}"
    return m["field"], m["op"], m["value"]


def evaluate(encoded: str, rows: list[dict]) -> list[dict]:
    """Rows matching ``encoded``, sorted by its ORDERBY clauses (string comparison)."""
    branches: list[list[list[tuple]]] = [[]]  # branch -> AND of groups -> OR of conditions
    order: list[tuple[str, bool]] = []
    for token in encoded.split("^"):
        if not token:
            continue
        if token.startswith("ORDERBYDESC"):
            order.append((token[len("ORDERBYDESC") :], True))
        elif token.startswith("ORDERBY"):
            order.append((token[len("ORDERBY") :], False))
        elif token.startswith("NQ"):
            branches.append([[_parse_condition(token[2:])]])
        elif token.startswith("OR"):
            branches[-1][-1].append(_parse_condition(token[2:]))
        else:
            branches[-1].append([_parse_condition(token)])
    branches = [b for b in branches if b]

    def holds(row: dict, cond: tuple) -> bool:
        field, op, value = cond
        return _COMPARE[op](row[field], value)

    def matches(row: dict) -> bool:
        if not branches:
            return True
        return any(all(any(holds(row, c) for c in group) for group in b) for b in branches)

    result = [r for r in rows if matches(r)]
    for field, desc in reversed(order):  # stable sorts, least significant key first
        result.sort(key=lambda r, f=field: r[f], reverse=desc)
    return result


# --- strategies ---------------------------------------------------------------------------

# Few distinct seconds, so many rows share one timestamp (the case keyset paging must handle).
SECONDS = [datetime(2024, 3, 4, 10, 15, s, tzinfo=UTC) for s in range(4)]
TS_LITERALS = [format_timestamp(dt) for dt in SECONDS]
SYS_IDS = st.text(alphabet="09af", min_size=1, max_size=2)

rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "sys_id": SYS_IDS,
            "sys_updated_on": st.sampled_from(TS_LITERALS),
            "state": st.sampled_from(["1", "2", "3"]),
            "active": st.sampled_from(["true", "false"]),
        }
    ),
    unique_by=lambda r: r["sys_id"],
    max_size=25,
)

condition_strategy = st.one_of(
    st.tuples(st.just("state"), st.sampled_from(sorted(_COMPARE)), st.sampled_from("123")),
    st.tuples(st.just("active"), st.sampled_from(["=", "!="]), st.sampled_from(["true", "false"])),
    st.tuples(
        st.just("sys_updated_on"), st.sampled_from(sorted(_COMPARE)), st.sampled_from(TS_LITERALS)
    ),
).map(lambda c: f"{c[0]}{c[1]}{c[2]}")

# A branch is an AND of groups; a group is conditions joined by ^OR.
branch_strategy = st.lists(
    st.lists(condition_strategy, min_size=1, max_size=2).map("^OR".join), min_size=1, max_size=3
).map("^".join)

# Base queries sometimes carry their own ORDERBY, which keyset_query must drop.
base_strategy = st.tuples(
    st.lists(branch_strategy, max_size=3).map("^NQ".join),
    st.sampled_from(["", "ORDERBYDESCstate", "ORDERBYactive"]),
).map(lambda t: "^".join(p for p in t if p))

cursor_strategy = st.none() | st.tuples(st.sampled_from(SECONDS), SYS_IDS)
upper_strategy = st.none() | st.sampled_from(SECONDS)


def _key(row: dict) -> tuple[str, str]:
    return row["sys_updated_on"], row["sys_id"]


def _expected(rows, base, cursor, upper) -> list[dict]:
    matching = evaluate(base, rows)
    if cursor is not None:
        after = (format_timestamp(cursor[0]), cursor[1])
        matching = [r for r in matching if _key(r) > after]
    if upper is not None:
        matching = [r for r in matching if r["sys_updated_on"] <= format_timestamp(upper)]
    return sorted(matching, key=_key)


# --- keyset properties --------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(rows=rows_strategy, base=base_strategy, cursor=cursor_strategy, upper=upper_strategy)
def test_keyset_query_matches_exactly_the_rows_after_the_cursor(rows, base, cursor, upper):
    encoded = keyset_query(base=base, after=cursor, upper=upper)

    assert evaluate(encoded, rows) == _expected(rows, base, cursor, upper)


@settings(max_examples=300, deadline=None)
@given(
    rows=rows_strategy,
    base=base_strategy,
    cursor=cursor_strategy,
    upper=upper_strategy,
    page_size=st.integers(min_value=1, max_value=4),
)
def test_paging_with_the_keyset_visits_every_row_exactly_once(rows, base, cursor, upper, page_size):
    visited: list[dict] = []
    after = cursor
    for _ in range(len(rows) + 2):
        page = evaluate(keyset_query(base=base, after=after, upper=upper), rows)[:page_size]
        if not page:
            break
        visited.extend(page)
        last = page[-1]
        after = (parse_timestamp(last["sys_updated_on"]), last["sys_id"])

    assert visited == _expected(rows, base, cursor, upper)


@settings(max_examples=200, deadline=None)
@given(
    rows=rows_strategy,
    base=base_strategy,
    page_size=st.integers(min_value=1, max_value=4),
)
def test_id_keyset_paging_visits_every_matching_row_once_in_sys_id_order(rows, base, page_size):
    visited: list[dict] = []
    after = None
    for _ in range(len(rows) + 2):
        page = evaluate(id_keyset_query(base=base, after_sys_id=after), rows)[:page_size]
        if not page:
            break
        visited.extend(page)
        after = page[-1]["sys_id"]

    assert visited == sorted(evaluate(base, rows), key=lambda r: r["sys_id"])


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, base=base_strategy, state=st.sampled_from("123"))
def test_raw_ands_a_base_with_nq_branches_without_changing_its_meaning(rows, base, state):
    encoded = Query().where("state", "!=", state).raw(base).encoded

    expected = [r for r in evaluate(base, rows) if r["state"] != state]
    assert sorted(evaluate(encoded, rows), key=_key) == sorted(expected, key=_key)


# --- keyset exact strings -----------------------------------------------------------------

T = datetime(2024, 3, 4, 10, 15, 2, tzinfo=UTC)
U = datetime(2024, 3, 5, 0, 0, 0, tzinfo=UTC)
ID = "9d385017c611228701d22104cc95c371"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"base": "active=true", "after": (T, ID), "upper": U},
            "active=true^sys_updated_on>2024-03-04 10:15:02^sys_updated_on<=2024-03-05 00:00:00"
            "^NQactive=true^sys_updated_on=2024-03-04 10:15:02^sys_id>" + ID + ""
            "^sys_updated_on<=2024-03-05 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id",
            id="cursor-and-upper",
        ),
        pytest.param(
            {"base": "active=true", "after": None, "upper": U},
            "active=true^sys_updated_on<=2024-03-05 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id",
            id="no-cursor",
        ),
        pytest.param(
            {"base": "active=true", "after": (T, ID), "upper": None},
            "active=true^sys_updated_on>2024-03-04 10:15:02^NQactive=true"
            "^sys_updated_on=2024-03-04 10:15:02^sys_id>" + ID + ""
            "^ORDERBYsys_updated_on^ORDERBYsys_id",
            id="no-upper",
        ),
        pytest.param(
            {"base": "", "after": None, "upper": None},
            "ORDERBYsys_updated_on^ORDERBYsys_id",
            id="nothing",
        ),
        pytest.param(
            {"base": "", "after": (T, ID), "upper": U, "ts_field": "sys_created_on"},
            "sys_created_on>2024-03-04 10:15:02^sys_created_on<=2024-03-05 00:00:00"
            "^NQsys_created_on=2024-03-04 10:15:02^sys_id>" + ID + ""
            "^sys_created_on<=2024-03-05 00:00:00^ORDERBYsys_created_on^ORDERBYsys_id",
            id="empty-base-other-ts-field",
        ),
        pytest.param(
            {"base": "active=true^ORDERBYDESCnumber^EQ", "after": None, "upper": None},
            "active=true^ORDERBYsys_updated_on^ORDERBYsys_id",
            id="base-orderby-and-eq-stripped",
        ),
        pytest.param(
            {"base": "state=1^ORstate=2^NQpriority=1", "after": (T, "b"), "upper": U},
            "state=1^ORstate=2^sys_updated_on>2024-03-04 10:15:02"
            "^sys_updated_on<=2024-03-05 00:00:00"
            "^NQstate=1^ORstate=2^sys_updated_on=2024-03-04 10:15:02^sys_id>b"
            "^sys_updated_on<=2024-03-05 00:00:00"
            "^NQpriority=1^sys_updated_on>2024-03-04 10:15:02^sys_updated_on<=2024-03-05 00:00:00"
            "^NQpriority=1^sys_updated_on=2024-03-04 10:15:02^sys_id>b"
            "^sys_updated_on<=2024-03-05 00:00:00^ORDERBYsys_updated_on^ORDERBYsys_id",
            id="base-nq-cross-product",
        ),
    ],
)
def test_keyset_query_exact_encoding(kwargs, expected):
    assert keyset_query(**kwargs) == expected


def test_keyset_query_converts_the_cursor_to_utc():
    cest = timezone(timedelta(hours=2))
    encoded = keyset_query(
        base="", after=(datetime(2024, 6, 1, 12, 0, 0, tzinfo=cest), "a"), upper=None
    )

    assert encoded.startswith("sys_updated_on>2024-06-01 10:00:00^")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"after": (datetime(2024, 1, 1), "a"), "upper": None}, id="naive-cursor"),
        pytest.param({"after": None, "upper": datetime(2024, 1, 1)}, id="naive-upper"),
        pytest.param({"after": (T, "a^NQactive=false"), "upper": None}, id="caret-in-sys-id"),
        pytest.param({"after": None, "upper": None, "ts_field": "Bad"}, id="bad-ts-field"),
    ],
)
def test_keyset_query_refuses_bad_input(kwargs):
    with pytest.raises(ValueError):
        keyset_query(base="", **kwargs)


@pytest.mark.parametrize(
    ("base", "after", "expected"),
    [
        pytest.param("", None, "ORDERBYsys_id", id="all"),
        pytest.param("active=true", "abc", "active=true^sys_id>abc^ORDERBYsys_id", id="after"),
        pytest.param(
            "a=1^NQb=2^ORDERBYnumber",
            "abc",
            "a=1^sys_id>abc^NQb=2^sys_id>abc^ORDERBYsys_id",
            id="nq-distributed",
        ),
    ],
)
def test_id_keyset_query_exact_encoding(base, after, expected):
    assert id_keyset_query(base=base, after_sys_id=after) == expected


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        pytest.param("", [], id="empty"),
        pytest.param("a=1^ORa=2", ["a=1^ORa=2"], id="one-branch"),
        pytest.param("a=1^NQb=2^ORDERBYnumber^EQ", ["a=1", "b=2"], id="two-branches"),
        pytest.param("^NQa=1^NQ", ["a=1"], id="empty-branches-dropped"),
    ],
)
def test_split_or_branches(encoded, expected):
    assert split_or_branches(encoded) == expected


# --- timestamps ---------------------------------------------------------------------------


def test_format_timestamp_converts_to_utc_and_drops_microseconds():
    dt = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5)))

    assert format_timestamp(dt) == "2024-01-02 08:04:05"


def test_format_timestamp_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"):
        format_timestamp(datetime(2024, 1, 2, 3, 4, 5))


def test_parse_timestamp_gives_aware_utc():
    assert parse_timestamp("2024-01-02 08:04:05") == datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC)


def test_parse_timestamp_of_empty_value_is_none():
    assert parse_timestamp("") is None


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-02T08:04:05",
        "02/01/2024 08:04:05",
        "yesterday",
        "2024-13-02 08:04:05",
        "2024-1-2 8:4:5",
    ],
)
def test_parse_timestamp_refuses_other_formats(text):
    with pytest.raises(ValueError, match="YYYY-MM-DD HH:MM:SS"):
        parse_timestamp(text)


@given(st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)))
def test_parse_timestamp_round_trips_format_timestamp(dt):
    assert parse_timestamp(format_timestamp(dt)) == dt


# --- builder ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        pytest.param("active", "=", True, "active=true", id="eq-bool"),
        pytest.param("state", "!=", 7, "state!=7", id="ne-int"),
        pytest.param("priority", ">", "2", "priority>2", id="gt"),
        pytest.param("priority", ">=", "2", "priority>=2", id="ge"),
        pytest.param("priority", "<", "2", "priority<2", id="lt"),
        pytest.param("priority", "<=", "2", "priority<=2", id="le"),
        pytest.param("state", "IN", ["1", "2", 3], "stateIN1,2,3", id="in"),
        pytest.param("state", "NOT IN", ("6", "7"), "stateNOT IN6,7", id="not-in"),
        pytest.param("number", "STARTSWITH", "INC", "numberSTARTSWITHINC", id="startswith"),
        pytest.param("number", "ENDSWITH", "42", "numberENDSWITH42", id="endswith"),
        pytest.param("short_description", "LIKE", "vpn", "short_descriptionLIKEvpn", id="like"),
        pytest.param("short_description", "NOTLIKE", "x", "short_descriptionNOTLIKEx", id="nl"),
        pytest.param("assigned_to", "ISEMPTY", None, "assigned_toISEMPTY", id="isempty"),
        pytest.param("assigned_to", "ISNOTEMPTY", None, "assigned_toISNOTEMPTY", id="notempty"),
        pytest.param("assigned_to.email", "=", "a@b.c", "assigned_to.email=a@b.c", id="dotwalk"),
        pytest.param(
            "sys_updated_on",
            ">",
            datetime(2024, 1, 2, 10, 0, 0, tzinfo=timezone(timedelta(hours=1))),
            "sys_updated_on>2024-01-02 09:00:00",
            id="datetime-utc",
        ),
    ],
)
def test_where_encodes_each_operator(field, op, value, expected):
    assert Query().where(field, op, value).encoded == expected


def test_builder_combines_and_or_nq_and_puts_order_by_last():
    q = (
        Query()
        .order_by("number", desc=True)
        .where("active", "=", True)
        .or_where("state", "=", "1")
        .where("priority", "<=", 2)
        .new_query()
        .where("state", "=", "6")
        .order_by("sys_id")
    )

    assert str(q) == "active=true^ORstate=1^priority<=2^NQstate=6^ORDERBYDESCnumber^ORDERBYsys_id"
    assert q.encoded == str(q)


def test_builder_is_immutable():
    base = Query().where("active", "=", True)
    base.where("state", "=", "1")
    base.order_by("number")

    assert base.encoded == "active=true"


def test_raw_distributes_over_the_admin_query_branches_and_keeps_its_order():
    q = Query().where("active", "=", True).raw("state=1^NQpriority=1^ORDERBYnumber")

    assert q.encoded == "active=true^state=1^NQactive=true^priority=1^ORDERBYnumber"


def test_raw_of_empty_query_changes_nothing():
    assert Query().where("active", "=", True).raw("").encoded == "active=true"


def test_raw_then_where_extends_the_last_branch_as_the_string_reads():
    q = Query().raw("a=1^NQb=2").where("c", "=", "3")

    assert q.encoded == "a=1^NQb=2^c=3"


@pytest.mark.parametrize(
    "name", ["Active", "1state", "state-x", "state^x", "", "state x", "ORDERBYx", "NQx"]
)
def test_invalid_field_names_are_refused(name):
    with pytest.raises(ValueError, match="invalid ServiceNow field name"):
        Query().where(name, "=", "1")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("a^NQactive=false", id="nq-injection"),
        pytest.param("x^ORactive=true", id="or-injection"),
        pytest.param(["1", "2^3"], id="in-list"),
    ],
)
def test_values_with_a_caret_are_refused_with_a_clear_message(value):
    op = "IN" if isinstance(value, list) else "="
    with pytest.raises(ValueError, match=r"contains '\^'.*no escape"):
        Query().where("state", op, value)


@pytest.mark.parametrize(
    ("op", "value", "message"),
    [
        pytest.param("~", "1", "unsupported operator", id="unknown-op"),
        pytest.param("IN", "1,2", "needs a list", id="in-needs-list"),
        pytest.param("IN", ["a,b"], "contains ','", id="comma-in-list-value"),
        pytest.param("ISEMPTY", "x", "takes no value", id="unary-with-value"),
        pytest.param("=", None, "needs a value", id="missing-value"),
        pytest.param("=", datetime(2024, 1, 1), "aware", id="naive-datetime"),
        pytest.param("=", "a\nb", "line break", id="newline"),
        pytest.param("=", object(), "unsupported value type", id="object"),
    ],
)
def test_bad_conditions_are_refused(op, value, message):
    with pytest.raises(ValueError, match=message):
        Query().where("state", op, value)


def test_or_where_and_new_query_need_a_preceding_condition():
    with pytest.raises(ValueError, match="preceding condition"):
        Query().or_where("state", "=", "1")
    with pytest.raises(ValueError, match="at least one condition"):
        Query().new_query()
    with pytest.raises(ValueError, match="preceding condition"):
        Query().where("a", "=", "1").new_query().or_where("b", "=", "2")


def test_order_by_alone():
    assert Query().order_by("sys_updated_on").order_by("sys_id").encoded == (
        "ORDERBYsys_updated_on^ORDERBYsys_id"
    )
