"""Celery tasks for ServiceNow: thin wrappers taking ids (HackSoft emails/tasks.py shape)."""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from django.conf import settings
from django.db import connections
from django.utils import timezone

from . import services
from .models import Source, SyncRun
from .services import RunAlreadyActive, SourceDisabled, sync_run_request
from .sync.backfill import backfill_work
from .sync.runs import sync_run_attempt

logger = logging.getLogger(__name__)


@shared_task(bind=True, name="servicenow.sync_source", max_retries=None, acks_late=True)
def sync_source(self, run_id: int) -> str:
    while True:
        outcome = sync_run_attempt(run_id=run_id)
        if outcome != "retry":
            return outcome
        retry_at = SyncRun.objects.values_list("retry_at", flat=True).get(pk=run_id)
        wait = max(0.0, (retry_at - timezone.now()).total_seconds()) if retry_at else 0.0
        if not self.request.is_eager:
            raise self.retry(countdown=wait)
        # Embedded mode has no broker to hold a delayed retry: wait here, briefly.
        time.sleep(min(wait, 5.0))


def sync_source_enqueue(run_id: int) -> None:
    """Hand a run to a worker; the caller (a request, beat, the reclaimer) never waits for it.

    With a broker the task is published and a worker takes it. With CELERY_TASK_ALWAYS_EAGER
    there is no worker, and `delay` would run the whole sync inside the caller: unless
    SERVICENOW_SYNC_EAGER_IN_THREAD is off (the test suite, which reads results inline), the
    run goes to a daemon thread of this process instead. A process that exits mid-run leaves
    it to the reclaim (its heartbeat stops), like a killed worker."""
    if settings.CELERY_TASK_ALWAYS_EAGER and settings.SERVICENOW_SYNC_EAGER_IN_THREAD:
        thread = threading.Thread(
            target=_sync_source_in_thread, args=(run_id,), name=f"sync-run-{run_id}", daemon=True
        )
        thread.start()
        return
    sync_source.delay(run_id)


@shared_task(bind=True, name="servicenow.sync_backfill", max_retries=None, acks_late=True)
def sync_backfill(self, run_id: int) -> str:
    """One window task of a backfill (sync/backfill.py): windows one after another until
    none is left to take; back when a window waiting out a backoff is due."""
    while True:
        wait = backfill_work(run_id=run_id)
        if wait is None:
            return "done"
        if not self.request.is_eager:
            raise self.retry(countdown=wait)
        time.sleep(min(wait, 5.0))


def sync_backfill_enqueue(run_id: int, *, tasks: int) -> None:
    """Launch `tasks` window tasks for a backfill: with a broker, that many workers take
    windows at once. Eager (no broker), each runs here in turn, the first doing them all."""
    for _ in range(tasks):
        sync_backfill.delay(run_id)


def _sync_source_in_thread(run_id: int) -> None:
    try:
        sync_source.apply(args=[run_id], throw=False)
    except Exception:  # the run records its own failure; this only keeps the thread quiet
        logger.exception("sync run %s failed in its thread", run_id)
    finally:
        connections.close_all()  # this thread's own connections


@shared_task(name="servicenow.sync_runs_reclaim")
def sync_runs_reclaim() -> list[int]:
    """Beat entry point (CELERY_BEAT_SCHEDULE): resume runs whose worker stopped."""
    return services.sync_runs_reclaim()


@shared_task(name="servicenow.sync_source_scheduled")
def sync_source_scheduled(source_id: int, mode: str = SyncRun.Mode.INCREMENTAL) -> int | None:
    """Beat entry point: request a run unless one is already going."""
    source = Source.objects.filter(pk=source_id).select_related("connection").first()
    if source is None:
        return None
    try:
        return sync_run_request(source=source, mode=mode).pk
    except (RunAlreadyActive, SourceDisabled) as exc:
        logger.info("scheduled sync of source %s skipped: %s", source_id, exc)
        return None
