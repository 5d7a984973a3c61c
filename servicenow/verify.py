"""Verify: re-read work items from ServiceNow and compare each with a snapshot of it.

Reads only (no table here is written): `records_verify` takes (work item, snapshot) pairs,
asks each connection for its records with one batched `sys_id IN (…)` query per table and
chunk (`VERIFY_CHUNK` sys_ids), through the same client and fields as the sync, builds the
live record's snapshot exactly as the sync would (`work_item_snapshot`), and answers per
pair `match`, `changed` (with the field diff) or `deleted` (the instance no longer returns
it). The evidence and packet services record the answers (apps/evidence/verification.py).

A work item whose connection cannot be used (its source disabled, its connection's secret
unreadable, the address refused) is refused before anything is sent: `VerifyUnavailable`,
a 409 that changes nothing. An instance that fails to answer is `VerifyFailed`, a 502.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

from ladder_tracker.errors import ApplicationError, ConflictError

from .client import ConfigurationError, ServiceNowError, field_display, field_value
from .models import WorkItem
from .query import Query
from .secrets import SecretUnreadable
from .services import connection_client_config
from .sync.fields import DISPLAY_FIELDS, SNAPSHOT_FIELDS, WORK_ITEM_FIELDS
from .sync.paging import parse_ts
from .sync.workitems import work_item_snapshot

VERIFY_CHUNK = 100  # sys_ids per request: ~3.4 kB of query string
# What a diff compares: the record's fields an evidence item keeps, and its version.
COMPARED_FIELDS = (*SNAPSHOT_FIELDS, "sys_updated_on")
LIVE_FIELDS = tuple(sorted(set(WORK_ITEM_FIELDS) | set(SNAPSHOT_FIELDS)))


class Result:
    MATCH = "match"
    CHANGED = "changed"
    DELETED = "deleted"


class VerifyUnavailable(ConflictError):
    """The record cannot be re-read: its connection or source is gone or disabled. 409."""

    code = "servicenow_unavailable"


class VerifyFailed(ApplicationError):
    """ServiceNow did not answer (unreachable, refused the credentials, an error page). 502."""

    status_code = 502
    code = "servicenow_failed"


class RecordCheck(NamedTuple):
    result: str  # Result.*
    diff: list[dict]  # [{"field", "snapshot", "live"}] when changed


def work_item_unavailable(work_item: WorkItem | None) -> str | None:
    """Why this work item cannot be re-read now, or None. Reads the work item's source and
    connection (select them related)."""
    if work_item is None:
        return "its ServiceNow record is no longer held here (the connection was removed)"
    if not work_item.source.enabled:
        return f"its source {work_item.source.name!r} is disabled"
    return None


def _flat(snapshot: dict) -> dict[str, str]:
    """The compared values of a snapshot: its fields, and its labels as display.<field> when
    it kept labels (a snapshot from before labels were kept is not compared on them)."""
    out = {f: str(snapshot.get(f, "") or "") for f in COMPARED_FIELDS}
    display = snapshot.get("display")
    if isinstance(display, dict):
        for f in DISPLAY_FIELDS:
            out[f"display.{f}"] = str(display.get(f, "") or "")
    return out


def snapshot_compare(stored: dict, live: dict | None) -> RecordCheck:
    """A stored snapshot against the live record's (None: the instance did not return it)."""
    if live is None:
        return RecordCheck(Result.DELETED, [])
    before, after = _flat(stored), _flat(live)
    if "display.state" not in before:  # compare labels only when the stored copy has them
        after = {k: v for k, v in after.items() if not k.startswith("display.")}
    diff = [
        {"field": f, "snapshot": before.get(f, ""), "live": after.get(f, "")}
        for f in sorted(set(before) | set(after))
        if before.get(f, "") != after.get(f, "")
    ]
    return RecordCheck(Result.CHANGED if diff else Result.MATCH, diff)


def _live_snapshot(row: dict, *, instance_url: str, table: str) -> tuple[str, dict]:
    """(sys_id, snapshot) of a Table API row read with display_value=all, built as the sync
    builds an evidence item's snapshot (sync/workitems.py prepare + work_item_snapshot)."""
    raw = {f: field_value(row[f]) for f in LIVE_FIELDS if f in row}
    display = {
        f: label
        for f in DISPLAY_FIELDS
        if f in row and (label := field_display(row[f])) and label != raw[f]
    }
    sys_id = raw.get("sys_id", "")
    snapshot = work_item_snapshot(
        instance_url=instance_url,
        table=table,
        sys_id=sys_id,
        raw=raw,
        updated_on=parse_ts(raw.get("sys_updated_on", "")),
        display=display,
    )
    return sys_id, snapshot


def _client(connection):
    """The connection's client, for a person waiting on a button: one retry, short timeouts
    (as Test connection). VerifyUnavailable when the connection cannot be used at all."""
    from .client import ServiceNowClient

    try:
        config = dataclasses.replace(
            connection_client_config(connection=connection),
            max_retries=1,
            connect_timeout=3.0,
            read_timeout=20.0,
            backoff_max=2.0,
        )
        return ServiceNowClient(config)
    except (SecretUnreadable, ConfigurationError) as exc:
        raise VerifyUnavailable(
            f"Connection {connection.name!r} cannot be used: {exc}",
            {"connection": connection.pk},
        ) from None


def records_live(*, work_items: Sequence[WorkItem]) -> dict[int, dict | None]:
    """{work item id: the live record's snapshot, or None when the instance no longer returns
    it}. One request per (connection, table) and VERIFY_CHUNK records."""
    groups: dict[tuple[int, str], list[WorkItem]] = {}
    for wi in work_items:
        groups.setdefault((wi.connection_id, wi.table), []).append(wi)
    out: dict[int, dict | None] = {}
    for items in groups.values():
        connection, table = items[0].connection, items[0].table
        client = _client(connection)
        try:
            for start in range(0, len(items), VERIFY_CHUNK):
                chunk = items[start : start + VERIFY_CHUNK]
                query = Query().where("sys_id", "IN", [wi.sys_id for wi in chunk]).encoded
                page = client.get_page(
                    table,
                    query=query,
                    fields=LIVE_FIELDS,
                    limit=len(chunk),
                    display_value="all",
                )
                found = dict(
                    _live_snapshot(row, instance_url=connection.instance_url, table=table)
                    for row in page.rows
                )
                for wi in chunk:
                    out[wi.pk] = found.get(wi.sys_id)
        except ServiceNowError as exc:
            raise VerifyFailed(
                f"ServiceNow ({connection.name}) did not answer: {exc}",
                {"connection": connection.pk, "error": type(exc).__name__},
            ) from None
        finally:
            client.close()
    return out


def records_verify(*, pairs: Sequence[tuple[WorkItem, dict]]) -> list[RecordCheck]:
    """Each (work item, stored snapshot) pair checked against the live record, in order.
    The caller refused unavailable work items first (work_item_unavailable)."""
    live = records_live(work_items=[wi for wi, _snap in pairs])
    return [snapshot_compare(snap or {}, live.get(wi.pk)) for wi, snap in pairs]
