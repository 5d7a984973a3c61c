"""Celery tasks for ServiceNow: thin wrappers taking ids (HackSoft emails/tasks.py shape)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from celery import shared_task
from django.conf import settings

from .client import ServiceNowError
from .models import Source, SyncRun
from .secrets import SecretUnreadable
from .services import (
    RunAlreadyActive,
    SourceDisabled,
    connection_client,
    stale_run_after,
    sync_run_request,
)
from .sync import sync_run_execute, sync_run_fail, sync_run_start

logger = logging.getLogger(__name__)


def _backoff(attempt: int) -> float:
    base = settings.SERVICENOW_RUN_RETRY_BASE_SECONDS
    return base * (2**attempt) * (0.5 + random.random())  # noqa: S311 (jitter, not crypto)


def sync_source_run(run_id: int, *, on_progress: Callable[[SyncRun], None] | None = None) -> str:
    """Run one attempt. Returns "done", "skipped", "failed" or "retry" (transient error)."""
    run = sync_run_start(run_id=run_id, stale_after=stale_run_after())
    if run is None:
        return "skipped"
    try:
        client = connection_client(connection=run.source.connection)
    except SecretUnreadable as exc:
        sync_run_fail(run_id=run_id, error=str(exc), retrying=False)
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


@shared_task(bind=True, name="servicenow.sync_source", max_retries=None, acks_late=True)
def sync_source(self, run_id: int) -> str:
    while True:
        outcome = sync_source_run(run_id)
        if outcome != "retry":
            return outcome
        attempt = SyncRun.objects.values_list("attempts", flat=True).get(pk=run_id)
        if not self.request.is_eager:
            raise self.retry(countdown=_backoff(attempt - 1))
        # Embedded mode has no broker to hold a delayed retry: wait here, briefly.
        time.sleep(min(_backoff(attempt - 1), 5.0))


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
