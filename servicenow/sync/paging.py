"""The keyset pager, and the row helpers it and the writers share (no database here)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from ..client import Page, ServiceNowClient, TransactionCancelledError, field_value
from ..query import parse_timestamp

# Smallest page we shrink to when the instance cancels a transaction for taking too long.
MIN_PAGE_SIZE = 10
Key = tuple[datetime, str]  # (timestamp, sys_id): the order rows come in


def iter_keyset_pages(
    client: ServiceNowClient,
    table: str,
    *,
    query_for: Callable[[Key | None], str],
    key: Callable[[dict], Key],
    fields: list[str],
    page_size: int,
    after: Key | None,
    on_note: Callable[[str], None] = lambda _msg: None,
    on_total: Callable[[int | None], None] = lambda _total: None,
    on_wait: Callable[[], None] = lambda: None,
    wait_interval: float = 10.0,
    display_value: str = "false",
) -> Iterator[tuple[list[dict], Key]]:
    """Yield the non-empty pages of a keyset query with the furthest key each holds (where a
    cursor may move to once the page is stored), fetching the next page while the caller
    stores the current one.

    The first request asks for X-Total-Count: when everything fits in it we are done after
    one request. An empty page later on may only mean that ACLs hide a whole window of rows,
    so a one-row count probe decides; if rows exist but none is visible we step over them by
    offset and resume keyset paging after the next visible row.

    Requests run on the prefetch thread; while one is in flight (a slow page, the client's
    own retries and Retry-After waits) the caller's thread calls `on_wait` every
    `wait_interval` seconds: a run's heartbeat, so a live worker never looks dead.
    """
    size = page_size

    def result(future: Future):
        while True:
            try:
                return future.result(timeout=wait_interval)
            except TimeoutError:
                on_wait()

    def fetch(after_: Key | None, offset: int | None, count: bool):
        page = fetch_page(after_, offset, count)
        keys = {key(row) for row in page.rows}
        return page, keys

    def fetch_page(after_: Key | None, offset: int | None, count: bool) -> Page:
        nonlocal size
        while True:
            try:
                return client.get_page(
                    table,
                    query=query_for(after_),
                    fields=fields,
                    limit=size,
                    offset=offset,
                    count=count,
                    display_value=display_value,
                )
            except TransactionCancelledError:
                if size <= MIN_PAGE_SIZE:
                    raise
                size = max(MIN_PAGE_SIZE, size // 2)
                on_note(f"instance cancelled a page as too slow; page size now {size}")

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sn-prefetch") as pool:
        offset: int | None = None
        first = True
        # Rows the last count said lie beyond the cursor, and distinct rows read since then:
        # once we have read them all there is nothing left to ask for.
        expected: int | None = None
        seen = 0
        future = pool.submit(fetch, after, offset, True)
        while future is not None:
            page, keys = result(future)
            future = None
            if first:
                on_total(page.total_count)
                expected = page.total_count
            if page.rows:
                last = max(keys)
                after = last if after is None else max(after, last)
                seen += len(keys)
                offset, first = None, False
                if expected is None or seen < expected:
                    future = pool.submit(fetch, after, None, False)
                yield page.rows, last
                continue
            if not first:  # is anything left beyond the cursor, visible or not?
                page = result(pool.submit(fetch_page, after, None, True))
            expected = page.total_count
            seen, first = 0, False
            if not expected:
                return
            offset = (offset or 0) + size
            if offset >= expected:
                return
            on_note(f"{offset} rows in a row are hidden from this user; stepping over them")
            future = pool.submit(fetch, after, offset, False)


# --- row helpers --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def parse_ts(raw: str) -> datetime | None:
    # Each row's sys_updated_on is read several times (keys, newest copy, cursor): a small
    # cache serves the repeats. Small, so memory stays flat however many rows a run reads.
    return parse_timestamp(raw) if raw else None


def ts_value(value) -> datetime | None:
    """A Table API timestamp (plain, or {value, display_value}) as an aware datetime."""
    return parse_ts(field_value(value))


def int_value(value, default: int = 0) -> int:
    try:
        return int(field_value(value) or default)
    except ValueError:
        return default


def row_key(ts_field: str) -> Callable[[dict], Key]:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def key(row: dict) -> Key:
        return (ts_value(row.get(ts_field)) or epoch, field_value(row.get("sys_id")))

    return key


class Newest(NamedTuple):
    """The newest copy of one record in a page, with what a writer made of it."""

    updated_on: datetime
    mod_count: int
    data: Any  # the row as it came, or a writer's prepared form of it


def newest_per_sys_id(rows: list[dict]) -> dict[str, Newest]:
    """Duplicates inside a page collapse to the newest copy of each record."""
    newest: dict[str, Newest] = {}
    for row in rows:
        sys_id = field_value(row.get("sys_id"))
        ts = ts_value(row.get("sys_updated_on"))
        if not sys_id or ts is None:
            continue
        version = Newest(ts, int_value(row.get("sys_mod_count")), row)
        held = newest.get(sys_id)
        if held is None or version[:2] > held[:2]:
            newest[sys_id] = version
    return newest


@dataclass
class PreparedPage:
    """A page made ready to store by a writer's `prepare` (no database needed)."""

    count: int  # rows as they came, repeats included
    newest: dict[str, Newest]
