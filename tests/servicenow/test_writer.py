"""WorkItemWriter's raw upsert, page by page, without HTTP (both databases in CI)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction

from servicenow.models import Connection, Source, WorkItem
from servicenow.services import connection_save, source_save
from servicenow.sync import workitems
from servicenow.sync.progress import Counters
from servicenow.sync.workitems import WorkItemWriter

pytestmark = pytest.mark.django_db


@pytest.fixture
def source():
    connection = connection_save(
        connection=Connection(
            name="Writer", instance_url="https://writer.example.com",
            auth_type=Connection.AuthType.BASIC, username="u",
        ),
        password="p",
    )  # fmt: skip
    return source_save(
        source=Source(connection=connection, name="incident", table="incident",
                      kind=Source.Kind.WORK_ITEMS)
    )  # fmt: skip


def row(sys_id: str, updated: str, mod: int = 1, **fields) -> dict:
    return {"sys_id": sys_id, "number": f"INC{sys_id[-4:]}", "short_description": "s",
            "sys_updated_on": updated, "sys_mod_count": str(mod), **fields}  # fmt: skip


def store(writer: WorkItemWriter, rows: list[dict]) -> None:
    with transaction.atomic():
        writer.store(writer.prepare(rows))


def test_padded_timestamps_are_stored_as_datetimes_and_resync_cleanly(source):
    counters = Counters()
    writer = WorkItemWriter(source=source, counters=counters)
    padded = {"opened_at": " 2024-01-01 08:00:00", "closed_at": "2024-01-03 09:00:00\n"}
    store(writer, [row("a" * 32, " 2024-01-02 00:00:00", **padded)])

    item = WorkItem.objects.get()
    assert item.sys_updated_on == datetime(2024, 1, 2, tzinfo=UTC)
    assert item.opened_at == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert item.closed_at == datetime(2024, 1, 3, 9, tzinfo=UTC)
    assert WorkItem.objects.filter(sys_updated_on__gte=datetime(2024, 1, 2, tzinfo=UTC)).exists()

    store(writer, [row("a" * 32, " 2024-01-02 00:00:00", **padded)])  # the same version again
    assert counters.skipped_stale == 1 and counters.created == 1


def test_pages_in_one_transaction_do_not_see_each_other_twice(source):
    counters = Counters()
    writer = WorkItemWriter(source=source, counters=counters)
    with transaction.atomic():  # two pages, one transaction: the staging is emptied between
        writer.store(writer.prepare([row(f"{i:032d}", "2024-01-01 00:00:00") for i in range(3)]))
        writer.store(writer.prepare([row(f"{i:032d}", "2024-01-01 00:00:01") for i in range(3, 5)]))
    assert WorkItem.objects.count() == 5
    assert (counters.created, counters.updated) == (5, 0)


def test_upsert_keeps_first_seen_moves_last_synced_and_revives_tombstones(source):
    writer = WorkItemWriter(source=source, counters=Counters())
    sys_id = "b" * 32
    store(writer, [row(sys_id, "2024-01-01 00:00:00", mod=1, state="1")])
    first = WorkItem.objects.get()
    WorkItem.objects.filter(pk=first.pk).update(
        deleted_at=datetime(2024, 2, 1, tzinfo=UTC), deleted_reason="reconcile"
    )

    store(writer, [row(sys_id, "2024-03-01 00:00:00", mod=2, state="7")])

    again = WorkItem.objects.get()
    assert again.pk == first.pk
    assert again.first_seen_at == first.first_seen_at
    assert again.last_synced_at > first.last_synced_at
    assert (again.state, again.sys_mod_count, again.raw["state"]) == ("7", 2, "7")
    assert again.deleted_at is None and again.deleted_reason == ""


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's planner statistics (CI's second pass)"
)
def test_postgresql_statistics_follow_a_bulk_load(source, monkeypatch):
    """Without statistics the stale check's `sys_id IN (…)` scans the whole table prefix
    per page; the writer refreshes them once a run has written as many rows as they
    describe."""
    monkeypatch.setattr(workitems, "STATS_AFTER_ROWS", 20)

    def reltuples() -> float:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE oid = 'servicenow_workitem'::regclass"
            )
            return float(cursor.fetchone()[0])

    assert reltuples() < 20  # a fresh test database: never analyzed, or analyzed empty
    writer = WorkItemWriter(source=source, counters=Counters())
    for page in range(3):
        store(writer, [row(f"{page:02d}{i:030d}", "2024-01-01 00:00:00") for i in range(10)])
        if page == 0:
            assert reltuples() < 20  # 10 rows written: not yet
    assert reltuples() == 20  # analyzed after the second page: 20 rows


def test_each_owned_record_of_a_page_gets_its_own_candidate(source, engineer):
    """A page of several owned records: each candidate carries its own record's title, date,
    snapshot and rule suggestions (nothing leaks from a neighbour in the page)."""
    from apps.evidence.models import Evidence, EvidenceEvent, EvidenceLink
    from servicenow.models import SuggestionRule

    engineer.servicenow_sys_id = "u-erin"
    engineer.save(update_fields=["servicenow_sys_id"])
    SuggestionRule.objects.create(
        name="ML models", table="incident", expectation_codes=["TE-2.2"], skills=["PyTorch"],
        conditions=[{"field": "category", "op": "=", "value": "ml_model"}],
    )  # fmt: skip
    counters = Counters()
    writer = WorkItemWriter(source=source, counters=counters)
    store(writer, [
        row("1" * 32, "2024-01-05 00:00:00", assigned_to="u-erin", category="ml_model",
            short_description="Retrain ranker", resolved_at="2024-01-04 10:00:00"),
        row("2" * 32, "2024-01-06 00:00:00", assigned_to="u-erin", category="network",
            short_description="Fix VPN"),
        row("3" * 32, "2024-01-07 00:00:00", assigned_to="u-nobody", category="ml_model"),
    ])  # fmt: skip

    assert counters.evidence_created == 2
    by_sys_id = {e.work_item.sys_id: e for e in Evidence.objects.select_related("work_item")}
    ranker, vpn = by_sys_id["1" * 32], by_sys_id["2" * 32]
    assert set(by_sys_id) == {"1" * 32, "2" * 32}
    assert (ranker.title, str(ranker.occurred_on)) == ("INC1111: Retrain ranker", "2024-01-04")
    assert (vpn.title, str(vpn.occurred_on)) == ("INC2222: Fix VPN", "2024-01-06")
    assert ranker.snapshot["short_description"] == "Retrain ranker"
    assert vpn.snapshot["category"] == "network" and vpn.snapshot["sys_id"] == "2" * 32
    assert ranker.status == vpn.status == "candidate"
    links = EvidenceLink.objects.filter(origin="suggested")
    assert [(link.evidence_id, link.expectation.code) for link in links] == [(ranker.pk, "TE-2.2")]
    assert [s.name for s in ranker.skills.all()] == ["PyTorch"] and not vpn.skills.exists()
    assert EvidenceEvent.objects.filter(action="imported").count() == 2
    assert WorkItem.objects.get(sys_id="1" * 32).person_id == engineer.pk
