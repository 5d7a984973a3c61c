"""A run's lifecycle: claim it (start), do its work (execute), record a failure (fail), and
one attempt of all three end to end (`sync_run_attempt`, which the Celery task wraps)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..client import AuthorizationError, ServiceNowClient, ServiceNowError, field_value
from ..models import Source, SyncCursor, SyncRun, WorkItem
from ..query import id_keyset_query, keyset_query
from ..secrets import SecretUnreadable
from ..services import connection_client, stale_run_after
from .attribution import work_items_attach_people
from .fields import AUDIT_DELETE_FIELDS
from .health import sync_attempt_finished
from .paging import iter_keyset_pages, row_key, ts_value
from .progress import Counters, RunContext, log_append
from .users import UserWriter
from .workitems import WorkItemWriter

logger = logging.getLogger("servicenow.sync")
RECONCILE_CHUNK = 500  # sys_ids per UPDATE when a reconcile marks rows deleted
ERROR_CHARS = 5000


def _sync_rows(ctx: RunContext, source: Source, cursor: SyncCursor, writer, *, full: bool):
    run = ctx.run
    overlap = timedelta(seconds=source.overlap_seconds)
    after = None
    if not full and cursor.hwm_ts is not None:
        after = (cursor.hwm_ts - overlap, "")
    for rows, last in iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: keyset_query(base=source.query, after=a, upper=run.upper_bound),
        key=row_key("sys_updated_on"),
        fields=writer.fields,
        page_size=source.connection.page_size,
        after=after,
        on_note=ctx.note,
        on_total=ctx.total,
    ):
        page = writer.prepare(rows)
        with transaction.atomic():
            writer.store(page)
            # Moving the cursor back is safe (we re-read); moving it past unseen rows is not.
            # Within a run rows come in order, so `last` is the furthest point fully read.
            if full or cursor.hwm_ts is None or last > (cursor.hwm_ts, cursor.hwm_sys_id):
                cursor.hwm_ts, cursor.hwm_sys_id = last
                cursor.save(update_fields=["hwm_ts", "hwm_sys_id", "updated_at"])
            ctx.save_progress()


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
            on_note=ctx.note,
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


def _reconcile(ctx: RunContext, source: Source) -> None:
    remote: set[str] = set()
    for rows, _last in iter_keyset_pages(
        ctx.client,
        source.table,
        query_for=lambda a: id_keyset_query(base=source.query, after_sys_id=a[1] if a else None),
        key=lambda r: (datetime.min.replace(tzinfo=UTC), field_value(r.get("sys_id"))),
        fields=["sys_id"],
        page_size=source.connection.page_size,
        after=None,
        on_note=ctx.note,
        on_total=ctx.total,
    ):
        remote.update(field_value(r.get("sys_id")) for r in rows)
        ctx.counters.rows_seen += len(rows)
        with transaction.atomic():
            ctx.save_progress()
    local = WorkItem.objects.filter(
        connection_id=source.connection_id, table=source.table, deleted_at__isnull=True
    )
    gone = [s for s in local.values_list("sys_id", flat=True).iterator() if s not in remote]
    now = timezone.now()
    with transaction.atomic():
        for start in range(0, len(gone), RECONCILE_CHUNK):
            ctx.counters.deleted += local.filter(
                sys_id__in=gone[start : start + RECONCILE_CHUNK]
            ).update(deleted_at=now, deleted_reason="reconcile")
        ctx.save_progress()


def sync_run_start(*, run_id: int, stale_after: timedelta) -> SyncRun | None:
    """Claim a queued run (or a running one whose worker died). None: nothing to do."""
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
            and (now - run.heartbeat_at < stale_after)
        ):
            return None  # another worker is on it (a redelivered duplicate of the task)
        run.status = SyncRun.Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.upper_bound = now.replace(microsecond=0)
        run.attempts += 1
        run.save(update_fields=["status", "started_at", "heartbeat_at", "upper_bound", "attempts"])
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
    """Do the work of a claimed run. Remote errors propagate (the task decides to retry)."""
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
    else:
        _sync_rows(ctx, source, cursor, WorkItemWriter(source=source, counters=counters), full=full)
        if source.track_deletes:
            _sync_deletes(ctx, source, cursor)
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
    return run


def sync_run_fail(*, run_id: int, error: str, retrying: bool) -> None:
    """Record a failure; a run that will be retried goes back to the queue."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        if retrying:
            run.status = SyncRun.Status.QUEUED
            log_append(run, f"attempt {run.attempts} failed, retrying: {error}")
        else:
            run.status = SyncRun.Status.FAILED
            run.finished_at = timezone.now()
            run.error = error[:ERROR_CHARS]
        run.heartbeat_at = timezone.now()
        run.save(update_fields=["status", "finished_at", "error", "log", "heartbeat_at"])
    logger.warning("sync run %s %s: %s", run_id, "will retry" if retrying else "failed", error)


def sync_run_attempt(*, run_id: int, on_progress: Callable[[SyncRun], None] | None = None) -> str:
    """Run one attempt. Returns "done", "skipped", "failed" or "retry" (transient error)."""
    run = sync_run_start(run_id=run_id, stale_after=stale_run_after())
    if run is None:
        return "skipped"
    try:
        client = connection_client(connection=run.source.connection)
    except SecretUnreadable as exc:
        sync_run_fail(run_id=run_id, error=str(exc), retrying=False)
        sync_attempt_finished(run_id=run_id, client=None)
        return "failed"
    try:
        sync_run_execute(run=run, client=client, on_progress=on_progress)
        return "done"
    except ServiceNowError as exc:
        retrying = exc.transient and run.attempts <= settings.SERVICENOW_RUN_RETRIES
        sync_run_fail(run_id=run_id, error=str(exc), retrying=retrying)
        return "retry" if retrying else "failed"
    except Exception as exc:
        sync_run_fail(
            run_id=run_id,
            error=f"internal error ({type(exc).__name__}); see the logs",
            retrying=False,
        )
        raise
    finally:
        client.close()
        sync_attempt_finished(run_id=run_id, client=client)  # HTTP counts, failure-streak mail
