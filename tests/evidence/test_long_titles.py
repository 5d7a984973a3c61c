"""Titles longer than the 300-character column: an imported one is shortened visibly (an
ellipsis, a note on the page, the full text in the snapshot); a typed one is refused with
the limit named, on the form (no browser maxlength cutting a paste silently) and the API."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from apps.evidence import services
from apps.evidence.candidates import candidates_import, title_fit
from apps.evidence.models import Evidence
from servicenow.models import Connection, Source, WorkItem
from servicenow.sync.workitems import work_item_candidate, work_item_snapshot

pytestmark = pytest.mark.django_db

LONG = "Retrain the ranking model " + "and tune it " * 40  # 506 characters


def test_title_fit_keeps_short_titles_and_marks_cut_ones():
    assert title_fit("Short") == "Short"
    assert title_fit("x" * 300) == "x" * 300
    cut = title_fit("x" * 301)
    assert (len(cut), cut[-1], cut[:299]) == (300, "…", "x" * 299)


def _import(person, short_description: str) -> Evidence:
    conn = Connection.objects.create(name="Test", instance_url="https://acme.service-now.com")
    source = Source.objects.create(connection=conn, name="incidents", table="incident")
    raw = {"number": "INC0010001", "short_description": short_description, "state": "6"}
    now = timezone.now()
    item = WorkItem.objects.create(
        connection=conn,
        source=source,
        table="incident",
        sys_id="a" * 32,
        number="INC0010001",
        short_description=short_description,
        state="6",
        resolved_at=now - timedelta(days=2),
        sys_updated_on=now,
        raw=raw,
    )
    snapshot = work_item_snapshot(
        instance_url=conn.instance_url,
        table="incident",
        sys_id=item.sys_id,
        raw=raw,
        updated_on=now,
    )
    candidate = work_item_candidate(
        work_item_id=item.pk,
        person_id=person.pk,
        snapshot=snapshot,
        raw=raw,
        occurred=now,
        rules=[],
    )
    candidates_import(candidates=[candidate])
    return Evidence.objects.get(work_item=item)


def _signed_in(person) -> Client:
    client = Client()
    client.force_login(person.user)
    return client


def test_an_imported_long_title_is_shortened_visibly_and_kept_whole(org):
    evidence = _import(org.engineer, LONG)

    assert len(evidence.title) == 300 and evidence.title.endswith("…")
    assert evidence.title.startswith("INC0010001: Retrain the ranking model")
    assert evidence.title_shortened
    assert evidence.snapshot["short_description"] == LONG
    html = _signed_in(org.engineer).get(f"/evidence/{evidence.pk}/").content.decode()
    assert "The ServiceNow title was longer than 300 characters and is shortened here" in html


def test_an_imported_short_title_has_no_note(org):
    evidence = _import(org.engineer, "Retrain the ranking model")

    assert evidence.title == "INC0010001: Retrain the ranking model"
    assert not evidence.title_shortened
    html = _signed_in(org.engineer).get(f"/evidence/{evidence.pk}/").content.decode()
    assert "is shortened here" not in html


def test_the_form_states_the_limit_and_refuses_a_longer_title(org):
    client = _signed_in(org.engineer)

    form = client.get("/evidence/new/").content.decode()
    assert "Up to 300 characters." in form
    assert 'maxlength="300"' not in form  # a browser would cut a paste without a word

    response = client.post("/evidence/new/", {"title": "x" * 301, "visibility": "manager"})
    assert response.status_code == 400
    assert "Ensure this value has at most 300 characters (it has 301)." in response.content.decode()
    assert not Evidence.objects.exists()


def test_the_api_refuses_a_longer_title_naming_the_limit(org):
    response = org.client("engineer").post(
        "/api/v1/evidence/", {"title": "x" * 301, "visibility": "manager"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["detail"]["title"] == [
        "Ensure this field has no more than 300 characters."
    ]


def test_the_service_refuses_a_title_longer_than_its_column(org):
    with pytest.raises(ValidationError) as refused:
        services.evidence_create(person=org.engineer, actor=org.engineer.user, title="t" * 301)
    assert "At most 300 characters (it has 301)" in str(refused.value)
