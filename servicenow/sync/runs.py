"""A run's lifecycle: claim it (start), do its work (execute), record a failure (fail), and
one attempt of all three end to end (`sync_run_attempt`, which the Celery task wraps)."""

from __future__ import annotations

import logging
import multiprocessing
import random
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections, router, transaction
from django.utils import timezone

from ..client import AuthorizationError, ServiceNowClient, ServiceNowError, field_value
from ..models import Source, SyncCursor, SyncRun, SyncWindow, WorkItem
from ..query import id_keyset_query, keyset_query, window_query
from ..secrets import SecretUnreadable
from ..services import connection_client, stale_run_after
from .attribution import work_items_attach_people
from .fields import AUDIT_DELETE_FIELDS
from .health import sync_attempt_finished
from .paging import Key, iter_keyset_pages, row_key, ts_value
from .pipeline import FetchSpec, iter_prepared_pages
from .progress import Counters, RunContext, RunLost, log_append
from .users import UserWriter
from .workitems import WorkItemWriter

logger = logging.getLogger("servicenow.sync")
RECONCILE_CHUNK = 500  # sys_ids per UPDATE when a reconcile marks rows deleted
ERROR_CHARS = 5000
SQLITE_SYNC_CHECKPOINT_PAGES = 10000  # 40 MB of WAL between checkpoints during a run


def _resume_point(last: Key, *, read_after: datetime, overlap: timedelta) -> Key:
    """Where a later attempt may go on from once the page ending at `last` is stored.

    A row can turn up late with an older timestamp (its transaction committed after we read
    past it) only within `overlap` of the moment we read; the page was read after this
    attempt began (`read_after`, its upper bound). Rows older than that are settled, so an
    attempt resumes right after the last one stored and re-reads nothing; near the present
    it backs up by the overlap, as incremental runs do."""
    if last[0] < read_after - overlap:
        return last
    return (last[0] - overlap, "")


def _sync_rows(
    ctx: RunContext,
    source: Source,
    cursor: SyncCursor,
    writer,
    *,
    full: bool,
    window: SyncWindow | None = None,
):
    """The keyset stream of a run, or of one window of a backfill (`window`: its rows only,
    its own position; the source's cursor moves when the whole backfill is done)."""
    run = ctx.run
    spot = window or run  # where the position is kept
    base = source.query
    if window is not None:
        base = window_query(
            base=base, created_from=window.created_from, created_to=window.created_to
        )
    overlap = timedelta(seconds=source.overlap_seconds)
    after = None
    if spot.resume_ts is not None:
        # A retried or reclaimed run goes on from its own position (see _resume_point).
        after = (spot.resume_ts, spot.resume_sys_id)
    elif not full and cursor.hwm_ts is not None:
        after = (cursor.hwm_ts - overlap, "")
    # A full stream reads the choice labels afresh; a backfill's windows share the ones its
    # first window (or the run, before it split) read, while they are fresh.
    display_value = writer.begin(ctx.client, ctx.note, cursor=cursor, full=full and window is None)
    with _fewer_checkpoints():
        _store_pages(
            ctx,
            source,
            cursor,
            writer,
            window=window,
            full=full,
            pages=_prepared_pages(
                ctx, source, writer, base=base, after=after, display_value=display_value, full=full
            ),
        )


@contextmanager
def _fewer_checkpoints():
    """SQLite: while a run writes page after page, checkpoint the WAL every
    SQLITE_SYNC_CHECKPOINT_PAGES pages instead of every 1,000 (4 MB): with the default,
    nearly every commit of a 1,000-row page copied the WAL back into the database file
    (a tenth of the sync's time at 100k rows). The WAL file grows to about 40 MB meanwhile;
    the connection's default comes back after the run."""
    connection = connections[router.db_for_write(WorkItem)]
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_SYNC_CHECKPOINT_PAGES}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint=1000")


