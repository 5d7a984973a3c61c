"""Fetch, decode and prepare in a process of its own, while the run's process stores.

A thread cannot overlap the two: decoding a page's JSON holds the GIL for the whole page,
and so does preparing it. A child process (spawned: a clean interpreter, no Django, no
inherited connections) runs the same keyset pager (paging.iter_keyset_pages, its own
prefetch thread included) and the same preparation (prepare.Preparer), and sends prepared
pages through a queue that holds at most PIPELINE_DEPTH of them, so memory stays bounded
whatever the table's size. Everything the run's process keeps is unchanged: each page is
stored in one transaction with the run's position, in order, and a page that never arrives
is never acknowledged. The child reports the HTTP requests it sent with each page, so the
run's counters and /metrics count them as before; notes and the total come through the same
queue, and remote errors come back as the same ServiceNowError classes, so the run retries
or fails exactly as it would have.

Used by full runs of work-item sources once the first page has shown the table to be large
(SERVICENOW_SYNC_PROCESS_MIN_ROWS; runs.py): a small table is not worth a process start.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_module
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .. import client as client_module
from ..client import ClientConfig, ServiceNowClient, ServiceNowError
from ..query import keyset_query
from .paging import Key, PreparedPage, iter_keyset_pages, row_key
from .prepare import Preparer, PrepareSpec

PIPELINE_DEPTH = 2  # prepared pages in flight: one being stored, one or two waiting


@dataclass(frozen=True)
class FetchSpec:
    """A keyset read of one source and how to prepare its pages (plain data, pickled)."""

    config: ClientConfig
    table: str
    base_query: str
    upper: datetime
    ts_field: str
    fields: tuple[str, ...]
    page_size: int
    after: Key | None
    display_value: str
    prepare: PrepareSpec


class PipelineError(ServiceNowError):
    """The fetching process died without saying why (killed, out of memory): transient, so
    the run is retried from its last stored page like after any failed request."""

    transient = True


def _counts(client: ServiceNowClient, sent: dict) -> tuple[int, dict, dict]:
    """The requests sent since the last report, by status, and the retries."""
    status, retries = Counter(client.status_counts), Counter(client.retry_counts)
    delta = (
        client.request_count - sent["requests"],
        dict(status - sent["status"]),
        dict(retries - sent["retries"]),
    )
    sent.update(requests=client.request_count, status=status, retries=retries)
    return delta


def _fetch_and_prepare(spec_bytes: bytes, suggests: bool, writer) -> None:
    """The child process: page, prepare, send. Every message carries the request counts.

    The spec comes pickled: when it carries suggesters (apps.evidence.suggestions, which
    imports Django models) Django is set up first, settings only (no database is opened
    here). Prepared pages wait in a queue of PIPELINE_DEPTH for a sender thread (which
    pickles them into the pipe), so the pager can run that far ahead of the run's process
    and no further."""
    if suggests:
        import django

        django.setup()
    spec: FetchSpec = pickle.loads(spec_bytes)  # noqa: S301 (from our own parent process)
    client = ServiceNowClient(spec.config)
    sent = {"requests": 0, "status": Counter(), "retries": Counter()}
    preparer = Preparer(spec.prepare)
    outbox: queue_module.Queue = queue_module.Queue(maxsize=PIPELINE_DEPTH)

    def send_all():
        while (message := outbox.get()) is not None:
            writer.send(message)

    sender = threading.Thread(target=send_all, name="sn-fetch-send", daemon=True)
    sender.start()

    def out(kind, payload):
        outbox.put((kind, payload, _counts(client, sent)))

    pages_sent = 0
    try:
        for rows, last in iter_keyset_pages(
            client,
            spec.table,
            query_for=lambda a: keyset_query(base=spec.base_query, after=a, upper=spec.upper),
            key=row_key(spec.ts_field),
            fields=list(spec.fields),
            page_size=spec.page_size,
            after=spec.after,
            display_value=spec.display_value,
            on_note=lambda message: out("note", message),
            on_total=lambda total: out("total", total),
        ):
            # Ranking suggestions is the costliest part of a page. Every other page ranks
            # them here, and so does any page while the run's process still has a page
            # waiting (it is the slower one); otherwise the page goes out sooner and the run's
            # process ranks them (candidates_import ranks what it was not given): the two
            # processes share the work as their speeds come out.
            pages_sent += 1
            suggest = pages_sent % 2 == 1 or outbox.qsize() > 0
            out("page", (preparer.prepare(rows, suggest=suggest), last))
        out("done", None)
    except ServiceNowError as exc:
        details = {"status_code": exc.status_code, "table": exc.table, "transient": exc.transient}
        out("error", (type(exc).__name__, str(exc), details))
    except BaseException as exc:  # anything else: the run fails with its name, as inline
        out("crash", f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
        outbox.put(None)
        sender.join()
        writer.close()


def _remote_error(name: str, message: str, details: dict) -> ServiceNowError:
    kind = getattr(client_module, name, None)
    if not (isinstance(kind, type) and issubclass(kind, ServiceNowError)):
        kind = ServiceNowError
    return kind(message, **details)


def iter_prepared_pages(
    spec: FetchSpec,
    *,
    client: ServiceNowClient,
    on_note: Callable[[str], None],
    on_total: Callable[[int | None], None],
    on_wait: Callable[[], None],
    wait_interval: float,
) -> Iterator[tuple[PreparedPage, Key]]:
    """Yield (prepared page, furthest key) as iter_keyset_pages would yield rows, from a
    child process. `client` is the run's own: the child's requests are added to its
    counters. While nothing arrives, `on_wait` beats every `wait_interval` seconds. Closing
    the iterator (the run stopped) stops the child."""
    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    suggests = bool(spec.prepare.suggesters)
    child = context.Process(
        target=_fetch_and_prepare,
        args=(pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL), suggests, writer),
        name="sn-fetch",
        daemon=True,
    )
    child.start()
    # Only the child writes: once it is gone, for whatever reason, reading ends (EOFError)
    # instead of waiting for a message that will never be finished.
    writer.close()
    try:
        while True:
            if not reader.poll(wait_interval):
                if not child.is_alive() and not reader.poll(0):
                    raise PipelineError(
                        f"the fetching process stopped (exit code {child.exitcode})"
                    )
                on_wait()
                continue
            try:
                kind, payload, (requests, status, retries) = reader.recv()
            except (EOFError, OSError):
                child.join(timeout=5)
                raise PipelineError(
                    f"the fetching process stopped (exit code {child.exitcode})"
                ) from None
            client.request_count += requests
            client.status_counts.update(status)
            client.retry_counts.update(retries)
            if kind == "page":
                yield payload
            elif kind == "note":
                on_note(payload)
            elif kind == "total":
                on_total(payload)
            elif kind == "done":
                return
            elif kind == "error":
                raise _remote_error(*payload)
            else:
                raise PipelineError(f"the fetching process failed: {payload}")
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=10)
        reader.close()
