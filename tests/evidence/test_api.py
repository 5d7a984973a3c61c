"""Evidence API: CRUD behaviour and the contract (DESIGN.md, resource "evidence")."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.evidence import services
from apps.evidence.candidates import candidates_import
from apps.evidence.models import Attachment, Evidence, EvidenceEvent, EvidenceLink
from apps.ladders.models import Deliverable, Expectation, Skill
from apps.people.models import Person
from servicenow.models import Connection, Source, WorkItem
from servicenow.sync.workitems import work_item_candidate, work_item_occurred, work_item_snapshot
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/evidence/"
CONTRACT = {
    "id", "person", "title", "description", "occurred_on", "url", "source", "status",
    "visibility", "expectations", "skills", "work_item", "attachments",
}  # fmt: skip


def detail(pk):
    return f"{URL}{pk}/"


def error_detail(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    return response.json()["error"]["detail"]


@pytest.fixture
def boss(ladder):
    return PersonFactory(user__username="boss", name="Boss", ladder=ladder, level=4)


@pytest.fixture
def engineer(ladder, boss):  # overrides the conftest one: erin reports to boss
    return PersonFactory(user__username="erin", ladder=ladder, level=2, manager=boss)


@pytest.fixture
def boss_api(api, boss):
    api.force_authenticate(boss.user)
    return api


def create(client, **body):
    response = client.post(URL, {"title": "Shipped it", **body}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- create --------------------------------------------------------------------------------


def test_create_returns_the_contract(engineer_api, engineer):
    body = create(
        engineer_api, description="**bold**", occurred_on="2025-02-01",
        url="https://example.com/pr/1", expectations=["TE-2.1", "CC-3.1"], skills=["Python"],
    )  # fmt: skip

    assert set(body) >= CONTRACT
    assert body["person"] == engineer.pk
    assert body["source"] == "manual"
    assert body["status"] == "accepted"
    assert body["visibility"] == "manager"
    assert body["work_item"] is None
    assert body["attachments"] == []
    assert body["expectations"] == ["TE-2.1", "CC-3.1"]
    assert body["skills"] == ["Python"]
    assert body["occurred_on"] == "2025-02-01"
    assert body["description_html"] == "<p><strong>bold</strong></p>"
    assert [link["origin"] for link in body["links"]] == ["engineer", "engineer"]
    assert engineer_api.get(detail(body["id"])).json() == body


def test_create_defaults_the_date_to_today(engineer_api):
    assert create(engineer_api)["occurred_on"] == timezone.localdate().isoformat()


def test_unknown_expectation_code_is_a_400_naming_it(engineer_api):
    response = engineer_api.post(
        URL, {"title": "t", "expectations": ["TE-2.1", "XX-9.9"]}, format="json"
    )

    assert response.status_code == 400
    assert "XX-9.9" in str(error_detail(response))
    assert "XX-9.9" in response.json()["error"]["message"]
    assert not Evidence.objects.exists()


def test_a_code_of_another_level_is_fine(engineer_api):
    body = create(engineer_api, expectations=["TE-5.1", "PSI-1.1"])

    assert body["expectations"] == ["TE-5.1", "PSI-1.1"]


def test_repeated_codes_link_once(engineer_api):
    assert create(engineer_api, expectations=["TE-2.1", "TE-2.1"])["expectations"] == ["TE-2.1"]


def test_codes_of_a_draft_version_are_not_linkable(engineer_api, ladder_version):
    """Only the person's published ladder version counts."""
    from apps.ladders.models import LadderVersion, Level

    draft = LadderVersion.objects.create(ladder=ladder_version.ladder, number=99, status="draft")
    level = Level.objects.create(version=draft, number=2, title="Draft II")
    Expectation.objects.create(
        version=draft, level=level, competency=Expectation.objects.first().competency,
        code="NEW-2.1", text="draft only",
    )  # fmt: skip

    response = engineer_api.post(URL, {"title": "t", "expectations": ["NEW-2.1"]}, format="json")

    assert response.status_code == 400
    assert "NEW-2.1" in str(error_detail(response))


