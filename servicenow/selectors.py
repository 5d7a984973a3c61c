"""Reads for ServiceNow: admins see configuration and runs; work items are visible to their
person and that person's managers (any depth), like evidence."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import OuterRef, QuerySet, Subquery

from apps.people.selectors import person_for_user, person_report_ids

from .models import Connection, Source, SyncRun, WorkItem


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.all()


def source_list() -> QuerySet[Source]:
    last_run = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-created_at", "-id")
    return Source.objects.select_related("connection").annotate(
        last_run_id=Subquery(last_run.values("pk")[:1])
    )


def sync_run_list() -> QuerySet[SyncRun]:
    return SyncRun.objects.select_related("source")


def work_item_list(*, viewer: AbstractBaseUser) -> QuerySet[WorkItem]:
    qs = WorkItem.objects.select_related("connection")
    if viewer.is_staff:
        return qs
    me = person_for_user(user=viewer)
    if me is None:
        return qs.none()
    return qs.filter(person_id__in={me.pk} | person_report_ids(person=me))
