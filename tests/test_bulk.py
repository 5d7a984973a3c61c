"""ladder_tracker.bulk.rows_insert: plain rows in, the same rows the ORM would store."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceEvent
from ladder_tracker.bulk import rows_insert
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

COMPARED = [f.attname for f in Evidence._meta.concrete_fields if f.attname not in (
    "id", "created_at", "updated_at")]  # fmt: skip


def test_left_out_columns_take_the_same_defaults_as_the_orm():
    person = PersonFactory()
    before = timezone.now()
    rows_insert(Evidence, [{"person_id": person.pk, "title": "raw"}])
    orm = Evidence.objects.create(person=person, title="orm")

    raw = Evidence.objects.get(title="raw")
    assert {a: getattr(raw, a) for a in COMPARED if a != "title"} == {
        a: getattr(orm, a) for a in COMPARED if a != "title"
    }
    assert raw.visibility == "manager" and raw.status == "accepted" and raw.source == "manual"
    assert raw.snapshot == {} and raw.description_html == "" and raw.deleted_at is None
    assert before <= raw.created_at == raw.updated_at <= timezone.now()


def test_values_round_trip_json_dates_and_nulls():
    person = PersonFactory()
    snapshot = {"number": "INC1", "quote": 'it\'s "x"\t\\ é', "nested": {"a": [1, None]}}
    stamp = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    rows_insert(Evidence, [
        {"person_id": person.pk, "title": "t", "occurred_on": date(2024, 5, 6),
         "occurred_until": None, "snapshot": snapshot, "snapshot_updated_at": stamp},
    ])  # fmt: skip
    ev = Evidence.objects.get()
    assert ev.snapshot == snapshot
    assert (ev.occurred_on, ev.occurred_until, ev.snapshot_updated_at) == (
        date(2024, 5, 6), None, stamp)  # fmt: skip

    rows_insert(EvidenceEvent, [{"evidence_id": ev.pk, "action": "imported"}])
    event = EvidenceEvent.objects.get()
    assert (event.actor_id, event.changes, event.action) == (None, {}, "imported")
    assert event.at is not None


def test_an_unknown_column_is_an_error_and_nothing_is_written():
    person = PersonFactory()
    with pytest.raises(ValueError, match="no columns \\['titel'\\]"):
        rows_insert(Evidence, [{"person_id": person.pk, "title": "a"},
                               {"person_id": person.pk, "titel": "b"}])  # fmt: skip
    assert not Evidence.objects.exists()


def _titles_where_id_in(ids: list[int]) -> set[str]:
    from django.db import connection

    from ladder_tracker.bulk import in_values

    where, params = in_values(connection, "id", ids)
    table = connection.ops.quote_name(Evidence._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT title FROM {table} WHERE {where}", params)  # noqa: S608
        return {title for (title,) in cursor.fetchall()}


def test_in_values_is_one_parameter_for_none_one_or_thousands():
    person = PersonFactory()
    rows_insert(Evidence, [{"person_id": person.pk, "title": f"e{i}"} for i in range(5)])
    ids = sorted(Evidence.objects.values_list("pk", flat=True))

    assert _titles_where_id_in([]) == set()
    assert _titles_where_id_in([ids[2]]) == {"e2"}
    # past SQLite's 999 and PostgreSQL's 65,535 placeholders: still one parameter
    assert _titles_where_id_in(ids[:3] + list(range(10**9, 10**9 + 70_000))) == {"e0", "e1", "e2"}


def test_values_insert_writes_ready_rows_and_refuses_a_row_that_exists():
    from django.db import IntegrityError, transaction

    from ladder_tracker.bulk import insert_fields, values_insert
    from servicenow.models import WorkItem
    from tests.servicenow.test_api import acme, plain_source

    source = plain_source(acme())
    now = timezone.now()
    by_column = {
        "connection_id": source.connection_id, "source_id": source.pk, "table": "incident",
        "sys_id": "a" * 32, "number": "INC1", "short_description": "x", "state": "1",
        "priority": "3", "opened_at": None, "resolved_at": None, "closed_at": None,
        "person_id": None, "attributions": "{}", "sys_updated_on": now, "sys_mod_count": 0,
        "raw": '{"number": "INC1"}', "deleted_at": None, "deleted_reason": "",
        "first_seen_at": now, "last_synced_at": now,
    }  # fmt: skip
    row = [by_column[f.attname] for f in insert_fields(WorkItem)]
    values_insert(WorkItem, [row])
    item = WorkItem.objects.get()
    assert (item.number, item.raw, item.sys_updated_on) == ("INC1", {"number": "INC1"}, now)

    with pytest.raises(IntegrityError), transaction.atomic():
        values_insert(WorkItem, [row])
    assert WorkItem.objects.count() == 1
