"""Field access and value shaping for emulator responses.

ServiceNow changes the JSON shape of a field with ``sysparm_display_value`` and
``sysparm_exclude_reference_link``; this module reproduces those shapes, including
reference links, and resolves dot-walked fields such as ``assigned_to.email``.

Display values follow the Table API reference (sysparm_display_value,
https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html): "Choice
fields: the database value may be a number, but the display value will be more
descriptive. Date fields: the database value is in UTC format, while the display value
is based on the user's time zone. Reference fields: the database value is sys_id, but
the display value is a display field of the referenced record."
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .store import TIMESTAMP_FORMAT, Row, Store

Getter = Callable[[Row], str]
Choices = Mapping[str, Mapping[str, str]]  # field -> {stored value: label}

# A personal developer instance starts on US Pacific time with the yyyy-MM-dd HH:mm:ss
# format; a dataset's "display" section (or a user's own time_zone) overrides these.
DEFAULT_TIME_ZONE = "America/Los_Angeles"
DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# glide_date_time columns of the baseline task and user tables.
DEFAULT_DATE_FIELDS: tuple[str, ...] = (
    "sys_created_on",
    "sys_updated_on",
    "opened_at",
    "resolved_at",
    "closed_at",
    "due_date",
    "work_start",
    "work_end",
    "expected_start",
    "start_date",
    "end_date",
    "last_login_time",
)
CHOICES_STAMP = "2020-01-01 00:00:00"  # when the baseline choice lists were "installed"
# Labels of the baseline choice lists (sys_choice) for the tables the generator makes.
_IMPACT_URGENCY = {"1": "1 - High", "2": "2 - Medium", "3": "3 - Low"}
_PRIORITY = {
    "1": "1 - Critical",
    "2": "2 - High",
    "3": "3 - Moderate",
    "4": "4 - Low",
    "5": "5 - Planning",
}
_TASK_CHOICES = {"impact": _IMPACT_URGENCY, "urgency": _IMPACT_URGENCY, "priority": _PRIORITY}
DEFAULT_CHOICES: dict[str, dict[str, dict[str, str]]] = {
    "incident": {
        **_TASK_CHOICES,
        "state": {
            "1": "New",
            "2": "In Progress",
            "3": "On Hold",
            "6": "Resolved",
            "7": "Closed",
            "8": "Canceled",
        },
        "category": {
            "inquiry": "Inquiry / Help",
            "software": "Software",
            "hardware": "Hardware",
            "network": "Network",
            "database": "Database",
        },
    },
    "change_request": {
        **_TASK_CHOICES,
        "state": {
            "-5": "New",
            "-4": "Assess",
            "-3": "Authorize",
            "-2": "Scheduled",
            "-1": "Implement",
            "0": "Review",
            "3": "Closed",
            "4": "Canceled",
        },
        "type": {"normal": "Normal", "standard": "Standard", "emergency": "Emergency"},
        "risk": {"2": "High", "3": "Moderate", "4": "Low"},
    },
    "problem": {
        **_TASK_CHOICES,
        "state": {
            "101": "New",
            "102": "Assess",
            "103": "Root Cause Analysis",
            "104": "Fix in Progress",
            "106": "Resolved",
            "107": "Closed",
        },
    },
    "rm_story": {
        **_TASK_CHOICES,
        "state": {"-6": "Draft", "1": "Ready", "2": "Work in progress", "3": "Complete"},
    },
    "sc_req_item": {
        **_TASK_CHOICES,
        "state": {"1": "Open", "2": "Work in Progress", "3": "Closed Complete"},
    },
}


def choice_rows(choices: dict[str, dict[str, dict[str, str]]]) -> list[dict[str, str]]:
    """The choice lists as sys_choice records (name = table, element = field), as an
    instance holds them: what a client reads to label values without asking every page
    for display values."""
    rows = []
    for table, by_field in choices.items():
        for field, labels in by_field.items():
            for sequence, (value, label) in enumerate(labels.items()):
                rows.append(
                    {
                        # Stable ids: the same choice keeps its sys_id across restarts.
                        "sys_id": hashlib.md5(  # noqa: S324 (an id, not a secret)
                            f"{table}.{field}.{value}".encode()
                        ).hexdigest(),
                        "name": table,
                        "element": field,
                        "value": value,
                        "label": label,
                        "language": "en",
                        "inactive": "false",
                        "sequence": str(sequence),
                        "sys_created_on": CHOICES_STAMP,
                        "sys_updated_on": CHOICES_STAMP,
                        "sys_mod_count": "0",
                    }
                )
    return rows


def time_zone(name: str | None) -> tzinfo:
    """The zone for ``name``; UTC when the name is empty or unknown to this machine."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


