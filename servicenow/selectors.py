"""Reads for ServiceNow: admins see configuration and runs; a work item follows the
visibility of the evidence made from it (DESIGN.md "Who sees what")."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.evidence.models import Evidence
from apps.evidence.selectors import evidence_shared_q
from apps.people.selectors import person_for_user, person_report_ids

from .models import Connection, Source, SyncRun, WorkItem


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.all()


RECENT_RUNS_PER_SOURCE = 5  # what the Sync page and the sources API show of each source
_EPOCH = Value(datetime(1970, 1, 1, tzinfo=UTC), output_field=DateTimeField())


def source_list() -> QuerySet[Source]:
    """Sources with their health, in a fixed number of queries whatever the number of
    sources and runs (one, plus one for the recent runs of all of them):

    - `last_run_id`; `last_success_at` (the newest succeeded run's end);
    - `last_error`, `last_error_at`: the newest failed run's error and end;
    - `consecutive_failures`: failed runs since the last success (0 when the newest
      finished run succeeded); the admins are mailed when it reaches
      SERVICENOW_ALERT_AFTER_FAILURES (sync/health.py);
    - `read_until`: the upper bound of the newest succeeded row-reading run (everything
      changed up to then has been read); `source_lag_seconds` turns it into the lag;
    - `recent_runs`: the newest RECENT_RUNS_PER_SOURCE runs, newest first.
    """
    runs = SyncRun.objects.filter(source=OuterRef("pk"))
    newest_first = ("-created_at", "-id")
    succeeded = runs.filter(status=SyncRun.Status.SUCCEEDED).order_by("-finished_at", "-id")
    failed = runs.filter(status=SyncRun.Status.FAILED).order_by("-finished_at", "-id")
    read_rows = succeeded.filter(
        mode__in=[SyncRun.Mode.INCREMENTAL, SyncRun.Mode.FULL], upper_bound__isnull=False
    )
    failures_since_success = (
        SyncRun.objects.filter(
            source=OuterRef("pk"),
            status=SyncRun.Status.FAILED,
            finished_at__gt=Coalesce(OuterRef("last_success_at"), _EPOCH),
        )
        .order_by()
        .values("source")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        Source.objects.select_related("connection", "cursor")
        .annotate(
            last_run_id=Subquery(runs.order_by(*newest_first).values("pk")[:1]),
            last_success_at=Subquery(succeeded.values("finished_at")[:1]),
            last_error=Subquery(failed.values("error")[:1]),
            last_error_at=Subquery(failed.values("finished_at")[:1]),
            read_until=Subquery(read_rows.values("upper_bound")[:1]),
        )
        .annotate(consecutive_failures=Coalesce(Subquery(failures_since_success), 0))
        .prefetch_related(
            Prefetch(
                "runs",
                queryset=SyncRun.objects.order_by(*newest_first)[:RECENT_RUNS_PER_SOURCE],
                to_attr="recent_runs",
            )
        )
    )


def source_cursor_at(source: Source) -> datetime | None:
    """How far the source has been read: the later of its cursor (the newest row stored)
    and the upper bound of its last succeeded run (a quiet table has no new rows, yet was
    read up to then). Needs a source from `source_list`."""
    try:
        hwm = source.cursor.hwm_ts
    except Source.cursor.RelatedObjectDoesNotExist:
        hwm = None
    marks = [m for m in (hwm, getattr(source, "read_until", None)) if m is not None]
    return max(marks) if marks else None


def source_lag_seconds(source: Source, *, now: datetime | None = None) -> float | None:
    """now − `source_cursor_at`, in seconds (None before anything was read)."""
    at = source_cursor_at(source)
    if at is None:
        return None
    return max(0.0, ((now or timezone.now()) - at).total_seconds())


def run_duration_seconds(run: SyncRun) -> float | None:
    """Start to end of a finished run (None while it runs or when it never started)."""
    if run.started_at is None or run.finished_at is None:
        return None
    return max(0.0, (run.finished_at - run.started_at).total_seconds())


def sync_run_list() -> QuerySet[SyncRun]:
    return SyncRun.objects.select_related("source").prefetch_related("http_counts")


def work_item_list(*, viewer: AbstractBaseUser) -> QuerySet[WorkItem]:
    """Every work item the viewer may read; the API's list, detail, filters and counts all
    read through here, so an item outside it is a 404 and never counted.

    - an admin: all of them;
    - its owner: the person it is attributed to, and anyone with evidence made from it
      (private or deleted evidence included: the owner always sees their own);
    - a manager at any depth of an owner: when that report's evidence from it is shared
      (`evidence_shared_q`: not private, not deleted), or when the person it is attributed
      to has no evidence from it at all (nothing was made from it yet to follow). A report
      who made the evidence private, or deleted it, hides the item from their managers.
    """
    qs = WorkItem.objects.select_related("connection")
    if not viewer.is_authenticated:
        return qs.none()
    if viewer.is_staff:
        return qs
    me = person_for_user(user=viewer)
    if me is None:
        return qs.none()
    made_from = Evidence.objects.filter(work_item=OuterRef("pk"))
    visible = Q(person_id=me.pk) | Exists(made_from.filter(person_id=me.pk))
    reports = person_report_ids(person=me)
    if reports:
        visible |= Exists(made_from.filter(evidence_shared_q(), person_id__in=reports))
        visible |= Q(person_id__in=reports) & ~Exists(
            made_from.filter(person_id=OuterRef("person_id"))
        )
    return qs.filter(visible)