def test_someone_without_a_ladder_cannot_link(api, db):
    loner = PersonFactory(user__username="loner", ladder=None)
    api.force_authenticate(loner.user)

    linked = api.post(URL, {"title": "t", "expectations": ["TE-2.1"]}, format="json")
    plain = api.post(URL, {"title": "t"}, format="json")

    assert linked.status_code == 400
    assert "links" in error_detail(linked)
    assert plain.status_code == 201


def test_skills_must_be_in_the_taxonomy(engineer_api):
    ok = create(engineer_api, skills=["python", "PyTorch"])
    bad = engineer_api.post(URL, {"title": "t", "skills": ["Python", "COBOL"]}, format="json")

    assert ok["skills"] == ["Python", "PyTorch"]  # the taxonomy's spelling
    assert bad.status_code == 400
    assert "COBOL" in str(error_detail(bad)["skills"])
    assert Evidence.objects.count() == 1


def test_expectations_and_links_together_is_a_400(engineer_api):
    before = Evidence.objects.count()

    response = engineer_api.post(
        URL,
        {"title": "t", "expectations": ["TE-2.1"], "links": [{"expectation": "TE-2.2"}]},
        format="json",
    )

    assert response.status_code == 400
    # not tied to one field: the pair is refused, and the message names both
    assert error_detail(response) == {
        "non_field_errors": ["Send either expectations (codes) or links."]
    }
    assert Evidence.objects.count() == before
    assert EvidenceLink.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"title": ""}, id="empty-title"),
        pytest.param({"title": "   "}, id="blank-title"),
        pytest.param({}, id="no-title"),
        pytest.param({"title": "x" * 301}, id="title-too-long"),
        pytest.param({"title": "t", "visibility": "public"}, id="bad-visibility"),
        pytest.param({"title": "t", "occurred_on": "yesterday"}, id="bad-date"),
        pytest.param({"title": "t", "url": "not a url"}, id="bad-url"),
        pytest.param({"title": "t", "expectations": "TE-2.1"}, id="codes-not-a-list"),
        pytest.param({"title": "t", "links": [{"rationale": "why"}]}, id="link-without-target"),
        pytest.param(
            {"title": "t", "links": [{"expectation": "TE-2.1", "deliverable": 1}]},
            id="link-with-both-targets",
        ),  # fmt: skip
    ],
)
def test_bad_bodies_are_400_json(engineer_api, body):
    response = engineer_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert error_detail(response)
    assert not Evidence.objects.exists()


def test_owner_fields_cannot_be_forged(engineer_api, engineer, boss):
    body = create(
        engineer_api, person=boss.pk, source="servicenow", status="candidate",
        snapshot={"number": "INC1"}, work_item=1, description_html="<script>x</script>",
    )  # fmt: skip

    assert body["person"] == engineer.pk
    assert (body["source"], body["status"], body["snapshot"], body["work_item"]) == (
        "manual",
        "accepted",
        {},
        None,
    )
    assert body["description_html"] == ""


def test_a_login_without_a_person_cannot_create(api, db):
    api.force_authenticate(UserFactory(username="ghost"))

    response = api.post(URL, {"title": "t"}, format="json")

    assert response.status_code == 403
    assert "person" in response.json()["error"]["message"]


# --- dates ---------------------------------------------------------------------------------


def test_date_range(engineer_api):
    ok = create(engineer_api, occurred_on="2025-01-01", occurred_until="2025-01-31")
    backwards = engineer_api.post(
        URL,
        {"title": "t", "occurred_on": "2025-02-01", "occurred_until": "2025-01-01"},
        format="json",
    )
    open_start = engineer_api.post(
        URL, {"title": "t", "occurred_on": None, "occurred_until": "2025-01-01"}, format="json"
    )

    assert (ok["occurred_on"], ok["occurred_until"]) == ("2025-01-01", "2025-01-31")
    assert backwards.status_code == 400
    assert "occurred_until" in error_detail(backwards)
    assert open_start.status_code == 400
    assert Evidence.objects.count() == 1


