"""HTML record pages for the links ladder_tracker shows back to ServiceNow.

ladder_tracker links a work item to ``{instance}/nav_to.do?uri={table}.do?sys_id={id}``
(``servicenow.models``), the form URL of a real instance. The emulator answers it (and
``/{table}.do?sys_id=...``) with a plain read-only page of the record's fields and their
display values, so the demo's links lead somewhere. Unlike a real instance it asks for no
login: it serves demo and test data on loopback.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import parse_qs, quote

from .store import Row

FORM_PATH = re.compile(r"^/(?P<table>[a-z0-9_]+)\.do$")
DisplayFor = Callable[[str, str], str]  # (field, stored value) -> display value

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#1f2933}"
    "table{border-collapse:collapse}th,td{text-align:left;padding:.3rem .8rem;"
    "border-bottom:1px solid #e4e7eb;vertical-align:top}th{color:#52606d;font-weight:600}"
    "code{color:#7b8794;font-size:.85em}"
)


def form_target(path: str, query: str) -> tuple[str, str] | None:
    """(table, sys_id) that a ``nav_to.do`` or ``{table}.do`` URL points at, else None."""
    params = parse_qs(query, keep_blank_values=True)
    if path == "/nav_to.do":
        # The uri parameter holds a second URL, often left unencoded: table.do?sys_id=X.
        uri = (params.get("uri") or [""])[0]
        form, _, inner = uri.lstrip("/").partition("?")
        match = FORM_PATH.match("/" + form)
        sys_id = (parse_qs(inner).get("sys_id") or [""])[0]
        return (match["table"], sys_id) if match and sys_id else None
    match = FORM_PATH.match(path)
    sys_id = (params.get("sys_id") or [""])[0]
    return (match["table"], sys_id) if match and sys_id else None


def _page(title: str, body: str) -> bytes:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} | ServiceNow emulator</title><style>{_STYLE}</style>"
        f"</head><body>{body}</body></html>"
    ).encode()


def not_found_page(table: str, sys_id: str) -> bytes:
    return _page(
        "Record not found",
        f"<h1>Record not found</h1><p>No record <code>{html.escape(sys_id)}</code> in "
        f"<code>{html.escape(table)}</code>.</p>",
    )


def record_page(
    table: str,
    row: Row,
    display_for: DisplayFor,
    reference_fields: dict[str, str],
) -> bytes:
    """The record's fields in name order: display value, and the stored value when it
    differs; a reference links to the referenced record's own page."""
    heading = row.get("number") or row.get("name") or row["sys_id"]
    summary = row.get("short_description", "")
    lines: list[str] = []
    for field in sorted(row):
        value = row[field]
        shown = html.escape(display_for(field, value))
        target = reference_fields.get(field)
        if target and value:
            href = f"/nav_to.do?uri={quote(f'{target}.do?sys_id={value}', safe='')}"
            shown = f'<a href="{html.escape(href)}">{shown or html.escape(value)}</a>'
        stored = "" if display_for(field, value) == value else f" <code>{html.escape(value)}</code>"
        lines.append(f"<tr><th>{html.escape(field)}</th><td>{shown}{stored}</td></tr>")
    body = (
        f"<h1>{html.escape(heading)}</h1>"
        + (f"<p>{html.escape(summary)}</p>" if summary else "")
        + f"<p><code>{html.escape(table)}</code> · <code>{html.escape(row['sys_id'])}</code></p>"
        + f"<table>{''.join(lines)}</table>"
    )
    return _page(f"{heading} {summary}".strip(), body)
