"""Reads for ServiceNow: admins see configuration and runs; a work item follows the
visibility of the evidence made from it (DESIGN.md "Who sees what")."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from apps.evidence.models import Evidence
from apps.evidence.selectors import evidence_shared_q
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