def test_patch_cannot_break_the_range(engineer_api):
    item = create(engineer_api, occurred_on="2025-01-01", occurred_until="2025-01-31")

    response = engineer_api.patch(detail(item["id"]), {"occurred_on": "2025-03-01"}, format="json")

    assert response.status_code == 400
    stored = Evidence.objects.get(pk=item["id"])
    assert (stored.occurred_on, stored.occurred_until) == (date(2025, 1, 1), date(2025, 1, 31))


# --- update --------------------------------------------------------------------------------


def test_patch_changes_only_what_is_sent(engineer_api):
    item = create(
        engineer_api, description="words", occurred_on="2025-01-01", occurred_until="2025-01-05",
        url="https://example.com/", visibility="private", expectations=["TE-2.1"],
        skills=["SQL"],
    )  # fmt: skip

    response = engineer_api.patch(detail(item["id"]), {"title": "Renamed"}, format="json")

    assert response.status_code == 200
    after = response.json()
    assert after["title"] == "Renamed"
    for key in ("description", "description_html", "occurred_on", "occurred_until", "url",
                "visibility", "expectations", "links", "skills", "source", "status"):  # fmt: skip
        assert after[key] == item[key], key


def test_making_an_item_private_hides_it_from_the_manager(engineer_api, boss_api):
    item = create(engineer_api)
    assert boss_api.get(detail(item["id"])).status_code == 200

    engineer_api.patch(detail(item["id"]), {"visibility": "private"}, format="json")

    assert boss_api.get(detail(item["id"])).status_code == 404
    assert item["id"] not in {e["id"] for e in boss_api.get(URL).json()["results"]}
    assert boss_api.get(f"{detail(item['id'])}history/").status_code == 404


def test_patch_replaces_links_and_skills_when_sent(engineer_api):
    item = create(engineer_api, expectations=["TE-2.1"], skills=["SQL"])

    replaced = engineer_api.patch(
        detail(item["id"]), {"expectations": ["CC-2.1"], "skills": []}, format="json"
    ).json()

    assert replaced["expectations"] == ["CC-2.1"]
    assert replaced["skills"] == []


def test_patch_with_a_bad_code_changes_nothing(engineer_api):
    item = create(engineer_api, expectations=["TE-2.1"])

    response = engineer_api.patch(
        detail(item["id"]), {"title": "new", "expectations": ["NOPE-1"]}, format="json"
    )

    assert response.status_code == 400
    assert "NOPE-1" in str(error_detail(response))
    stored = Evidence.objects.get(pk=item["id"])
    assert stored.title == "Shipped it"
    assert [lk.expectation.code for lk in stored.links.all()] == ["TE-2.1"]


def test_put_needs_a_title_and_keeps_unsent_optional_fields(engineer_api):
    item = create(engineer_api, description="keep", expectations=["TE-2.1"])

    missing = engineer_api.put(detail(item["id"]), {"description": "x"}, format="json")
    put = engineer_api.put(detail(item["id"]), {"title": "Whole"}, format="json")

    assert missing.status_code == 400
    assert put.status_code == 200
    assert put.json()["title"] == "Whole"
    assert put.json()["expectations"] == ["TE-2.1"]


def test_links_carry_a_rationale_and_may_point_at_deliverables(engineer_api, ladder_version):
    deliverable = Deliverable.objects.filter(version=ladder_version).first()
    item = create(
        engineer_api,
        links=[
            {"expectation": "TE-2.1", "rationale": "  Trained and shipped the ranker.  "},
            {"deliverable": deliverable.pk, "rationale": "The design doc"},
        ],
    )

    te21 = ladder_version.expectations.get(code="TE-2.1")
    assert item["links"] == [
        {"expectation": "TE-2.1", "deliverable": None,
         "rationale": "Trained and shipped the ranker.", "origin": "engineer",
         "ladder_change": "",
         "made_against": {"expectation": te21.pk, "code": "TE-2.1", "version": 1,
                          "text": te21.text}},
        {"expectation": None, "deliverable": deliverable.pk, "rationale": "The design doc",
         "origin": "engineer", "ladder_change": "", "made_against": None},
    ]  # fmt: skip
    assert item["expectations"] == ["TE-2.1"]
    unknown = engineer_api.post(
        URL, {"title": "t", "links": [{"deliverable": 999_999}]}, format="json"
    )
    assert unknown.status_code == 400
    assert "999999" in str(error_detail(unknown))


