"""Celery tasks for ServiceNow: thin wrappers taking ids (HackSoft emails/tasks.py shape)."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.utils import timezone

from . import services
from .models import Source, SyncRun
from .services import RunAlreadyActive, SourceDisabled, sync_run_request
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
