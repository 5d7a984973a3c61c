"""Imported ServiceNow candidates as the sync leaves them, for the inbox tests
(tests/evidence/test_pages.py and test_inbox_scale.py share these)."""

from __future__ import annotations

import itertools
from datetime import date

from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceEvent, EvidenceLink
from apps.ladders.models import Expectation
from servicenow.models import Connection, Source, WorkItem

INSTANCE = "https://acme.service-now.com"
# ServiceNow's display values of the stored states: a candidate whose state is one of these
# codes carries them in its snapshot (`snapshot["display"]`), as the sync keeps them.
LABELS = {"1": "New", "2": "In Progress", "6": "Resolved", "7": "Closed"}
_sys = itertools.count(50_000)


def work_item(
    person, number: str, *, table="incident", state="6", priority="2", text=None, deleted=False
) -> WorkItem:
    conn, _ = Connection.objects.get_or_create(name="acme", defaults={"instance_url": INSTANCE})
    source, _ = Source.objects.get_or_create(connection=conn, table=table, defaults={"name": table})
    return WorkItem.objects.create(
        connection=conn, source=source, table=table, sys_id=f"{next(_sys):032x}",
        number=number, short_description=text or f"Fix {number}", state=state,
        priority=priority, sys_updated_on=timezone.now(), person=person,
        deleted_at=timezone.now() if deleted else None,
    )  # fmt: skip


def candidate(
    person,
    number: str,
    *,
    suggested=(),
    on=date(2026, 3, 2),
    table="incident",
    state="6",
    priority="2",
    text=None,
    deleted=False,
    **snap,
) -> Evidence:
    """An imported candidate with its "imported" event and its rule suggestions; `snap`
    overrides snapshot fields (a work item deleted in ServiceNow with `deleted`)."""
    item = work_item(
        person, number, table=table, state=state, priority=priority,
        text=snap.get("short_description", text), deleted=deleted,
    )  # fmt: skip
    snapshot = {
        "number": number, "short_description": item.short_description, "state": item.state,
        "priority": item.priority, "category": "ml_model", "table": item.table,
        "sys_id": item.sys_id, "url": item.record_url,
    }  # fmt: skip
    if state in LABELS:
        snapshot["display"] = {"state": LABELS[state], "priority": f"{priority} - High"}
    snapshot.update(snap)
    evidence = Evidence.objects.create(
        person=person, title=f"{number}: {item.short_description}", occurred_on=on,
        url=item.record_url, source=Evidence.Source.SERVICENOW,
        status=Evidence.Status.CANDIDATE, work_item=item, snapshot=snapshot,
        snapshot_updated_at=timezone.now(),
    )  # fmt: skip
    EvidenceEvent.objects.create(evidence=evidence, action=EvidenceEvent.Action.IMPORTED)
    for code in suggested:
        EvidenceLink.objects.create(
            evidence=evidence, expectation=Expectation.objects.get(code=code),
            rationale=f"rule says {code}", origin=EvidenceLink.Origin.SUGGESTED,
        )  # fmt: skip
    return evidence