class DateDisplay:
    """Formats stored UTC date-times in one user's zone and format, memoised per value
    (a burst of rows shares one timestamp, so a page formats few distinct values)."""

    def __init__(self, zone: tzinfo, date_format: str = DEFAULT_DATE_FORMAT) -> None:
        self.zone = zone
        self.date_format = date_format
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        shown = self._cache.get(value)
        if shown is None:
            try:
                moment = datetime.strptime(value, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                shown = value  # a date-only or malformed value is shown as stored
            else:
                shown = moment.astimezone(self.zone).strftime(self.date_format)
            self._cache[value] = shown
        return shown


def make_getter(store: Store, reference_fields: Mapping[str, str], field: str) -> Getter:
    """A function reading ``field`` from a row ("" when absent), following dot-walks.

    Callers hold ``store.lock`` while they use it (it reads other tables' live rows).
    """
    if "." not in field:
        return lambda row: row.get(field, "")
    *path, last = field.split(".")

    def walk(row: Row) -> str:
        current: Row | None = row
        for part in path:
            target_table = reference_fields.get(part)
            value = current.get(part, "") if current is not None else ""
            if not target_table or not value:
                return ""
            table = store.table(target_table)
            current = table.by_id.get(value) if table is not None else None
            if current is None:
                return ""
        return current.get(last, "") if current is not None else ""

    return walk


def display_of(store: Store, table_name: str, sys_id: str) -> str:
    """The display value ServiceNow shows for a referenced record."""
    table = store.table(table_name)
    row = table.by_id.get(sys_id) if table is not None else None
    if row is None:
        # A dangling reference shows an empty display value on ServiceNow.
        return ""
    if table_name == "sys_user":
        return row.get("name", "")
    return row.get("name") or row.get("number") or row.get("sys_id", "")


def display_for(
    store: Store,
    reference_fields: Mapping[str, str],
    choices: Choices,
    date_fields: Collection[str],
    dates: DateDisplay,
    field: str,
    value: str,
) -> str:
    """The display value of one stored ``value`` of ``field`` (its last segment when
    dot-walked): a reference's display field, a choice's label, a date in the user's zone."""
    if not value:
        return value
    name = field.rsplit(".", 1)[-1]
    ref_table = reference_fields.get(name)
    if ref_table:
        return display_of(store, ref_table, value)
    labels = choices.get(field)
    if labels is not None:
        # A value missing from the choice list shows as stored, as on ServiceNow.
        return labels.get(value, value)
    if name in date_fields:
        return dates(value)
    return value


class RowRenderer:
    """Turns stored rows into response dicts for one request's parameters."""

    def __init__(
        self,
        store: Store,
        base_url: str,
        reference_fields: Mapping[str, str],
        known_fields: Collection[str],
        fields: list[str] | None,
        display_value: str,
        exclude_reference_link: bool,
        choices: Choices | None = None,
        date_fields: Collection[str] = (),
        dates: DateDisplay | None = None,
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.display_value = display_value
        self.exclude_links = exclude_reference_link
        self.reference_fields = reference_fields
        self.choices: Choices = choices or {}
        self.date_fields = date_fields
        self.dates = dates or DateDisplay(UTC)
        # Requested fields the table does not have are simply absent from the rows.
        self.fields = (
            None if fields is None else [f for f in fields if f.split(".", 1)[0] in known_fields]
        )
        self.getters = {f: make_getter(store, reference_fields, f) for f in self.fields or ()}
        self._plain = display_value == "false" and (
            exclude_reference_link or not self._has_references()
        )

    def _has_references(self) -> bool:
        if self.fields is None:
            return True
        return any(f.rsplit(".", 1)[-1] in self.reference_fields for f in self.fields)

    def _shape(self, field: str, value: str) -> Any:
        ref_table = self.reference_fields.get(field.rsplit(".", 1)[-1])
        link = (
            f"{self.base_url}/api/now/table/{ref_table}/{value}"
            if ref_table and value and not self.exclude_links
            else None
        )
        if self.display_value == "false":
            return {"link": link, "value": value} if link else value
        display = display_for(
            self.store,
            self.reference_fields,
            self.choices,
            self.date_fields,
            self.dates,
            field,
            value,
        )
        if self.display_value == "true":
            # ServiceNow pairs the display value with the link unless links are excluded.
            return {"display_value": display, "link": link} if link else display
        shaped: dict[str, str] = {"display_value": display, "value": value}
        if link:
            shaped["link"] = link
        return shaped

    def render(self, row: Row) -> dict[str, Any]:
        if self.fields is None:
            if self._plain:
                return dict(row)
            return {field: self._shape(field, value) for field, value in row.items()}
        if self._plain:
            return {field: get(row) for field, get in self.getters.items()}
        return {field: self._shape(field, get(row)) for field, get in self.getters.items()}
