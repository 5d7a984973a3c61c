"""Backfill: a full run of a large work-items table as disjoint key windows, run in parallel.

A full run reads the whole table; one keyset stream reads it one page after another. A
backfill splits it by `sys_created_on`, which never changes, so the windows are disjoint
and every row lies in exactly one: [-inf, b1) (rows with no sys_created_on included),
[b1, b2), …, [bk, +inf). Inside a window the stream is the usual one (`runs._sync_rows`:
keyset on (sys_updated_on, sys_id) up to the run's upper bound, one transaction per page),
with the window's own position, so each window resumes on its own.

- **Plan** (`backfill_start`, in the run's attempt): one one-row request counts the table
  (and says whether it is worth splitting: SERVICENOW_BACKFILL_MIN_ROWS, a broker), then one
  one-row request per boundary reads the sys_created_on at rank total·i/k: windows of about
  equal size, whatever the skew of the dates. The run keeps its upper bound from then on.
- **Work** (`backfill_work`, the `servicenow.sync_backfill` task): claim the next window of
  the connection (pending and due, or running with no sign of life, or left by an earlier
  attempt of its run) under a lock on the connection row, while fewer than the connection's
  limit are live; sync it; claim the next. N tasks are launched per run, so at most N
  windows run at a time, and a task that finishes early takes a window left over.
- **Progress**: each page commits the window's counters and position and adds the same
  increments to the run's (`progress.WindowContext`): the run's counters are the sum of its
  windows', and its heartbeat any window's.
- **Failures**: a transient error puts the window back, due after a backoff, on the same
  budget as runs (failures since its last page); a permanent one fails the run. A window
  whose worker died is claimable again once stale and resumes from its own position.
- **End**: the window that ends last queues the run for its closing pass, a normal attempt
  (`backfill_finish`): the source's cursor goes to the furthest key any window read (every
  row up to the upper bound was read by some window, so nothing before it is left; an
  incremental run re-reads the overlap as always), the deletes pass runs once, succeeded.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, IntegerField, Q, Value, When
from django.utils import timezone

from ..client import ServiceNowError
from ..models import Connection, SyncCursor, SyncRun, SyncWindow
from ..query import created_order_query, format_timestamp
from ..secrets import SecretUnreadable
from ..services import connection_client, stale_run_after
from .health import run_http_counts_add, sync_attempt_finished
from .paging import ts_value
from .progress import Counters, RunContext, RunLost, WindowContext, log_append
from .runs import ERROR_CHARS, _sync_deletes, _sync_rows, retry_delay, run_succeed, sync_run_fail
from .workitems import WorkItemWriter

logger = logging.getLogger("servicenow.sync")

Window = tuple[datetime | None, datetime | None]  # [created_from, created_to); None: open


# --- planning (pure) ------------------------------------------------------------------------


def windows_count(*, total: int, workers: int) -> int:
    """How many windows for `total` rows: about SERVICENOW_BACKFILL_WINDOW_ROWS each, at least
    one per worker, at most SERVICENOW_BACKFILL_MAX_WINDOWS, never more than rows."""
    per_window = max(1, settings.SERVICENOW_BACKFILL_WINDOW_ROWS)
    count = max(workers, -(-total // per_window))
    return max(1, min(count, settings.SERVICENOW_BACKFILL_MAX_WINDOWS, total))


def windows_plan(boundaries: Iterable[datetime | None]) -> list[Window]:
    """The windows the boundaries cut: [(None, b1), (b1, b2), …, (bk, None)], each boundary
    once and in order (many rows created in one second give one boundary, not an empty
    window); no boundary: one window, the whole table."""
    edges = sorted({b for b in boundaries if b is not None})
    return list(zip([None, *edges], [*edges, None], strict=True))


def window_label(window: SyncWindow | Window) -> str:
    low, high = (
        (window.created_from, window.created_to) if isinstance(window, SyncWindow) else window
    )
    return (
        f"[{format_timestamp(low) if low else 'start'}, "
        f"{format_timestamp(high) if high else 'end'})"
    )


def backfill_workers(run: SyncRun) -> int:
    """Window tasks at once for this run: its own, else its connection's, else the setting."""
    return (
        run.workers
        or run.source.connection.backfill_workers
        or settings.SERVICENOW_BACKFILL_WORKERS
    )


# --- the run's attempt: plan, or carry on, or close ------------------------------------------