# --- imported evidence ---------------------------------------------------------------------


@pytest.fixture
def work_item(db):
    conn = Connection.objects.create(name="Test", instance_url="https://acme.service-now.com")
    source = Source.objects.create(connection=conn, name="incidents", table="incident")
    return WorkItem.objects.create(
        connection=conn, source=source, table="incident", sys_id="a" * 32, number="INC0010001",
        short_description="Retrain the ranking model", state="6", priority="3",
        resolved_at=timezone.now() - timedelta(days=2), sys_updated_on=timezone.now(),
        raw={"number": "INC0010001", "short_description": "Retrain the ranking model",
             "state": "6"},
        attributions={"assigned_to": "u-erin"},
    )  # fmt: skip


def _sync(work_item, person):
    """Import the work item as the sync does: its snapshot and candidate, then the writer."""
    w = work_item
    snapshot = work_item_snapshot(
        instance_url=w.connection.instance_url, table=w.table, sys_id=w.sys_id, raw=w.raw,
        updated_on=w.sys_updated_on,
    )  # fmt: skip
    occurred = work_item_occurred(
        resolved_at=w.resolved_at, closed_at=w.closed_at, opened_at=w.opened_at,
        updated_on=w.sys_updated_on,
    )  # fmt: skip
    candidate = work_item_candidate(
        work_item_id=w.pk, person_id=person.pk, snapshot=snapshot, raw=w.raw, occurred=occurred,
        rules=[],
    )  # fmt: skip
    return candidates_import(candidates=[candidate])


