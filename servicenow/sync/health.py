"""What an attempt leaves behind for the admins watching: its HTTP requests by status (for
/metrics, summed over every worker process from the database) and, when the run is over,
the mail that says a source keeps failing or has recovered.

`sync_attempt_finished` is the one hook `runs.sync_run_attempt` calls, however the attempt
ended; it never raises, because the run's own outcome is already recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from ladder_tracker.mail import admin_emails, mail_after_commit

from ..client import ServiceNowClient
from ..models import Source, SourceHttpCount, SyncRun, SyncRunHttpCount
from ..selectors import source_list

logger = logging.getLogger("servicenow.sync")
ERROR_EXCERPT_CHARS = 1000  # of the last error, in the mail; the run page has all of it


def sync_attempt_finished(*, run_id: int, client: ServiceNowClient | None) -> None:
    """Record the attempt's requests; if the run is over, mail the admins when its source
    has just crossed into (or out of) a failure streak."""
    try:
        if client is not None:
            run_http_counts_add(
                run_id=run_id,
                status_counts=client.status_counts,
                retry_counts=client.retry_counts,
            )
        source_id, status = SyncRun.objects.values_list("source_id", "status").get(pk=run_id)
        if status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.FAILED):
            source_failure_alert(source_id=source_id)
    except Exception:  # health bookkeeping must never turn a run's outcome into a crash
        logger.exception("sync run %s: recording its health failed", run_id)


def run_http_counts_add(
    *, run_id: int, status_counts: Mapping[str, int], retry_counts: Mapping[str, int]
) -> None:
    """Add one attempt's counts to its run's (a run's attempts add up) and to its source's
    running totals, in one transaction."""
    statuses = {s for counts in (status_counts, retry_counts) for s, n in counts.items() if n}
    if not statuses:
        return
    source_id = SyncRun.objects.values_list("source_id", flat=True).get(pk=run_id)
    with transaction.atomic():
        _counts_add(SyncRunHttpCount, {"run_id": run_id}, statuses, status_counts, retry_counts)
        _counts_add(
            SourceHttpCount, {"source_id": source_id}, statuses, status_counts, retry_counts
        )


def _counts_add(model, owner: dict, statuses, status_counts, retry_counts) -> None:
    # An UPDATE … + n per status (a handful), creating the row when there is none yet; a
    # concurrent creator (a replaced stale run finishing late) makes us update after all.
    for status in sorted(statuses):
        sent, retried = status_counts.get(status, 0), retry_counts.get(status, 0)
        rows = model.objects.filter(status=status, **owner)
        if rows.update(requests=F("requests") + sent, retries=F("retries") + retried):
            continue
        try:
            with transaction.atomic():
                model.objects.create(status=status, requests=sent, retries=retried, **owner)
        except IntegrityError:
            rows.update(requests=F("requests") + sent, retries=F("retries") + retried)


def source_failure_alert(*, source_id: int) -> str | None:
    """Mail the admins once when a source's failed runs in a row reach
    SERVICENOW_ALERT_AFTER_FAILURES, and once when a run succeeds after that. The
    source's `failure_alerted_at` remembers the first mail, so further failures send
    nothing. Returns "failing", "recovered" or None (nothing sent)."""
    threshold = settings.SERVICENOW_ALERT_AFTER_FAILURES
    with transaction.atomic():
        Source.objects.select_for_update().filter(pk=source_id).first()  # one decision at a time
        source = source_list().prefetch_related(None).get(pk=source_id)
        streak = source.consecutive_failures
        if streak >= threshold and source.failure_alerted_at is None:
            outcome = "failing"
            alerted_at = timezone.now()
        elif streak == 0 and source.failure_alerted_at is not None:
            outcome = "recovered"
            alerted_at = None
        else:
            return None
        Source.objects.filter(pk=source_id).update(failure_alerted_at=alerted_at)
        subject, body = _message(source, outcome)
        mail_after_commit(subject=subject, body=body, recipients=admin_emails())
    logger.warning("servicenow source %s %s (%s failed runs in a row)", source_id, outcome, streak)
    return outcome


def _message(source: Source, outcome: str) -> tuple[str, str]:
    page = "/servicenow/"
    last_success = (
        source.last_success_at.strftime("%Y-%m-%d %H:%M UTC") if source.last_success_at else "never"
    )
    if outcome == "failing":
        error = (source.last_error or "").strip()[:ERROR_EXCERPT_CHARS]
        return (
            f"ServiceNow source {source.name}: {source.consecutive_failures} failed runs in a row",
            f"The last {source.consecutive_failures} sync runs of the ServiceNow source "
            f"{source.name!r} ({source.table} on {source.connection.name}) failed.\n\n"
            f"Last error:\n{error}\n\n"
            f"Last success: {last_success}.\n"
            "You will get one more mail when a run succeeds again.\n\n"
            f"{page}\n",
        )
    since = source.failure_alerted_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"ServiceNow source {source.name}: recovered",
        f"The ServiceNow source {source.name!r} ({source.table} on {source.connection.name}) "
        f"synced successfully again (failing since the alert of {since}).\n\n{page}\n",
    )
