"""Late attribution: the candidates work items owe to people who became known after the
items synced (a users source ran after the work-item source)."""

from __future__ import annotations

from django.db import transaction

from apps.evidence.candidates import ExpectationIndex, candidates_import, evidence_pairs
from apps.people.selectors import person_ids_by_servicenow_sys_id

from ..models import SuggestionRule, WorkItem
from .rules import rules_enabled
from .workitems import work_item_candidate, work_item_occurred, work_item_snapshot

ATTRIBUTION_CHUNK = 2000  # work items per query when attaching newly known people


def work_items_attach_people(*, connection_id: int, table: str | None = None) -> int:
    """Create the candidates a work item owes to people who became known after it synced
    (the users source ran later). Returns how many evidence rows were created."""
    people = person_ids_by_servicenow_sys_id(sys_ids=None)
    if not people:
        return 0
    index = ExpectationIndex()
    created = 0
    qs = (
        WorkItem.objects.filter(connection_id=connection_id)
        .exclude(attributions={})
        .select_related("connection")
    )
    if table:
        qs = qs.filter(table=table)
    rules_by_table: dict[str, list[SuggestionRule]] = {}  # read once per call, not per chunk
    last_pk = 0
    while True:
        chunk = list(qs.filter(pk__gt=last_pk).order_by("pk")[:ATTRIBUTION_CHUNK])
        if not chunk:
            return created
        last_pk = chunk[-1].pk
        owners_of = {
            w.pk: list(dict.fromkeys(people[s] for s in w.attributions.values() if s in people))
            for w in chunk
        }
        have = evidence_pairs(work_item_ids=[pk for pk, owners in owners_of.items() if owners])
        todo = [w for w in chunk if any((p, w.pk) not in have for p in owners_of[w.pk])]
        if not todo:
            continue
        with transaction.atomic():
            by_primary: dict[int, list[int]] = {}  # one UPDATE per person, not per item
            candidates = []
            for w in todo:
                owners = owners_of[w.pk]
                if w.person_id != owners[0]:
                    by_primary.setdefault(owners[0], []).append(w.pk)
                if w.table not in rules_by_table:
                    rules_by_table[w.table] = rules_enabled(table=w.table)
                snapshot = work_item_snapshot(
                    instance_url=w.connection.instance_url,
                    table=w.table,
                    sys_id=w.sys_id,
                    raw=w.raw,
                    updated_on=w.sys_updated_on,
                )
                occurred = work_item_occurred(
                    resolved_at=w.resolved_at,
                    closed_at=w.closed_at,
                    opened_at=w.opened_at,
                    updated_on=w.sys_updated_on,
                )
                candidates += [
                    work_item_candidate(
                        work_item_id=w.pk,
                        person_id=p,
                        snapshot=snapshot,
                        raw=w.raw,
                        occurred=occurred,
                        rules=rules_by_table[w.table],
                    )
                    for p in owners
                ]
            for primary, pks in by_primary.items():
                WorkItem.objects.filter(pk__in=pks).update(person_id=primary)
            created += candidates_import(candidates=candidates, index=index)
