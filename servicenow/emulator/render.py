"""Field access and value shaping for emulator responses.

ServiceNow changes the JSON shape of a field with ``sysparm_display_value`` and
``sysparm_exclude_reference_link``; this module reproduces those shapes, including
reference links, and resolves dot-walked fields such as ``assigned_to.email``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from .store import Row, Store

Getter = Callable[[Row], str]


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
    ) -> None:
        self.store = store
        self.base_url = base_url
        self.display_value = display_value
        self.exclude_links = exclude_reference_link
        self.reference_fields = reference_fields
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
        display = display_of(self.store, ref_table, value) if ref_table and value else value
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