def test_imported_evidence_keeps_its_snapshot_read_only(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    item = Evidence.objects.get(work_item=work_item)
    before = (item.snapshot, item.source, item.status, item.work_item_id, item.person_id)

    response = engineer_api.patch(
        detail(item.pk),
        {"title": "Retrained the ranker (my words)", "snapshot": {"number": "FORGED"},
         "source": "manual", "status": "accepted", "work_item": None, "person": 1},
        format="json",
    )  # fmt: skip

    assert response.status_code == 200
    item.refresh_from_db()
    assert (item.snapshot, item.source, item.status, item.work_item_id, item.person_id) == before
    assert item.title == "Retrained the ranker (my words)"
    body = response.json()
    assert body["source"] == "servicenow" and body["status"] == "candidate"
    assert body["work_item"] == work_item.pk
    assert body["snapshot"]["number"] == "INC0010001"


def test_a_resync_refreshes_the_snapshot_and_keeps_the_engineers_words(
    engineer_api, engineer, work_item
):
    _sync(work_item, engineer)
    item = Evidence.objects.get(work_item=work_item)
    engineer_api.patch(
        detail(item.pk), {"title": "My title", "description": "My story"}, format="json"
    )
    work_item.short_description = "Retrain the ranking model (reopened)"
    work_item.raw = {**work_item.raw, "short_description": work_item.short_description}
    work_item.save()

    assert _sync(work_item, engineer) == 0  # nothing new: a refresh

    body = engineer_api.get(detail(item.pk)).json()
    assert body["title"] == "My title"
    assert body["description"] == "My story"
    assert body["snapshot"]["short_description"] == "Retrain the ranking model (reopened)"
    assert Evidence.objects.filter(work_item=work_item).count() == 1


def test_accept_turns_suggested_links_into_the_engineers(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    item = Evidence.objects.get(work_item=work_item)
    EvidenceLink.objects.create(
        evidence=item, expectation=Expectation.objects.get(code="TE-2.1"), origin="suggested"
    )

    response = engineer_api.post(f"{detail(item.pk)}accept/", {}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert [lk["origin"] for lk in response.json()["links"]] == ["engineer"]
    event = EvidenceEvent.objects.filter(evidence=item).order_by("id").last()
    assert (event.action, event.actor, event.changes) == (
        "accepted",
        engineer.user,
        {"status": ["candidate", "accepted"]},
    )


def test_accept_with_codes_replaces_the_suggestions(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    item = Evidence.objects.get(work_item=work_item)
    EvidenceLink.objects.create(
        evidence=item, expectation=Expectation.objects.get(code="TE-2.1"), origin="suggested"
    )

    bad = engineer_api.post(f"{detail(item.pk)}accept/", {"expectations": ["NO-1"]}, format="json")
    good = engineer_api.post(
        f"{detail(item.pk)}accept/", {"expectations": ["CC-2.2"]}, format="json"
    )

    assert bad.status_code == 400
    assert good.status_code == 200
    assert good.json()["expectations"] == ["CC-2.2"]
    assert good.json()["links"][0]["origin"] == "engineer"


def test_dismiss(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    item = Evidence.objects.get(work_item=work_item)

    response = engineer_api.post(f"{detail(item.pk)}dismiss/")
    again = engineer_api.post(f"{detail(item.pk)}dismiss/")

    assert response.status_code == again.status_code == 200
    assert response.json()["status"] == "dismissed"
    assert EvidenceEvent.objects.filter(evidence=item, action="dismissed").count() == 1


def test_evidence_on_a_deleted_work_item_is_kept_and_flagged(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    WorkItem.objects.filter(pk=work_item.pk).update(deleted_at=timezone.now())
    item = Evidence.objects.get(work_item=work_item)

    body = engineer_api.get(detail(item.pk)).json()
    listed = engineer_api.get(URL).json()["results"]

    assert body["work_item_deleted"] is True
    assert [e["work_item_deleted"] for e in listed if e["id"] == item.pk] == [True]


# --- bulk triage ----------------------------------------------------------------------------


def _candidates(person, n):
    items = [services.evidence_create(person=person, actor=person.user, title=f"c{i}")
             for i in range(n)]  # fmt: skip
    Evidence.objects.filter(pk__in=[e.pk for e in items]).update(status="candidate")
    return [e.pk for e in items]


def test_bulk_accept_and_dismiss(engineer_api, engineer):
    ids = _candidates(engineer, 3)

    accepted = engineer_api.post(f"{URL}bulk/", {"ids": ids[:2], "action": "accept"},
                                 format="json")  # fmt: skip
    dismissed = engineer_api.post(f"{URL}bulk/", {"ids": ids[2:], "action": "dismiss"},
                                  format="json")  # fmt: skip

    assert accepted.json() == {"updated": 2}
    assert dismissed.json() == {"updated": 1}
    statuses = dict(Evidence.objects.values_list("pk", "status"))
    assert [statuses[i] for i in ids] == ["accepted", "accepted", "dismissed"]


@pytest.mark.parametrize("intruder", ["someone-else", "missing", "deleted"])
def test_bulk_with_ids_not_yours_is_a_400_and_changes_nothing(
    engineer_api, engineer, boss, intruder
):
    mine = _candidates(engineer, 2)
    if intruder == "someone-else":
        other = _candidates(boss, 1)[0]  # erin's manager's own item
    elif intruder == "missing":
        other = 999_999
    else:
        other = _candidates(engineer, 1)[0]
        services.evidence_delete(evidence=Evidence.objects.get(pk=other), actor=engineer.user)
    before = list(Evidence.objects.order_by("pk").values_list("pk", "status", "updated_at"))
    events = EvidenceEvent.objects.count()

    response = engineer_api.post(
        f"{URL}bulk/", {"ids": [*mine, other], "action": "accept"}, format="json"
    )

    assert response.status_code == 400
    assert str(other) in response.json()["error"]["message"]
    assert list(Evidence.objects.order_by("pk").values_list("pk", "status", "updated_at")) == (
        before
    )
    assert EvidenceEvent.objects.count() == events


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [], "action": "accept"},
        {"ids": [1], "action": "delete"},
        {"ids": "1"},
        {"action": "accept"},
        {"ids": [0], "action": "accept"},
    ],  # fmt: skip
)
def test_bulk_bad_bodies(engineer_api, body):
    assert engineer_api.post(f"{URL}bulk/", body, format="json").status_code == 400


# --- soft delete, restore, history ------------------------------------------------------


def test_soft_delete_and_restore(engineer_api, boss_api, engineer):
    item = create(engineer_api)
    other = create(engineer_api, title="stays")

    deleted = engineer_api.delete(detail(item["id"]))

    assert deleted.status_code == 204
    assert Evidence.objects.filter(pk=item["id"], deleted_at__isnull=False).exists()
    assert [e["id"] for e in engineer_api.get(URL).json()["results"]] == [other["id"]]
    assert engineer_api.get(detail(item["id"])).status_code == 404
    assert engineer_api.patch(detail(item["id"]), {"title": "x"}, format="json").status_code == (
        404
    )
    assert engineer_api.delete(detail(item["id"])).status_code == 404
    trash = engineer_api.get(URL, {"deleted": "true"}).json()["results"]
    assert [e["id"] for e in trash] == [item["id"]]
    assert trash[0]["deleted_at"]
    # the manager sees neither the item nor the trash
    assert boss_api.get(detail(item["id"])).status_code == 404
    assert boss_api.get(URL, {"deleted": "true"}).json()["results"] == []
    assert boss_api.post(f"{detail(item['id'])}restore/").status_code == 404

    restored = engineer_api.post(f"{detail(item['id'])}restore/")

    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert engineer_api.get(detail(item["id"])).status_code == 200
    assert {e["id"] for e in engineer_api.get(URL).json()["results"]} == {item["id"], other["id"]}
    assert engineer_api.get(URL, {"deleted": "true"}).json()["results"] == []
    # restoring something not in the trash is a 404 (it is not in the trash)
    assert engineer_api.post(f"{detail(item['id'])}restore/").status_code == 404


def test_history_lists_every_change_with_actor_and_changes(engineer_api, boss_api, engineer):
    item = create(engineer_api, title="First", expectations=["TE-2.1"])
    engineer_api.patch(
        detail(item["id"]), {"title": "Second", "expectations": ["TE-2.2"]}, format="json"
    )
    engineer_api.patch(detail(item["id"]), {"title": "Second"}, format="json")  # no change
    engineer_api.delete(detail(item["id"]))
    engineer_api.post(f"{detail(item['id'])}restore/")

    history = engineer_api.get(f"{detail(item['id'])}history/").json()

    assert [(e["action"], e["actor"]) for e in history] == [
        ("created", "erin"), ("updated", "erin"), ("deleted", "erin"), ("restored", "erin"),
    ]  # fmt: skip
    assert history[1]["changes"] == {
        "title": ["First", "Second"], "links": [["TE-2.1"], ["TE-2.2"]],
    }  # fmt: skip
    assert all(e["at"] for e in history)
    # a manager reads a report's history, too
    assert boss_api.get(f"{detail(item['id'])}history/").json() == history


def test_history_records_dates_as_strings(engineer_api):
    item = create(engineer_api, occurred_on="2025-01-01")
    engineer_api.patch(detail(item["id"]), {"occurred_on": "2025-01-02"}, format="json")

    history = engineer_api.get(f"{detail(item['id'])}history/").json()

    assert history[-1]["changes"] == {"occurred_on": ["2025-01-01", "2025-01-02"]}


# --- filters ---------------------------------------------------------------------------


@pytest.fixture
def catalogue(engineer):
    def make(title, **kw):
        extra = {k: kw.pop(k) for k in ("status", "source") if k in kw}
        item = services.evidence_create(person=engineer, actor=engineer.user, title=title, **kw)
        if extra:
            Evidence.objects.filter(pk=item.pk).update(**extra)
        return item.pk

    return {
        "serving": make("Model serving", occurred_on=date(2025, 1, 10),
                        links=[services.LinkSpec(expectation="TE-2.1"),
                               services.LinkSpec(expectation="TE-2.2")],
                        skills=["Python"]),
        "pipeline": make("Feature store", description="A new pipeline for features",
                         occurred_on=date(2025, 3, 1), occurred_until=date(2025, 3, 20),
                         links=[services.LinkSpec(expectation="CC-3.1")], skills=["SQL"],
                         status="candidate", source="servicenow"),
        "other": make("Other", occurred_on=date(2025, 6, 1), status="dismissed"),
    }  # fmt: skip


FILTERS = [
    ({"status": "candidate"}, {"pipeline"}),
    ({"status": "dismissed"}, {"other"}),
    ({"status": "accepted"}, {"serving"}),
    ({"source": "servicenow"}, {"pipeline"}),
    ({"source": "manual"}, {"serving", "other"}),
    ({"competency": "TE"}, {"serving"}),  # two TE links, listed once
    ({"competency": "CC"}, {"pipeline"}),
    ({"competency": "PSI"}, set()),
    ({"level": 2}, {"serving"}),
    ({"level": 3}, {"pipeline"}),
    ({"skill": "python"}, {"serving"}),
    ({"skill": "SQL"}, {"pipeline"}),
    ({"expectation": "CC-3.1"}, {"pipeline"}),
    ({"expectation": "TE-2.2"}, {"serving"}),
    ({"date_from": "2025-03-15"}, {"pipeline", "other"}),  # a range overlapping the window
    ({"date_to": "2025-03-05"}, {"serving", "pipeline"}),
    ({"date_from": "2025-03-15", "date_to": "2025-03-16"}, {"pipeline"}),
    ({"date_from": "2025-07-01"}, set()),
    ({"q": "pipeline"}, {"pipeline"}),  # description
    ({"q": "MODEL"}, {"serving"}),  # title, case-insensitive
    ({"q": "nothing like it"}, set()),
    ({"visibility": "manager"}, {"serving", "pipeline", "other"}),
    ({"status": "accepted", "competency": "CC"}, set()),
    ({}, {"serving", "pipeline", "other"}),
]


@pytest.mark.parametrize(("params", "expected"), FILTERS, ids=[str(p) for p, _ in FILTERS])
def test_filters_narrow(engineer_api, catalogue, params, expected):
    response = engineer_api.get(URL, params)

    assert response.status_code == 200
    names = {v: k for k, v in catalogue.items()}
    got = [names[e["id"]] for e in response.json()["results"]]
    assert set(got) == expected
    assert len(got) == len(set(got)), "an item is listed twice"
    assert response.json()["count"] == len(expected)


def test_filters_apply_to_a_managers_view_too(boss_api, catalogue):
    got = {e["id"] for e in boss_api.get(URL, {"competency": "TE"}).json()["results"]}

    assert got == {catalogue["serving"]}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"source": "email"}, "source"),
        ({"visibility": "public"}, "visibility"),
        ({"level": "three"}, "level"),
        ({"level": "0"}, "level"),
        ({"date_from": "2025-13-01"}, "date_from"),
        ({"date_to": "soon"}, "date_to"),
        ({"person": "me"}, "person"),
        ({"person": "-1"}, "person"),
        ({"deleted": "maybe"}, "deleted"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_filter_values_are_400_json(engineer_api, params, field):
    response = engineer_api.get(URL, params)

    assert response.status_code == 400
    assert field in error_detail(response)


def test_pagination_shape(engineer_api, engineer):
    Evidence.objects.bulk_create(Evidence(person=engineer, title=f"e{i}") for i in range(55))

    first = engineer_api.get(URL).json()
    second = engineer_api.get(URL, {"page": 2}).json()

    assert set(first) == {"count", "next", "previous", "results"}
    assert (first["count"], len(first["results"]), len(second["results"])) == (55, 50, 5)
    assert first["previous"] is None and "page=2" in first["next"]
    assert not {e["id"] for e in first["results"]} & {e["id"] for e in second["results"]}
    assert engineer_api.get(URL, {"page": 9}).status_code == 404


# --- list and detail agree -----------------------------------------------------------------


def test_a_list_entry_is_the_detail(engineer_api, engineer, work_item):
    _sync(work_item, engineer)
    imported = Evidence.objects.get(work_item=work_item)
    engineer_api.patch(
        detail(imported.pk),
        {"links": [{"expectation": "TE-2.1", "rationale": "why"}], "skills": ["SQL", "Python"]},
        format="json",
    )
    engineer_api.post(
        f"{detail(imported.pk)}attachments/",
        {"file": SimpleUploadedFile("a.md", b"# a\n")}, format="multipart",
    )  # fmt: skip
    manual = create(engineer_api, occurred_on="2025-01-01", occurred_until="2025-01-02",
                    expectations=["CC-2.1"])  # fmt: skip

    listed = {e["id"]: e for e in engineer_api.get(URL).json()["results"]}

    for pk in (imported.pk, manual["id"]):
        assert listed[pk] == engineer_api.get(detail(pk)).json(), pk


# --- query counts ------------------------------------------------------------------------


def _bulk_evidence(person, n, ladder_version):
    exps = list(Expectation.objects.filter(version=ladder_version)[:3])
    skills = list(Skill.objects.filter(version=ladder_version)[:2])
    items = Evidence.objects.bulk_create(
        Evidence(person=person, title=f"item {i}", description="d", description_html="<p>d</p>",
                 occurred_on=date(2025, 1, 1) + timedelta(days=i % 300))
        for i in range(n)
    )  # fmt: skip
    if any(e.pk is None for e in items):
        items = list(Evidence.objects.filter(person=person))
    EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence=e, expectation=x, rationale="r") for e in items for x in exps
    )
    through = Evidence.skills.through
    through.objects.bulk_create(
        through(evidence_id=e.pk, skill_id=s.pk) for e in items for s in skills
    )
    Attachment.objects.bulk_create(
        Attachment(evidence=e, file=f"evidence/{person.pk}/x{e.pk}", name="x.txt", size=1,
                   content_type="text/plain", sha256="0" * 64)
        for e in items[:: max(1, n // 20)]
    )  # fmt: skip


# The whole GET, whatever the number of rows: who is asking, with whether they have reports
# (1), the page's count (1), the page (1), and its links, skills and attachments (1). A
# manager's reports add 1 per level of the org chart below them plus the empty level that
# ends the walk (2 here).
EVIDENCE_LIST_QUERIES = 4


@pytest.mark.parametrize("n", [10, 1000])
@pytest.mark.parametrize("viewer", ["owner", "manager"])
def test_evidence_list_query_count_is_flat(
    api, engineer, boss, ladder_version, django_assert_num_queries, n, viewer
):
    _bulk_evidence(engineer, n, ladder_version)
    api.force_authenticate((engineer if viewer == "owner" else boss).user)
    queries = EVIDENCE_LIST_QUERIES + (2 if viewer == "manager" else 0)  # the chart walk

    with django_assert_num_queries(queries):
        response = api.get(URL)

    assert response.status_code == 200
    assert response.json()["count"] == n
    first = response.json()["results"][0]
    assert len(first["expectations"]) == 3 and len(first["skills"]) == 2


def test_evidence_list_with_filters_is_flat_too(engineer_api, engineer, ladder_version):
    counts = []
    for n in (10, 500):
        _bulk_evidence(engineer, n, ladder_version)
        with CaptureQueriesContext(connection) as ctx:
            response = engineer_api.get(URL, {"competency": "TE", "skill": "python", "q": "item"})
        assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]


# count + page; a manager adds who is asking (1) and the reports walk (2: one level of
# reports, then the empty level that ends it)
PEOPLE_LIST_QUERIES = {"admin": 2, "manager": 5}


@pytest.mark.parametrize("n", [10, 1000])
@pytest.mark.parametrize("viewer", ["admin", "manager"])
def test_people_list_query_count_is_flat(
    api, ladder, admin_user, django_assert_num_queries, n, viewer
):
    boss = PersonFactory(user__username="big-boss", ladder=ladder, level=5)
    users = UserFactory._meta.model.objects.bulk_create(
        UserFactory._meta.model(username=f"p{i}", email=f"p{i}@example.com") for i in range(n)
    )
    if any(u.pk is None for u in users):
        users = list(UserFactory._meta.model.objects.filter(username__startswith="p"))
    Person.objects.bulk_create(
        Person(user=u, email=u.email, name=u.username, ladder=ladder, level=2, manager=boss)
        for u in users
    )
    api.force_authenticate(admin_user if viewer == "admin" else boss.user)

    with django_assert_num_queries(PEOPLE_LIST_QUERIES[viewer]):
        response = api.get("/api/v1/people/")

    assert response.status_code == 200
    assert response.json()["count"] == n + 1
    assert {p["ladder"] for p in response.json()["results"]} == {"ai-ml-engineer"}