def _store_pages(ctx, source, cursor, writer, *, window, full, pages) -> None:
    run = ctx.run
    spot = window or run
    overlap = timedelta(seconds=source.overlap_seconds)
    for page, last in pages:
        with transaction.atomic():
            writer.store(page)
            if window is not None:
                if window.hwm_ts is None or last > (window.hwm_ts, window.hwm_sys_id):
                    window.hwm_ts, window.hwm_sys_id = last
            # Moving the cursor back is safe (we re-read); moving it past unseen rows is not.
            # Within a run rows come in order, so `last` is the furthest point fully read.
            elif full or cursor.hwm_ts is None or last > (cursor.hwm_ts, cursor.hwm_sys_id):
                cursor.hwm_ts, cursor.hwm_sys_id = last
                cursor.save(update_fields=["hwm_ts", "hwm_sys_id", "updated_at"])
            point = _resume_point(last, read_after=run.upper_bound, overlap=overlap)
            if spot.resume_ts is None or point > (spot.resume_ts, spot.resume_sys_id):
                spot.resume_ts, spot.resume_sys_id = point
            ctx.save_progress()  # with the position, in the page's transaction


def _prepared_pages(
    ctx: RunContext, source: Source, writer, *, base: str, after, display_value, full
):
    """The run's pages, prepared, with the furthest key each holds. Read and prepared here,
    with a prefetch thread; a full run of a work-item source whose first page shows at least
    SERVICENOW_SYNC_PROCESS_MIN_ROWS more to come goes on in a fetching process of its own
    (pipeline.py), from the page just stored."""
    run = ctx.run
    pages = iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: keyset_query(base=base, after=a, upper=run.upper_bound),
        key=row_key("sys_updated_on"),
        fields=writer.fields,
        page_size=source.connection.page_size,
        after=after,
        # Raw values; the inbox shows a state as "Resolved", not "6", from the labels the
        # instance itself holds (sys_choice, read by writer.begin), else from each row.
        display_value=display_value,
        **ctx.pager_hooks(),
        on_total=ctx.total,
    )
    piped = (
        full
        and settings.SERVICENOW_SYNC_PROCESS
        and isinstance(writer, WorkItemWriter)
        # a daemonic process (a multiprocessing pool's) may not start one of its own
        and not multiprocessing.current_process().daemon
    )
    seen = 0
    started = time.monotonic()
    for rows, last in pages:
        fetched = time.monotonic()
        yield writer.prepare(rows), last  # the caller stores it before we go on
        seen += len(rows)
        total = ctx.total_estimate
        if not piped:
            continue
        piped = False  # decided on the first page, once
        # The prefetch thread already hides the network behind preparing and storing; a
        # process helps only when preparing and storing a page take longer than fetching one
        # (a near instance), not when the instance is far and the run waits on it anyway.
        # (SERVICENOW_SYNC_PROCESS_MIN_ROWS = 0: always, from the first page.)
        minimum = settings.SERVICENOW_SYNC_PROCESS_MIN_ROWS
        busy = time.monotonic() - fetched > fetched - started
        if total is not None and total - seen >= minimum and (busy or minimum == 0):
            pages.close()  # stops the prefetch (a page it had asked for is read again)
            spec = FetchSpec(
                config=ctx.client.config,
                table=source.table,
                base_query=base,
                upper=run.upper_bound,
                ts_field="sys_updated_on",
                fields=tuple(writer.fields),
                page_size=source.connection.page_size,
                after=last,
                display_value=display_value,
                prepare=writer.spec_for_process(),
            )
            ctx.note(f"{total - seen} rows to go: fetching in a process of its own")
            yield from iter_prepared_pages(spec, client=ctx.client, **ctx.pipeline_hooks())
            return


