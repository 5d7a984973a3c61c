"""ServiceNow encoded queries, built rather than pasted together.

An encoded query (``sysparm_query``) is a flat string: conditions joined by ``^`` (AND),
``^OR`` (OR with the condition just before it), ``^NQ`` (a new OR-branch: lowest
precedence), and ``ORDERBY<field>`` / ``ORDERBYDESC<field>`` clauses. ServiceNow has no
escape for ``^``, so a value containing it cannot be expressed and is refused here.

This module builds such strings (``Query``), formats the UTC timestamp literals the Table
API compares against, and builds the keyset queries the incremental sync pages with:
``(ts, sys_id) > cursor AND ts <= upper``, ANDed with an admin-supplied base query even
when that base has ``^NQ`` branches of its own. It imports nothing from Django.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

__all__ = [
    "OPERATORS",
    "TIMESTAMP_FORMAT",
    "Query",
    "created_order_query",
    "format_timestamp",
    "id_keyset_query",
    "keyset_query",
    "parse_timestamp",
    "split_or_branches",
    "window_query",
]

# The Table API stores and compares glide_date_time values in UTC with one-second precision,
# in exactly this shape; the literal in a query must match it.
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
TIMESTAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")

FIELD_RE = re.compile(r"^[a-z_][a-z0-9_.]*$")

# Longest first is not needed: operators are passed explicitly, never parsed from a string.
COMPARISON_OPERATORS = frozenset({"=", "!=", ">", ">=", "<", "<="})
STRING_OPERATORS = frozenset({"STARTSWITH", "ENDSWITH", "LIKE", "NOTLIKE"})
LIST_OPERATORS = frozenset({"IN", "NOT IN"})
UNARY_OPERATORS = frozenset({"ISEMPTY", "ISNOTEMPTY"})
OPERATORS = COMPARISON_OPERATORS | STRING_OPERATORS | LIST_OPERATORS | UNARY_OPERATORS

Value = str | int | float | Decimal | bool | datetime | None


def format_timestamp(dt: datetime) -> str:
    """Return the UTC literal ``YYYY-MM-DD HH:MM:SS`` for an aware datetime.

    Sub-second precision is dropped (ServiceNow has none). A naive datetime is refused:
    guessing its zone would silently shift a cursor by hours.
    """
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_timestamp needs an aware datetime (a naive one has no zone)")
    utc = dt.astimezone(UTC)
    # Not strftime: its %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )


def parse_timestamp(value: str) -> datetime | None:
    """Parse a Table API ``YYYY-MM-DD HH:MM:SS`` value (UTC) into an aware datetime.

    An empty string (an unset date/time field) gives ``None``.
    """
    value = value.strip()
    if not value:
        return None
    # The exact shape first, then the C parser (strptime is ~20x slower; it is the largest
    # cost per row of a sync with unique timestamps, benchmarks/sync.py).
    if TIMESTAMP_RE.fullmatch(value):
        try:
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:  # shaped right, but e.g. month 13
            pass
    raise ValueError(f"not a ServiceNow timestamp (expected YYYY-MM-DD HH:MM:SS): {value!r}")


def _check_field(name: str) -> str:
    if not isinstance(name, str) or not FIELD_RE.match(name):
        raise ValueError(
            f"invalid ServiceNow field name {name!r}: use lowercase letters, digits, "
            "'_' and '.' (for dot-walking), starting with a letter or '_'"
        )
    return name


def _encode_scalar(value: Value, *, field: str) -> str:
    if isinstance(value, datetime):
        text = format_timestamp(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"unsupported value type for field {field!r}: {type(value).__name__}")
    if "^" in text:
        # There is no escape for '^' in an encoded query: it would split the condition and
        # could smuggle in an ^OR/^NQ branch, widening the query.
        raise ValueError(
            f"value for field {field!r} contains '^', which ServiceNow encoded queries "
            "cannot express (there is no escape for it)"
        )
    if "\n" in text or "\r" in text:
        raise ValueError(f"value for field {field!r} contains a line break")
    return text


def _encode_condition(field: str, op: str, value: Value | Iterable[Value]) -> str:
    _check_field(field)
    if op not in OPERATORS:
        raise ValueError(f"unsupported operator {op!r}; expected one of {sorted(OPERATORS)}")
    if op in UNARY_OPERATORS:
        if value not in (None, ""):
            raise ValueError(f"operator {op} takes no value")
        return f"{field}{op}"
    if op in LIST_OPERATORS:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"operator {op} needs a list of values")
        items = [_encode_scalar(v, field=field) for v in value]
        for item in items:
            if "," in item:
                # IN splits its operand on commas, with no quoting.
                raise ValueError(f"a value in {op} for field {field!r} contains ','")
        return f"{field}{op}{','.join(items)}"
    if value is None:
        raise ValueError(f"operator {op} needs a value (use ISEMPTY for empty fields)")
    return f"{field}{op}{_encode_scalar(value, field=field)}"  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Parsed:
    """An encoded query split into its OR-branches (token lists) and ORDERBY clauses."""

    branches: tuple[tuple[str, ...], ...]
    order: tuple[str, ...]


def _parse(encoded: str) -> _Parsed:
    branches: list[list[str]] = [[]]
    order: list[str] = []
    for token in encoded.split("^"):
        token = token.strip()
        # 'EQ' is the terminator the list UI appends when a query is copied from a filter.
        if not token or token == "EQ":
            continue
        # Field names are lowercase, so these uppercase prefixes cannot be a condition.
        # ORDERBY must be tested before OR, which is its prefix.
        if token.startswith("ORDERBY"):
            order.append(token)
        elif token.startswith("NQ"):
            branches.append([])
            if token[2:]:
                branches[-1].append(token[2:])
        else:
            branches[-1].append(token)
    kept = tuple(tuple(b) for b in branches if b)
    return _Parsed(branches=kept, order=tuple(order))


def split_or_branches(encoded: str) -> list[str]:
    """Split an encoded query on ``^NQ`` into its branches, dropping ORDERBY clauses.

    ``"a=1^ORa=2^NQb=3^ORDERBYnumber"`` gives ``["a=1^ORa=2", "b=3"]``; an empty query
    gives ``[]``.
    """
    return ["^".join(branch) for branch in _parse(encoded).branches]


def _join(branches: Sequence[Sequence[str]], order: Sequence[str]) -> str:
    parts = ["^NQ".join("^".join(b) for b in branches if b)] if branches else []
    parts.extend(order)
    return "^".join(p for p in parts if p)


def _distribute(
    left: Sequence[Sequence[str]], right: Sequence[Sequence[str]]
) -> tuple[tuple[str, ...], ...]:
    """AND two branch lists: (L1 OR L2) AND (R1 OR R2) == L1R1 OR L1R2 OR L2R1 OR L2R2.

    Plain concatenation would be wrong because ^NQ binds loosest: ``L1^NQL2^R1`` means
    ``L1 OR (L2 AND R1)``.
    """
    if not left:
        return tuple(tuple(b) for b in right)
    if not right:
        return tuple(tuple(b) for b in left)
    return tuple(tuple(lb) + tuple(rb) for lb in left for rb in right)


@dataclass(frozen=True)
class Query:
    """An immutable encoded-query builder; every method returns a new ``Query``.

    ``where``/``or_where`` extend the current OR-branch exactly as the encoded string
    reads (``^`` / ``^OR``); ``new_query`` starts a new branch (``^NQ``); ``raw`` ANDs a
    whole admin-supplied query onto every branch; ``order_by`` clauses always come last.

    >>> str(Query().where("active", "=", True).or_where("state", "IN", ["1", "2"])
    ...     .order_by("number"))
    'active=true^ORstateIN1,2^ORDERBYnumber'
    """

    _branches: tuple[tuple[str, ...], ...] = ()
    _order: tuple[str, ...] = ()
    _open_branch: bool = False  # new_query() was called and the next where() starts a branch

    def where(self, field: str, op: str, value: Value | Iterable[Value] = None) -> Query:
        """AND a condition onto the current branch."""
        condition = _encode_condition(field, op, value)
        if not self._branches or self._open_branch:
            return replace(self, _branches=(*self._branches, (condition,)), _open_branch=False)
        *head, last = self._branches
        return replace(self, _branches=(*head, (*last, condition)))

    def or_where(self, field: str, op: str, value: Value | Iterable[Value] = None) -> Query:
        """OR a condition with the condition just before it (``^OR``)."""
        if not self._branches or self._open_branch:
            raise ValueError("or_where needs a preceding condition in the same branch")
        condition = _encode_condition(field, op, value)
        *head, last = self._branches
        return replace(self, _branches=(*head, (*last, f"OR{condition}")))

    def new_query(self) -> Query:
        """Start a new OR-branch (``^NQ``); the following ``where`` opens it."""
        if not self._branches:
            raise ValueError("new_query needs at least one condition before it")
        return replace(self, _open_branch=True)

    def order_by(self, field: str, *, desc: bool = False) -> Query:
        """Add an ORDERBY / ORDERBYDESC clause (emitted at the very end, in call order)."""
        _check_field(field)
        clause = f"ORDERBYDESC{field}" if desc else f"ORDERBY{field}"
        return replace(self, _order=(*self._order, clause))

    def raw(self, encoded: str) -> Query:
        """AND an admin-supplied encoded query onto this one.

        The text is trusted as written (it comes from an admin's filter), but its
        ``^NQ`` branches are distributed so the meaning stays ``(self) AND (encoded)``;
        its ORDERBY clauses are appended after ours.
        """
        parsed = _parse(encoded)
        return replace(
            self,
            _branches=_distribute(self._branches, parsed.branches),
            _order=(*self._order, *parsed.order),
            _open_branch=False,
        )

    @property
    def encoded(self) -> str:
        return _join(self._branches, self._order)

    def __str__(self) -> str:
        return self.encoded


def _keyset(
    base: str,
    keyset_branches: Sequence[Sequence[str]],
    order_fields: Sequence[str],
) -> str:
    # ORDERBY clauses in the base are dropped: paging is only correct in our order.
    base_branches = _parse(base).branches
    branches = _distribute(base_branches, keyset_branches)
    return _join(branches, [f"ORDERBY{f}" for f in order_fields])


def keyset_query(
    *,
    base: str,
    after: tuple[datetime, str] | None,
    upper: datetime | None,
    ts_field: str = "sys_updated_on",
) -> str:
    """Encoded query for the next page after cursor ``(T, ID)``, bounded above by ``U``.

    Rows come in ``(ts, sys_id)`` order and match ``BASE AND (ts, sys_id) > (T, ID) AND
    ts <= U``::

        BASE^ts>T^ts<=U^NQBASE^ts=T^sys_id>ID^ts<=U^ORDERBYts^ORDERBYsys_id

    The ``ts = T`` branch is what makes many rows sharing one second safe to page through.
    ``after=None`` starts from the beginning; ``upper=None`` leaves the top open. When
    BASE has ``^NQ`` branches, each is combined with each keyset branch.
    """
    _check_field(ts_field)
    upper_terms: tuple[str, ...] = ()
    if upper is not None:
        upper_terms = (f"{ts_field}<={format_timestamp(upper)}",)
    if after is None:
        keyset_branches: list[tuple[str, ...]] = [upper_terms]
    else:
        after_ts, after_id = after
        t = format_timestamp(after_ts)
        sys_id = _encode_scalar(after_id, field="sys_id")
        keyset_branches = [
            (f"{ts_field}>{t}", *upper_terms),
            (f"{ts_field}={t}", f"sys_id>{sys_id}", *upper_terms),
        ]
    return _keyset(base, [b for b in keyset_branches if b], [ts_field, "sys_id"])


def id_keyset_query(*, base: str, after_sys_id: str | None) -> str:
    """Encoded query paging a whole table by sys_id alone (for the reconcile pass).

    ``BASE^sys_id>ID^ORDERBYsys_id``, with BASE's ``^NQ`` branches distributed.
    """
    keyset_branches: list[tuple[str, ...]] = []
    if after_sys_id is not None:
        keyset_branches = [(f"sys_id>{_encode_scalar(after_sys_id, field='sys_id')}",)]
    return _keyset(base, keyset_branches, ["sys_id"])


CREATED_FIELD = "sys_created_on"


def window_query(*, base: str, created_from: datetime | None, created_to: datetime | None) -> str:
    """BASE restricted to one backfill window, ``created_from <= sys_created_on < created_to``.

    A window open below also takes the rows with no sys_created_on (a NULL never compares),
    so that every row falls in exactly one window::

        BASE^sys_created_onISEMPTY^ORsys_created_on<TO       (the first window)
        BASE^sys_created_on>=FROM^sys_created_on<TO
        BASE^sys_created_on>=FROM                             (the last)

    Both open: BASE unchanged. BASE's ``^NQ`` branches are each given the window (``^OR``
    binds to the condition just before it, so the pair stays one group in every branch).
    """
    terms: list[str] = []
    if created_from is None and created_to is not None:
        terms = [f"{CREATED_FIELD}ISEMPTY", f"OR{CREATED_FIELD}<{format_timestamp(created_to)}"]
    else:
        if created_from is not None:
            terms.append(f"{CREATED_FIELD}>={format_timestamp(created_from)}")
        if created_to is not None:
            terms.append(f"{CREATED_FIELD}<{format_timestamp(created_to)}")
    if not terms:
        return base
    parsed = _parse(base)
    return _join(_distribute(parsed.branches, [terms]), parsed.order)


def created_order_query(*, base: str) -> str:
    """BASE's rows that have a sys_created_on, oldest first: with an offset and a limit of
    one, the row at a given rank, which is how a backfill finds its window boundaries.

    ``BASE^sys_created_onISNOTEMPTY^ORDERBYsys_created_on`` (BASE's own ORDERBY dropped)."""
    branches = _distribute(_parse(base).branches, [(f"{CREATED_FIELD}ISNOTEMPTY",)])
    return _join(branches, [f"ORDERBY{CREATED_FIELD}"])
