"""Choice labels read once per run from the instance's sys_choice table, so pages can come
as raw values (sysparm_display_value=false): half the bytes of {value, display_value} on
every field, and half the instance's work. No Django here."""

from __future__ import annotations

from collections.abc import Iterable

from ..client import ServiceNowClient, ServiceNowError, TransactionCancelledError, field_value
from ..query import Query
from .paging import MIN_PAGE_SIZE

# A table's fields inherit their choices from its parent (incident from task: priority,
# impact, urgency are defined on task); the table's own list wins where both exist.
PARENT_TABLE = "task"
CHOICE_PAGE = 1000
MAX_CHOICES = 5000  # more than any real list of a handful of fields; a bound, not a limit

Labels = dict[str, dict[str, str]]  # {field: {value: label}}


def choice_labels(client: ServiceNowClient, *, table: str, fields: Iterable[str]) -> Labels | None:
    """{field: {value: label}} of `table`'s active English choices for `fields`, or None
    when sys_choice cannot be read (no role for it, or the instance refused): the caller
    then asks for display values on every page instead, as before."""
    fields = sorted(set(fields))
    if not fields:
        return {}
    names = [table] if table == PARENT_TABLE else [table, PARENT_TABLE]
    query = str(
        Query()
        .where("name", "IN", names)
        .where("element", "IN", fields)
        .where("inactive", "=", False)
        .where("language", "=", "en")
        .order_by("sys_id")
    )
    rows: list[dict] = []
    size = CHOICE_PAGE
    try:
        while len(rows) < MAX_CHOICES:
            try:
                page = client.get_page(
                    "sys_choice",
                    query=query,
                    fields=["name", "element", "value", "label"],
                    limit=size,
                    offset=len(rows) or None,
                )
            except TransactionCancelledError:
                if size <= MIN_PAGE_SIZE:
                    raise
                size = max(MIN_PAGE_SIZE, size // 2)  # as the pager does: ask for less
                continue
            rows += page.rows
            if len(page.rows) < size:
                break
    except ServiceNowError as exc:
        if exc.transient:
            raise  # worth the run's retry, like any page
        return None
    own: Labels = {f: {} for f in fields}
    inherited: Labels = {f: {} for f in fields}
    for row in rows:
        element, value = field_value(row.get("element")), field_value(row.get("value"))
        if element not in own:
            continue
        target = own if field_value(row.get("name")) == table else inherited
        target[element][value] = field_value(row.get("label"))
    # A field whose own list exists uses only it (a table may narrow its parent's choices).
    return {f: own[f] or inherited[f] for f in fields}


def label_of(labels: Labels, field: str, value: str) -> str:
    """The label of `value` of `field`, or "" when the list has none."""
    return labels.get(field, {}).get(value, "")