def _sync_deletes(ctx: RunContext, source: Source, cursor: SyncCursor) -> None:
    run = ctx.run
    overlap = timedelta(seconds=source.overlap_seconds)
    after = (cursor.delete_hwm_ts - overlap, "")
    base = f"tablename={source.table}"
    try:
        for rows, last in iter_keyset_pages(
            ctx.client,
            "sys_audit_delete",
            query_for=lambda a: keyset_query(
                base=base, after=a, upper=run.upper_bound, ts_field="sys_created_on"
            ),
            key=row_key("sys_created_on"),
            fields=list(AUDIT_DELETE_FIELDS),
            page_size=source.connection.page_size,
            after=after,
            **ctx.pager_hooks(),
        ):
            deleted_on = {}
            for row in rows:
                deleted_on[field_value(row.get("documentkey"))] = ts_value(
                    row.get("sys_created_on")
                )
            by_moment: dict[datetime | None, list[str]] = {}  # one UPDATE per moment, not row
            for sys_id, when in deleted_on.items():
                by_moment.setdefault(when, []).append(sys_id)
            with transaction.atomic():
                for when, sys_ids in by_moment.items():
                    ctx.counters.deleted += WorkItem.objects.filter(
                        connection_id=source.connection_id,
                        table=source.table,
                        sys_id__in=sys_ids,
                        deleted_at__isnull=True,
                    ).update(deleted_at=when or timezone.now(), deleted_reason="audit_delete")
                if last > (cursor.delete_hwm_ts, cursor.delete_hwm_sys_id):
                    cursor.delete_hwm_ts, cursor.delete_hwm_sys_id = last
                    cursor.save(update_fields=["delete_hwm_ts", "delete_hwm_sys_id", "updated_at"])
                ctx.save_progress()
    except AuthorizationError:
        ctx.note("no read access to sys_audit_delete: deletes come from reconcile runs only")


def _tombstone(ctx: RunContext, local, sys_ids: list[str], now: datetime) -> None:
    for start in range(0, len(sys_ids), RECONCILE_CHUNK):
        ctx.counters.deleted += local.filter(
            sys_id__in=sys_ids[start : start + RECONCILE_CHUNK]
        ).update(deleted_at=now, deleted_reason="reconcile")


def _reconcile(ctx: RunContext, source: Source) -> None:
    """Walk the remote table by sys_id and tombstone, page by page, the local rows that fall
    in the range a page covers — (previous page's last sys_id, this page's last] — but are not
    in it; after the last page, every local row beyond it. Each page's tombstones commit with
    the run's position, so a resumed reconcile goes on from its last page and never marks a
    row it has not compared (a failed one leaves the rest of the table untouched).

    The ranges compare sys_ids in the database as the instance orders them: ServiceNow
    sys_ids are 32 lowercase hex digits, which sort the same under any collation."""
    run = ctx.run
    lower = run.resume_sys_id or None
    local = WorkItem.objects.filter(
        connection_id=source.connection_id, table=source.table, deleted_at__isnull=True
    )
    for rows, last in iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: id_keyset_query(base=source.query, after_sys_id=a[1] if a else None),
        key=lambda r: (datetime.min.replace(tzinfo=UTC), field_value(r.get("sys_id"))),
        fields=["sys_id"],
        page_size=source.connection.page_size,
        after=(datetime.min.replace(tzinfo=UTC), lower) if lower else None,
        **ctx.pager_hooks(),
        on_total=ctx.total,
    ):
        remote = {field_value(r.get("sys_id")) for r in rows}
        ctx.counters.rows_seen += len(rows)
        upper = last[1]
        in_range = local.filter(sys_id__lte=upper)
        if lower is not None:
            in_range = in_range.filter(sys_id__gt=lower)
        with transaction.atomic():
            gone = [s for s in in_range.values_list("sys_id", flat=True) if s not in remote]
            _tombstone(ctx, local, gone, timezone.now())
            run.resume_sys_id = upper
            ctx.save_progress()
        lower = upper
    beyond = local if lower is None else local.filter(sys_id__gt=lower)
    with transaction.atomic():
        _tombstone(ctx, local, list(beyond.values_list("sys_id", flat=True)), timezone.now())
        ctx.save_progress()