class LargeTable(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a full run's first count (RunContext.on_first_total) when the table is
    large enough to split: nothing is stored yet, and the run plans windows instead."""

    def __init__(self, total: int):
        super().__init__(f"{total} rows")
        self.total = total


def backfill_start(ctx: RunContext, source, *, total: int | None = None) -> bool:
    """For a full run of a work-items source: plan windows and hand them to window tasks, or
    (a later attempt of a planned run) hand the windows left to new tasks, or close the run
    once every window is done. False: the run is one stream (small table, no broker, asked
    so, or already under way as one); the caller reads it as ever.

    Left to decide (`windows` not asked), the run costs nothing extra: the stream's own first
    request counts the table, and raises LargeTable from there when it is worth splitting
    (the caller comes back with `total`); asked for windows, one one-row request counts."""
    run = ctx.run
    if run.window_count:
        if run.windows.exclude(status=SyncWindow.Status.SUCCEEDED).exists():
            _backfill_relaunch(ctx)
        else:
            backfill_finish(ctx)
        return True
    asked = run.windows_requested
    if asked == 1:
        return False
    workers = backfill_workers(run)
    query = created_order_query(base=source.query)
    if asked is None:
        if total is None:
            if not settings.CELERY_TASK_ALWAYS_EAGER and run.resume_ts is None and not run.pages:
                ctx.on_first_total = _split_when_large
            # Eager, the windows would only run one after another here: one stream.
            return False
        wanted = windows_count(total=total, workers=workers)
    else:
        first = ctx.client.get_page(
            source.table, query=query, fields=["sys_created_on"], limit=1, count=True
        )
        total = first.total_count or 0
        ctx.total(total)
        wanted = max(1, min(asked, settings.SERVICENOW_BACKFILL_MAX_WINDOWS, total))
    ranks = [total * i // wanted for i in range(1, wanted)]
    plan = windows_plan(_boundaries(ctx, source, query, ranks, parallel=workers))
    if len(plan) == 1:
        return False  # one window is the one stream
    with transaction.atomic():
        SyncWindow.objects.bulk_create(
            SyncWindow(run=run, index=i, created_from=low, created_to=high)
            for i, (low, high) in enumerate(plan)
        )
        run.window_count = len(plan)
        tasks = min(workers, len(plan))
        log_append(
            run,
            f"backfill: {len(plan)} windows by sys_created_on for {total} rows, {tasks} at a time",
        )
        _run_save(ctx, "window_count", "total_estimate", "log")
        transaction.on_commit(lambda: _enqueue_windows(run.pk, tasks))
    logger.info("sync run %s: backfill of %s rows in %s windows", run.pk, total, len(plan))
    return True


def _boundaries(
    ctx: RunContext, source, query: str, ranks: list[int], *, parallel: int
) -> list[datetime | None]:
    """The sys_created_on of the row at each rank (one one-row request each; a row hidden
    there by ACLs gives none, and the two windows it would have parted stay one).

    Up to `parallel` at a time, each thread with a client of its own (a session is not
    shared across threads): against a distant instance the requests are all latency, and
    one after another they would cost a large table's backfill seconds per window. Their
    requests count for the run like its own."""

    def at_rank(client, offset: int) -> datetime | None:
        page = client.get_page(
            source.table, query=query, fields=["sys_created_on"], limit=1, offset=offset
        )
        return ts_value(page.rows[0].get("sys_created_on")) if page.rows else None

    threads = min(parallel, len(ranks))
    if threads <= 1:
        return [at_rank(ctx.client, offset) for offset in ranks]
    clients = [connection_client(connection=source.connection) for _ in range(threads)]
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sn-plan") as pool:
            shares = pool.map(
                lambda client, share: [at_rank(client, offset) for offset in share],
                clients,
                [ranks[i::threads] for i in range(threads)],
            )
            return [found for share in shares for found in share]
    finally:
        for client in clients:
            client.close()
            ctx.requests_base += client.request_count
            run_http_counts_add(
                run_id=ctx.run.pk,
                status_counts=client.status_counts,
                retry_counts=client.retry_counts,
            )


def _split_when_large(total: int | None) -> None:
    if total is not None and total >= settings.SERVICENOW_BACKFILL_MIN_ROWS:
        raise LargeTable(total)


def _run_save(ctx: RunContext, *names: str) -> None:
    """Save the run's planning fields, its requests and a heartbeat, fenced by its attempt."""
    run = ctx.run
    run.requests = ctx.run_requests()
    run.heartbeat_at = timezone.now()
    held = SyncRun.objects.filter(
        pk=run.pk, attempts=run.attempts, status=SyncRun.Status.RUNNING
    ).update(**{name: getattr(run, name) for name in (*names, "requests", "heartbeat_at")})
    if not held:
        raise RunLost(f"sync run {run.pk} attempt {run.attempts} was taken over")


def _backfill_relaunch(ctx: RunContext) -> None:
    run = ctx.run
    left = run.windows.exclude(status=SyncWindow.Status.SUCCEEDED).count()
    log_append(run, f"attempt {run.attempts}: {left} of {run.window_count} windows to go")
    _run_save(ctx, "log")
    _enqueue_windows(run.pk, min(backfill_workers(run), left))


def _enqueue_windows(run_id: int, tasks: int) -> None:
    from ..tasks import sync_backfill_enqueue

    sync_backfill_enqueue(run_id, tasks=tasks)


def backfill_finish(ctx: RunContext) -> None:
    """The closing pass of a backfill whose windows are all done: the cursor, deletes, done."""
    run = ctx.run
    source = run.source
    cursor = SyncCursor.objects.get(source=source)
    reached = list(run.windows.exclude(hwm_ts=None).values_list("hwm_ts", "hwm_sys_id"))
    with transaction.atomic():
        if reached:
            cursor.hwm_ts, cursor.hwm_sys_id = max(reached)
            cursor.save(update_fields=["hwm_ts", "hwm_sys_id", "updated_at"])
        ctx.beat()  # fenced: a run taken over moves no cursor
    if source.track_deletes:
        _sync_deletes(ctx, source, cursor)
    run_succeed(ctx)


# --- window tasks ---------------------------------------------------------------------------


def backfill_work(*, run_id: int) -> float | None:
    """One window task: claim windows of the run's connection one after another (this run's
    first) and sync each, until none is left that it may take. Returns the seconds until a
    window waiting out a backoff is due (the task comes back then), or None."""
    connection_id = (
        SyncRun.objects.filter(pk=run_id).values_list("source__connection_id", flat=True).first()
    )
    if connection_id is None:
        return None
    while (window := window_claim(connection_id=connection_id, prefer_run_id=run_id)) is not None:
        window_sync(window=window)
    due = (
        SyncWindow.objects.filter(
            run__source__connection_id=connection_id,
            run__status=SyncRun.Status.RUNNING,
            status=SyncWindow.Status.PENDING,
            retry_at__gt=timezone.now(),
        )
        .order_by("retry_at")
        .values_list("retry_at", flat=True)
        .first()
    )
    return None if due is None else max(0.0, (due - timezone.now()).total_seconds())


def window_claim(*, connection_id: int, prefer_run_id: int | None = None) -> SyncWindow | None:
    """Take the next window of a connection's running backfills, or None: none is left, or
    the connection already has its limit of live windows (their tasks take the rest).

    Claimable: pending and due; running with no sign of life for the stale threshold (its
    worker died); or claimed under an earlier attempt of its run (the run was reclaimed).
    Claims of one connection take turns on its row, so the count of live windows holds."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: the pages being written (work items referencing the connection)
        # take key-share locks on this row, which this must not wait for.
        connection = Connection.objects.select_for_update(no_key=True).get(pk=connection_id)
        now = timezone.now()
        cutoff = now - stale_run_after()
        windows = SyncWindow.objects.filter(
            run__source__connection_id=connection_id, run__status=SyncRun.Status.RUNNING
        )
        current = Q(run_attempt=F("run__attempts"))
        due = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        dead = ~current | Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
        window = (
            windows.filter(
                Q(status=SyncWindow.Status.PENDING) & due
                | Q(status=SyncWindow.Status.RUNNING) & dead
            )
            .select_related("run__source__connection")
            .order_by(
                Case(
                    When(run_id=prefer_run_id, then=Value(0)),
                    default=Value(1),
                    output_field=IntegerField(),
                ),
                "run_id",
                "index",
            )
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if window is None:
            return None
        live = windows.filter(
            current, status=SyncWindow.Status.RUNNING, heartbeat_at__gte=cutoff
        ).count()
        limit = window.run.workers or connection.backfill_workers
        if live >= (limit or settings.SERVICENOW_BACKFILL_WORKERS):
            return None
        if window.status == SyncWindow.Status.RUNNING:
            logger.warning(
                "sync run %s window %s attempt %s stopped answering; taking it over",
                window.run_id,
                window.index,
                window.attempts,
            )
        window.status = SyncWindow.Status.RUNNING
        window.attempts += 1
        window.run_attempt = window.run.attempts
        window.started_at = window.started_at or now
        window.heartbeat_at = now
        window.retry_at = None
        window.save(
            update_fields=[
                "status",
                "attempts",
                "run_attempt",
                "started_at",
                "heartbeat_at",
                "retry_at",
            ]
        )
    return window


def window_sync(*, window: SyncWindow) -> None:
    """Sync one claimed window to its end, or record why it stopped."""
    run = window.run
    source = run.source
    try:
        client = connection_client(connection=source.connection)
    except (SecretUnreadable, ServiceNowError) as exc:
        sync_run_fail(run_id=run.pk, error=str(exc), transient=False, attempt=window.run_attempt)
        return
    counters = Counters.of_run(window)  # a window has a run's counters
    ctx = WindowContext(run, window, client, counters)
    if window.attempts > 1 and window.resume_ts is not None:
        ctx.notes.append(f"attempt {window.attempts} resumed after {window.resume_ts.isoformat()}")
    pages_before = window.pages
    try:
        cursor = SyncCursor.objects.get(source=source)
        writer = WorkItemWriter(source=source, counters=counters)
        _sync_rows(ctx, source, cursor, writer, full=True, window=window)
    except RunLost as exc:
        logger.warning("%s; this window task goes on to the next", exc)
    except ServiceNowError as exc:
        _window_fail(ctx, str(exc), transient=exc.transient, progressed=window.pages > pages_before)
    except Exception as exc:
        _window_fail(ctx, f"internal error ({type(exc).__name__}); see the logs", transient=False)
        client.close()
        sync_attempt_finished(run_id=run.pk, client=client)
        raise
    else:
        # Its HTTP counts before its end: the last window's end lets the run close, and
        # nothing of this window is written after that.
        client.close()
        run_http_counts_add(
            run_id=run.pk, status_counts=client.status_counts, retry_counts=client.retry_counts
        )
        try:
            _window_finish(ctx)
        except RunLost as exc:
            logger.warning("%s; this window task goes on to the next", exc)
        return
    finally:
        client.close()
    sync_attempt_finished(run_id=run.pk, client=client)  # HTTP counts; a failed run's mail


def _window_finish(ctx: WindowContext) -> None:
    window = ctx.window
    with transaction.atomic():
        # The run's row first (as _window_fail): windows end one at a time, so exactly one
        # sees that it was the last.
        run = SyncRun.objects.select_for_update().get(pk=ctx.run.pk)
        ctx.write(pages=0, status=SyncWindow.Status.SUCCEEDED, finished_at=timezone.now())
        for note in ctx.notes:
            log_append(run, f"window {window.index}: {note}")
        fields = ["log"]
        if not run.windows.exclude(status=SyncWindow.Status.SUCCEEDED).exists():
            # The closing pass (cursor, deletes) is a normal attempt of the run, with a
            # run's retries; queued, with a sign of life, so the reclaim leaves it be.
            log_append(run, f"backfill: all {run.window_count} windows done")
            run.status = SyncRun.Status.QUEUED
            run.heartbeat_at = timezone.now()
            run.retry_at = None
            fields += ["status", "heartbeat_at", "retry_at"]
            transaction.on_commit(lambda: _enqueue_run(run.pk))
        run.save(update_fields=fields)
    logger.info("sync run %s window %s done: %s rows", run.pk, window.index, window.rows_seen)


def _enqueue_run(run_id: int) -> None:
    from ..tasks import sync_source_enqueue

    sync_source_enqueue(run_id)


def _window_fail(ctx: WindowContext, error: str, *, transient: bool, progressed: bool = False):
    """A transient failure puts the window back, due after a backoff, while failures since
    its last page stay within SERVICENOW_RUN_RETRIES; otherwise the run fails."""
    window = ctx.window
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=ctx.run.pk)
        held = (
            SyncWindow.objects.filter(
                pk=window.pk, attempts=window.attempts, status=SyncWindow.Status.RUNNING
            ).exists()
            and run.status == SyncRun.Status.RUNNING
            and run.attempts == window.run_attempt
        )
        if not held:
            logger.warning("sync run %s window %s lost: %s", run.pk, window.index, error)
            return
        failures = 1 if progressed else window.failures_in_a_row + 1
        retrying = transient and failures <= settings.SERVICENOW_RUN_RETRIES
        now = timezone.now()
        label = f"window {window.index} {window_label(window)}"
        if not retrying:
            SyncWindow.objects.filter(pk=window.pk).update(
                status=SyncWindow.Status.FAILED,
                failures_in_a_row=failures,
                finished_at=now,
                error=error[:ERROR_CHARS],
            )
            sync_run_fail(
                run_id=run.pk, error=f"{label}: {error}", transient=False, attempt=run.attempts
            )
            return
        retry_at = now + timedelta(seconds=retry_delay(failures))
        SyncWindow.objects.filter(pk=window.pk).update(
            status=SyncWindow.Status.PENDING,
            failures_in_a_row=failures,
            retry_at=retry_at,
            heartbeat_at=now,
            error=error[:ERROR_CHARS],
        )
        log_append(run, f"{label} attempt {window.attempts} failed, retrying: {error}")
        # Alive until then too (SyncRun.last_sign_of_life), should no other window write.
        run.retry_at = max(run.retry_at or retry_at, retry_at)
        run.save(update_fields=["retry_at", "log"])
    logger.warning("sync run %s %s will retry: %s", run.pk, label, error)
