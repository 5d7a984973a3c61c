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