def sync_run_start(*, run_id: int, stale_after: timedelta) -> SyncRun | None:
    """Claim a queued run (or a running one whose worker died). None: nothing to do.

    Each claim is a new attempt number; a page commits only for the attempt holding the run
    (RunContext.save_progress), so an old worker that was only slow cannot interleave."""
    with transaction.atomic():
        run = (
            SyncRun.objects.select_for_update().select_related("source__connection").get(pk=run_id)
        )
        now = timezone.now()
        if run.status not in SyncRun.ACTIVE:
            return None
        if (
            run.status == SyncRun.Status.RUNNING
            and run.heartbeat_at
            and (now - run.last_sign_of_life < stale_after)
        ):
            return None  # another worker is on it (a redelivered duplicate of the task)
        if run.status == SyncRun.Status.RUNNING:
            log_append(run, f"attempt {run.attempts} stopped answering; taking the run over")
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.retry_at = None
        if not run.window_count:
            # A backfill keeps the bound it planned with: its windows, done or not, all read
            # up to one bound, or the cursor they leave could pass rows one of them missed.
            run.upper_bound = now.replace(microsecond=0)
        run.attempts += 1
        if run.resume_ts is not None or run.resume_sys_id:
            where = run.resume_ts.isoformat() if run.resume_ts else run.resume_sys_id
            log_append(run, f"attempt {run.attempts} resumes after {where}")
        run.save(
            update_fields=[
                "status",
                "started_at",
                "heartbeat_at",
                "retry_at",
                "upper_bound",
                "attempts",
                "log",
            ]
        )
        cursor, _ = SyncCursor.objects.get_or_create(source=run.source)
        if cursor.delete_hwm_ts is None:
            # Deletes older than our first look cannot concern rows we hold.
            cursor.delete_hwm_ts = run.upper_bound
            cursor.save(update_fields=["delete_hwm_ts", "updated_at"])
    return run


def sync_run_execute(
    *,
    run: SyncRun,
    client: ServiceNowClient,
    on_progress: Callable[[SyncRun], None] | None = None,
) -> SyncRun:
    """Do the work of a claimed run. Remote errors propagate (the task decides to retry).

    A full run of a work-items source may instead be split into windows that window tasks
    carry on (sync/backfill.py); the run is then still running when this returns."""
    from .backfill import LargeTable, backfill_start  # it builds on this module

    source = run.source
    counters = Counters.of_run(run)
    ctx = RunContext(run, client, counters, on_progress)
    cursor = SyncCursor.objects.get(source=source)
    full = run.mode == SyncRun.Mode.FULL
    if run.mode == SyncRun.Mode.RECONCILE:
        _reconcile(ctx, source)
    elif source.kind == Source.Kind.USERS:
        writer = UserWriter(source=source, counters=counters)
        _sync_rows(ctx, source, cursor, writer, full=full)
        writer.finish()
        counters.evidence_created += work_items_attach_people(connection_id=source.connection_id)
    elif full and backfill_start(ctx, source):
        return run  # split into windows: window tasks carry on, the last one finishes the run
    else:
        writer = WorkItemWriter(source=source, counters=counters)
        try:
            _sync_rows(ctx, source, cursor, writer, full=full)
        except LargeTable as large:  # told by the stream's first count, nothing stored
            if backfill_start(ctx, source, total=large.total):
                return run
            _sync_rows(ctx, source, cursor, writer, full=full)  # not split after all
        if source.track_deletes:
            _sync_deletes(ctx, source, cursor)
    run_succeed(ctx)
    return run


def run_succeed(ctx: RunContext) -> None:
    """The closing save of a run whose rows are all read: counters, then succeeded."""
    run, counters = ctx.run, ctx.counters
    with transaction.atomic():
        ctx.save_progress()
        run.pages -= 1  # the closing save is not a page
        run.status = SyncRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.error = ""
        run.save(update_fields=["pages", "status", "finished_at", "error"])
    logger.info(
        "sync run %s done: %s rows, %s new, %s changed, %s stale, %s deleted, %s requests",
        run.pk,
        counters.rows_seen,
        counters.created,
        counters.updated,
        counters.skipped_stale,
        counters.deleted,
        run.requests,
    )


