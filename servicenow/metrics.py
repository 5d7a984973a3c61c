"""Prometheus metrics of the ServiceNow sync, read from the database at scrape time.

Runs happen in Celery workers, other processes than the web one that answers /metrics, so
in-process counters would only ever see this process. The collector instead asks the
database on each scrape: runs by outcome and rows from SyncRun, lag and failure streaks
from `selectors.source_list`, requests and retries by status code from SourceHttpCount
(each attempt adds its client's counts there and to its run's SyncRunHttpCount). Three
queries per scrape, whatever the number of sources and runs.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Sum
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .models import SourceHttpCount, SyncRun
from .selectors import source_lag_seconds, source_list

PREFIX = "ladder_tracker_servicenow"
# SyncRun counter → the `kind` label of ladder_tracker_servicenow_sync_rows_total
ROW_COUNTERS = {
    "rows_seen": "seen",
    "created": "created",
    "updated": "updated",
    "skipped_stale": "skipped_stale",
    "deleted": "deleted",
}
SOURCE_LABELS = ["source_id", "source"]


class SyncCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        sources = list(source_list().prefetch_related(None))
        names = {s.pk: s.name for s in sources}

        def labels(source_id: int) -> list[str]:
            return [str(source_id), names.get(source_id, "")]

        runs = CounterMetricFamily(
            f"{PREFIX}_sync_runs",
            "Sync runs by outcome (succeeded, failed; queued and running are not outcomes).",
            labels=[*SOURCE_LABELS, "outcome"],
        )
        active = GaugeMetricFamily(
            f"{PREFIX}_sync_runs_active",
            "Sync runs queued or running now.",
            labels=[*SOURCE_LABELS, "status"],
        )
        rows = CounterMetricFamily(
            f"{PREFIX}_sync_rows",
            "Rows of sync runs: seen (read from ServiceNow), created, updated, "
            "skipped_stale (older than the stored copy), deleted (tombstoned).",
            labels=[*SOURCE_LABELS, "kind"],
        )
        by_status = (
            SyncRun.objects.order_by()
            .values("source_id", "status")
            .annotate(n=Count("pk"), **{f"sum_{c}": Sum(c) for c in ROW_COUNTERS})
        )
        row_totals: dict[tuple[int, str], int] = {}
        for row in by_status:
            status = row["status"]
            family = active if status in SyncRun.ACTIVE else runs
            family.add_metric([*labels(row["source_id"]), status], row["n"])
            for counter, kind in ROW_COUNTERS.items():
                # A run's rows count while it runs too (its progress is saved per page).
                key = (row["source_id"], kind)
                row_totals[key] = row_totals.get(key, 0) + (row[f"sum_{counter}"] or 0)
        for (source_id, kind), total in sorted(row_totals.items()):
            rows.add_metric([*labels(source_id), kind], total)
        yield runs
        yield active
        yield rows

        lag = GaugeMetricFamily(
            f"{PREFIX}_sync_lag_seconds",
            "Now minus how far the source has been read (the later of its cursor and the "
            "upper bound of its last succeeded run).",
            labels=SOURCE_LABELS,
        )
        last_success = GaugeMetricFamily(
            f"{PREFIX}_sync_last_success_timestamp_seconds",
            "When the source's newest succeeded run finished (Unix time).",
            labels=SOURCE_LABELS,
        )
        streak = GaugeMetricFamily(
            f"{PREFIX}_sync_consecutive_failures",
            "Failed runs since the source's last success.",
            labels=SOURCE_LABELS,
        )
        for source in sources:
            seconds = source_lag_seconds(source, now=now)
            if seconds is not None:
                lag.add_metric(labels(source.pk), seconds)
            if source.last_success_at is not None:
                last_success.add_metric(labels(source.pk), source.last_success_at.timestamp())
            streak.add_metric(labels(source.pk), source.consecutive_failures)
        yield lag
        yield last_success
        yield streak

        requests = CounterMetricFamily(
            f"{PREFIX}_requests",
            'HTTP requests sent to ServiceNow by sync runs, by status code ("error": no '
            "response), retries included.",
            labels=[*SOURCE_LABELS, "code"],
        )
        retries = CounterMetricFamily(
            f"{PREFIX}_retries",
            'Requests retried by the client, by the status code ("error": no response) '
            "that caused the retry.",
            labels=[*SOURCE_LABELS, "code"],
        )
        http = SourceHttpCount.objects.order_by("source_id", "status").values_list(
            "source_id", "status", "requests", "retries"
        )
        for source_id, status, sent, retried in http:
            key = [*labels(source_id), status]
            requests.add_metric(key, sent)
            if retried:
                retries.add_metric(key, retried)
        yield requests
        yield retries
