"""Configuration history (django-simple-history, ladder_tracker/history.py): cycles, people
(level, manager, roles), suggestion rules, ServiceNow sources and connections keep every
change with its actor, time and before/after; secrets only as "changed"; admins read it
(`GET /api/v1/audit/`, the Django admin's History), nobody else."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.utils import timezone

from apps.packets.models import PromotionCycle
from apps.people.models import Person
from apps.people.services import (
    ServiceNowUser,
    people_managers_resolve,
    people_sync_servicenow,
    person_update,
)
from ladder_tracker.history import history_context
from servicenow.models import Connection, Source, SuggestionRule
from servicenow.services import connection_check, connection_save, secrets_rotate
from tests.factories import PromotionCycleFactory, api_client

pytestmark = pytest.mark.django_db

SECRET = "hunter2-very-secret"


def audit(client, model, obj=None) -> list[dict]:
    query = {"model": model} | ({"object": obj.pk} if obj is not None else {})
    response = client.get("/api/v1/audit/", query)
    assert response.status_code == 200, response.content
    return response.json()["results"]


def changes(entry) -> dict:
    return {c["field"]: (c["before"], c["after"]) for c in entry["changes"]}


# --- people: level, manager, roles ---------------------------------------------------------


def test_person_level_manager_and_roles_through_the_api(org):
    admin = api_client(org.admin)
    response = admin.patch(
        f"/api/v1/people/{org.engineer.pk}/",
        {"level": 3, "manager": org.other_manager.pk, "is_committee": True},
        format="json",
    )
    assert response.status_code == 200, response.json()

    latest = audit(admin, "people.person", org.engineer)[0]
    assert latest["action"] == "changed"
    assert latest["actor"] == "ada"
    assert latest["object_id"] == org.engineer.pk
    assert latest["object_repr"] == "Erin"
    assert changes(latest) == {
        "level": (2, 3),
        "manager": (org.manager.pk, org.other_manager.pk),
        "is_committee": (False, True),
    }
    at = datetime.fromisoformat(latest["at"])
    assert abs((timezone.now() - at).total_seconds()) < 60


def test_a_service_names_its_actor_and_reason(org):
    person_update(person=org.engineer, actor=org.committee.user, level=3, reason="Promoted in X")
    row = org.engineer.history.first()  # newest first
    assert row.history_user == org.committee.user
    assert row.history_change_reason == "Promoted in X"
    assert row.level == 3 and row.prev_record.level == 2


def test_the_request_user_is_the_actor_when_the_service_is_given_none(org, client):
    """A write through a page names the signed-in user (simple_history's middleware)."""
    client.force_login(org.admin.user)
    cycle = PromotionCycleFactory(name="2026 H2")
    response = client.post(
        f"/packets/cycles/{cycle.pk}/edit/",
        {
            "name": "2026 H2",
            "opens_on": cycle.opens_on.isoformat(),
            "submission_deadline": cycle.submission_deadline.strftime("%Y-%m-%dT%H:%M"),
            "decision_on": cycle.decision_on.isoformat(),
            "min_coverage": "0.5",
        },
    )
    assert response.status_code in (200, 302), response.content[:500]
    row = PromotionCycle.history.filter(id=cycle.pk).first()
    assert row.history_user == org.admin.user
    assert str(row.min_coverage) == "0.500"


def test_the_servicenow_users_sync_is_history_by_the_system(org):
    org.engineer.servicenow_sys_id = "u1"
    org.engineer.save()
    org.manager.servicenow_sys_id = "m1"
    org.manager.save()
    org.other_manager.servicenow_sys_id = "m2"
    org.other_manager.save()
    before = Person.history.count()
    when = datetime(2026, 1, 1, tzinfo=UTC)

    def user(sys_id, email, manager="", active=True, mod=1):
        return ServiceNowUser(sys_id, when, mod, email, sys_id, "", manager, active)

    # erin goes inactive, a new person arrives, managers only move the bookkeeping
    people_sync_servicenow(
        users=[
            user("u1", org.engineer.email, manager="m2", active=False),
            user("m1", org.manager.email),
            user("n1", "new@example.com"),
        ]
    )
    rows = list(Person.history.order_by("history_id")[before:])
    assert [(r.id, r.history_type) for r in rows] == [
        (Person.objects.get(servicenow_sys_id="n1").pk, "+"),
        (org.engineer.pk, "~"),
    ]
    assert rows[1].is_active is False and rows[1].prev_record.is_active is True
    assert {r.history_change_reason for r in rows} == {"ServiceNow users sync"}
    assert {r.history_user for r in rows} == {None}

    assert people_managers_resolve() >= 1
    row = Person.history.filter(id=org.engineer.pk).first()
    assert row.manager_id == org.other_manager.pk
    assert row.prev_record.manager_id == org.manager.pk
    entry = audit(api_client(org.admin), "people.person", org.engineer)[0]
    assert entry["actor"] is None and entry["reason"] == "ServiceNow users sync"
    assert changes(entry) == {"manager": (org.manager.pk, org.other_manager.pk)}


def test_history_context_names_a_command_reason(org):
    with history_context(reason="manage.py import_people"):
        person_update(person=org.peer, title="Staff")
    row = org.peer.history.first()
    assert (row.history_user, row.history_change_reason) == (None, "manage.py import_people")


# --- cycles, rules, sources -----------------------------------------------------------------


def test_cycle_changes_through_the_api(org):
    admin = api_client(org.admin)
    created = admin.post(
        "/api/v1/cycles/",
        {
            "name": "2027 H1",
            "opens_on": "2027-01-01",
            "submission_deadline": "2027-02-01T17:00:00Z",
            "decision_on": "2027-03-01",
            "min_coverage": 0.5,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    moved = admin.patch(
        f"/api/v1/cycles/{pk}/", {"submission_deadline": "2027-02-08T17:00:00Z"}, format="json"
    )
    assert moved.status_code == 200, moved.json()
    entries = audit(admin, "packets.promotioncycle", PromotionCycle.objects.get(pk=pk))
    assert [e["action"] for e in entries] == ["changed", "created"]
    assert {e["actor"] for e in entries} == {"ada"}
    assert changes(entries[0]) == {
        "submission_deadline": ("2027-02-01T17:00:00+00:00", "2027-02-08T17:00:00+00:00")
    }
    assert changes(entries[1])["name"] == (None, "2027 H1")


def test_suggestion_rule_changes_and_deletion(org):
    admin = api_client(org.admin)
    created = admin.post(
        "/api/v1/servicenow/rules/",
        {
            "name": "ML models",
            "table": "incident",
            "conditions": [{"field": "category", "op": "=", "value": "ml"}],
            "expectation_codes": ["TE-3.1"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    rule = SuggestionRule.objects.get(pk=created.json()["id"])
    assert (
        admin.patch(
            f"/api/v1/servicenow/rules/{rule.pk}/", {"enabled": False}, format="json"
        ).status_code
        == 200
    )
    assert admin.delete(f"/api/v1/servicenow/rules/{rule.pk}/").status_code == 204
    entries = audit(admin, "servicenow.suggestionrule", rule)
    assert [e["action"] for e in entries] == ["deleted", "changed", "created"]
    assert changes(entries[1]) == {"enabled": (True, False)}
    assert entries[0]["object_repr"] == "ML models"


@pytest.fixture
def connection(db):
    return connection_save(
        connection=Connection(
            name="acme", instance_url="https://acme.service-now.com", username="svc"
        ),
        password=SECRET,
    )


def test_source_changes_but_not_its_bookkeeping(org, connection):
    admin = api_client(org.admin)
    created = admin.post(
        "/api/v1/servicenow/sources/",
        {"connection": connection.pk, "name": "Incidents", "table": "incident"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    source = Source.objects.get(pk=created.json()["id"])
    admin.patch(
        f"/api/v1/servicenow/sources/{source.pk}/",
        {"query": "active=true", "interval_minutes": 30},
        format="json",
    )
    count = source.history.count()
    # the health alert is the system's bookkeeping: no history row
    Source.objects.filter(pk=source.pk).update(failure_alerted_at=timezone.now())
    source.refresh_from_db()
    source.save(update_fields=["failure_alerted_at"])
    assert source.history.count() == count
    entries = audit(admin, "servicenow.source", source)
    assert changes(entries[0]) == {
        "query": ("", "active=true"),
        "interval_minutes": (None, 30),
    }
    assert entries[0]["actor"] == "ada"


# --- connections: secrets only as "changed" ---------------------------------------------------


def test_connection_secrets_are_recorded_as_changed_only(org, connection):
    admin = api_client(org.admin)
    response = admin.patch(
        f"/api/v1/servicenow/connections/{connection.pk}/",
        {"password": "another-secret-value", "page_size": 500},
        format="json",
    )
    assert response.status_code == 200, response.json()
    admin.patch(f"/api/v1/servicenow/connections/{connection.pk}/", {"password": ""}, format="json")
    entries = audit(admin, "servicenow.connection", connection)
    assert [e["action"] for e in entries] == ["changed", "changed", "created"]
    cleared, replaced, created = entries
    assert {"field": "password", "before": None, "after": None, "secret": "cleared"} in cleared[
        "changes"
    ]
    assert {"field": "password", "before": None, "after": None, "secret": "changed"} in replaced[
        "changes"
    ]
    assert changes(replaced)["page_size"] == (1000, 500)
    assert {"field": "password", "before": None, "after": None, "secret": "set"} in created[
        "changes"
    ]
    # nowhere a value or its ciphertext: not in the API, not in the history table
    stored = Connection.objects.get(pk=connection.pk)
    body = str(entries)
    assert SECRET not in body and "another-secret-value" not in body
    history_fields = {f.name for f in Connection.history.model._meta.fields}
    assert not history_fields & {"password_encrypted", "client_secret_encrypted"}
    assert stored.password_encrypted == ""  # cleared


def test_a_check_or_a_key_rotation_writes_no_history(org, connection, settings):
    count = connection.history.count()
    connection_check(connection=connection)  # refused or unreachable: recorded on the row
    secrets_rotate()
    assert connection.history.count() == count


def test_the_admin_form_records_the_admin_and_masks_the_secret(org, connection):
    client = Client()
    client.force_login(org.admin.user)
    page = client.get(f"/admin/servicenow/connection/{connection.pk}/history/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "password" in html and "set" in html
    assert connection.password_encrypted not in html and SECRET not in html


# --- who may read it ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["engineer", "manager", "committee"])
def test_only_admins_read_the_history(org, role):
    response = api_client(org[role]).get("/api/v1/audit/", {"model": "people.person"})
    assert response.status_code == 403
    assert response.json()["error"]["code"]


def test_anonymous_is_refused(api):
    assert api.get("/api/v1/audit/", {"model": "people.person"}).status_code in (401, 403)


def test_an_unknown_model_is_a_400_naming_the_choices(org):
    response = api_client(org.admin).get("/api/v1/audit/", {"model": "evidence.evidence"})
    assert response.status_code == 400
    assert "model" in response.json()["error"]["detail"]
    assert api_client(org.admin).get("/api/v1/audit/").status_code == 400


def test_the_admin_history_pages_are_admin_only(org):
    client = Client()
    client.force_login(org.engineer.user)
    response = client.get(f"/admin/people/person/{org.engineer.pk}/history/")
    assert response.status_code == 302  # to the admin login
    client.force_login(org.admin.user)
    page = client.get(f"/admin/people/person/{org.engineer.pk}/history/")
    assert page.status_code == 200


def test_the_audit_list_costs_the_same_for_one_change_or_many(org):
    admin = api_client(org.admin)
    person_update(person=org.engineer, actor=org.admin.user, level=3)
    audit(admin, "people.person")  # warm the session

    def count() -> int:
        from django.db import connection as db
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(db) as captured:
            audit(admin, "people.person")
        return len(captured)

    few = count()
    for level in (4, 5, 3):
        person_update(person=org.engineer, actor=org.admin.user, level=level)
        person_update(person=org.peer, actor=org.admin.user, manager=org.other_manager)
    assert count() == few


# --- the page ------------------------------------------------------------------------------


def test_the_history_page_shows_before_and_after_to_admins(org, connection):
    person_update(person=org.engineer, actor=org.admin.user, level=3, reason="calibration")
    client = Client()
    client.force_login(org.admin.user)
    html = client.get("/account/history/", {"model": "people.person"}).content.decode()
    assert "<del>2</del> → <ins>3</ins>" in html
    assert "calibration" in html and "ada" in html
    page = client.get("/account/history/", {"model": "servicenow.connection"})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<span class="code">password</span>: <strong>set</strong>' in html
    assert SECRET not in html and connection.password_encrypted not in html


@pytest.mark.parametrize("role", ["engineer", "manager", "committee"])
def test_the_history_page_is_403_for_everyone_else(org, role):
    client = Client()
    client.force_login(org[role].user)
    assert client.get("/account/history/").status_code == 403


def test_the_history_page_takes_bad_parameters_calmly(org):
    client = Client()
    client.force_login(org.admin.user)
    for query in ({"model": "nope"}, {"object": "x"}, {"object": "99999999999999999999"}):
        assert client.get("/account/history/", query).status_code == 200