def retry_delay(failures_in_a_row: int) -> float:
    """Seconds before the next attempt: exponential with jitter, capped below the broker's
    visibility timeout (settings.SERVICENOW_RUN_RETRY_*)."""
    base = settings.SERVICENOW_RUN_RETRY_BASE_SECONDS
    delay = base * (2 ** max(0, failures_in_a_row - 1)) * (0.5 + random.random())  # noqa: S311
    return min(delay, settings.SERVICENOW_RUN_RETRY_MAX_SECONDS)


def sync_run_fail(
    *,
    run_id: int,
    error: str,
    transient: bool,
    attempt: int | None = None,
    progressed: bool = False,
) -> bool:
    """Record a failure of attempt `attempt` (None: whichever holds the run). A transient one
    goes back to the queue, due after a backoff, while failures since the last committed page
    stay within SERVICENOW_RUN_RETRIES. Returns whether it will be retried; an attempt that
    no longer holds the run records nothing (the run went on without it)."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        held = run.attempts == attempt and run.status == SyncRun.Status.RUNNING
        if attempt is not None and not held:
            logger.warning("sync run %s attempt %s lost the run: %s", run_id, attempt, error)
            return False
        run.failures_in_a_row = 1 if progressed else run.failures_in_a_row + 1
        retrying = transient and run.failures_in_a_row <= settings.SERVICENOW_RUN_RETRIES
        now = timezone.now()
        if retrying:
            run.status = SyncRun.Status.QUEUED
            run.retry_at = now + timedelta(seconds=retry_delay(run.failures_in_a_row))
            log_append(run, f"attempt {run.attempts} failed, retrying: {error}")
        else:
            run.status = SyncRun.Status.FAILED
            run.finished_at = now
            run.retry_at = None
            run.error = error[:ERROR_CHARS]
        run.heartbeat_at = now
        run.save(
            update_fields=[
                "status",
                "finished_at",
                "error",
                "log",
                "heartbeat_at",
                "retry_at",
                "failures_in_a_row",
            ]
        )
    logger.warning("sync run %s %s: %s", run_id, "will retry" if retrying else "failed", error)
    return retrying


def sync_run_attempt(*, run_id: int, on_progress: Callable[[SyncRun], None] | None = None) -> str:
    """Run one attempt. Returns "done", "skipped" (nothing to do, or the run was taken over),
    "failed", "retry" (transient error: the run is queued again, due at its retry_at) or
    "windows" (a backfill: window tasks carry the run on, sync/backfill.py)."""
    run = sync_run_start(run_id=run_id, stale_after=stale_run_after())
    if run is None:
        return "skipped"
    attempt, pages_before = run.attempts, run.pages
    try:
        client = connection_client(connection=run.source.connection)
    except (SecretUnreadable, ServiceNowError) as exc:
        # A secret that no longer decrypts, or settings the client refuses (e.g. a local
        # instance once SERVICENOW_ALLOW_LOCAL_INSTANCES is off): waiting will not help.
        sync_run_fail(run_id=run_id, error=str(exc), transient=False, attempt=attempt)
        sync_attempt_finished(run_id=run_id, client=None)
        return "failed"
    try:
        sync_run_execute(run=run, client=client, on_progress=on_progress)
        if run.status == SyncRun.Status.RUNNING:
            # A backfill handed to its windows; with eager tasks they may be done already.
            run.refresh_from_db(fields=["status"])
            if run.status in SyncRun.ACTIVE:
                return "windows"
            return "done" if run.status == SyncRun.Status.SUCCEEDED else "failed"
        return "done"
    except RunLost as exc:
        logger.warning("%s; this attempt stops", exc)
        return "skipped"
    except ServiceNowError as exc:
        retrying = sync_run_fail(
            run_id=run_id,
            error=str(exc),
            transient=exc.transient,
            attempt=attempt,
            progressed=run.pages > pages_before,
        )
        return "retry" if retrying else "failed"
    except Exception as exc:
        sync_run_fail(
            run_id=run_id,
            error=f"internal error ({type(exc).__name__}); see the logs",
            transient=False,
            attempt=attempt,
        )
        raise
    finally:
        client.close()
        sync_attempt_finished(run_id=run_id, client=client)  # HTTP counts, failure-streak mail
