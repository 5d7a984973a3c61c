"""A work item follows the visibility of the evidence made from it (DESIGN.md "Who sees
what"): every reader of work items — the API's list, detail, filters and counts, and the
evidence pages that show an item's number — for every role, with the evidence shared,
private, deleted or not made yet."""

import pytest
from django.test import Client

from apps.evidence.candidates import candidates_import
from apps.evidence.models import Evidence
from apps.evidence.services import evidence_accept, evidence_delete, evidence_update
from servicenow.models import WorkItem
from servicenow.sync.workitems import work_item_candidate, work_item_snapshot
from tests.factories import PASSWORD, api_client

from .test_api import WORK_ITEMS, acme, make_work_items, plain_source

pytestmark = pytest.mark.django_db

ROLES = ["engineer", "manager", "director", "peer", "other_manager", "committee", "admin"]
# Who reads erin's work item, by the state of the evidence erin made from it.
SEES = {
    "shared": {"engineer", "manager", "director", "admin"},
    "private": {"engineer", "admin"},
    "deleted": {"engineer", "admin"},
    "not_made_yet": {"engineer", "manager", "director", "admin"},
}


def imported(item: WorkItem, person) -> Evidence:
    """The candidate the sync makes for `person` from `item` (its own builders and writer)."""
    raw = {"number": item.number, "short_description": item.short_description}
    snapshot = work_item_snapshot(
        instance_url=item.connection.instance_url,
        table=item.table,
        sys_id=item.sys_id,
        raw=raw,
        updated_on=item.sys_updated_on,
    )
    candidate = work_item_candidate(
        work_item_id=item.pk,
        person_id=person.pk,
        snapshot=snapshot,
        raw=raw,
        occurred=item.sys_updated_on,
        rules=[],
    )
    candidates_import(candidates=[candidate])
    return Evidence.objects.get(person=person, work_item=item)


def erins_item(org, case: str) -> WorkItem:
    source = plain_source(acme())
    (item,) = make_work_items(source, 1, org.engineer)
    if case != "not_made_yet":
        evidence = imported(item, org.engineer)
        actor = org.engineer.user
        if case == "private":
            evidence_update(evidence=evidence, actor=actor, visibility="private")
        elif case == "deleted":
            evidence_delete(evidence=evidence, actor=actor)
    return item


@pytest.mark.parametrize("case", SEES.keys())
@pytest.mark.parametrize("role", ROLES)
def test_every_api_reader_follows_the_evidence(org, role, case):
    # given erin's work item, and the evidence she made from it in state `case`
    item = erins_item(org, case)
    api = org.client(role)
    visible = role in SEES[case]

    # when each reader asks
    listed = api.get(WORK_ITEMS).json()
    detail = api.get(f"{WORK_ITEMS}{item.pk}/")
    by_person = api.get(WORK_ITEMS, {"person": org.engineer.pk}).json()
    by_source = api.get(WORK_ITEMS, {"source": item.source_id}).json()
    by_table = api.get(WORK_ITEMS, {"table": "incident"}).json()

    # then the item is there for exactly those who may see it, and counted for no one else
    expected_ids = [item.pk] if visible else []
    assert [r["id"] for r in listed["results"]] == expected_ids
    for answer in (listed, by_person, by_source, by_table):
        assert answer["count"] == len(expected_ids)
    assert detail.status_code == (200 if visible else 404)
    if not visible:
        assert detail.json()["error"]["code"] == "not_found"


def test_anonymous_readers_are_refused(org):
    item = erins_item(org, "shared")

    assert Client().get(WORK_ITEMS).status_code in (401, 403)
    assert org.client("anonymous").get(f"{WORK_ITEMS}{item.pk}/").status_code == 401


def test_shared_evidence_of_another_person_keeps_the_item_visible_to_their_managers(org):
    # given one record attributed to erin (private) and to otto on another team (shared)
    item = erins_item(org, "private")
    imported(item, org.other_engineer)

    def sees(role: str) -> bool:
        return org.client(role).get(f"{WORK_ITEMS}{item.pk}/").status_code == 200

    # then otto and his manager see it through otto's evidence; erin's managers do not
    assert {role: sees(role) for role in ROLES + ["other_engineer"]} == {
        "engineer": True,
        "manager": False,
        "director": False,
        "peer": False,
        "other_manager": True,
        "other_engineer": True,
        "committee": False,
        "admin": True,
    }


def test_making_the_evidence_private_hides_the_item_at_once_and_sharing_shows_it(org):
    item = erins_item(org, "shared")
    evidence = Evidence.objects.get(work_item=item)
    url = f"{WORK_ITEMS}{item.pk}/"
    manager = org.client("manager")
    assert manager.get(url).status_code == 200

    evidence_update(evidence=evidence, actor=org.engineer.user, visibility="private")
    assert manager.get(url).status_code == 404

    evidence_update(evidence=evidence, actor=org.engineer.user, visibility="manager")
    assert manager.get(url).status_code == 200


@pytest.mark.parametrize("role", ["manager", "peer", "other_engineer"])
def test_unknown_ids_in_filters_answer_like_known_ones(org, role):
    # a 400 for an id that does not exist would tell which sources and people exist
    item = erins_item(org, "private")
    api = org.client(role)

    for params in (
        {"source": item.source_id},
        {"source": 999_999},
        {"person": org.engineer.pk},
        {"person": 999_999},
    ):
        response = api.get(WORK_ITEMS, params)
        assert (response.status_code, response.json()["count"]) == (200, 0), params


def test_a_filter_that_is_not_a_number_is_a_400_naming_it(org):
    response = org.client("manager").get(WORK_ITEMS, {"person": "erin"})

    assert response.status_code == 400
    assert "person" in response.json()["error"]["detail"]


@pytest.mark.parametrize("size", [1, 20])
def test_a_managers_list_takes_the_same_queries_whatever_the_size(
    org, size, django_assert_num_queries
):
    # given erin's items, half of them made private
    source = plain_source(acme())
    items = make_work_items(source, size, org.engineer)
    for n, item in enumerate(items):
        evidence = imported(item, org.engineer)
        if n % 2:
            evidence_update(evidence=evidence, actor=org.engineer.user, visibility="private")
    api = api_client(org.director)

    # person, the reports walk (one query per level: omar, erin and pete, their none), count,
    # page
    with django_assert_num_queries(6):
        response = api.get(WORK_ITEMS)

    assert response.json()["count"] == (size + 1) // 2


# --- pages ---------------------------------------------------------------------------------


def signed_in(person) -> Client:
    client = Client()
    assert client.login(username=person.user.username, password=PASSWORD)
    return client


@pytest.mark.parametrize(("case", "shown"), [("shared", True), ("private", False)])
def test_team_page_and_evidence_page_show_the_item_only_when_shared(org, case, shown):
    # given erin's imported evidence, accepted, shared or private
    item = erins_item(org, case)
    evidence = Evidence.objects.get(work_item=item)
    evidence_accept(evidence=evidence, actor=org.engineer.user)
    manager = signed_in(org.manager)

    # when her manager opens the team page and the evidence page
    team = manager.get("/team/evidence/")
    detail = manager.get(f"/evidence/{evidence.pk}/")

    # then the item's number appears only when erin shared it
    assert team.status_code == 200
    assert (item.number in team.content.decode()) is shown
    assert detail.status_code == (200 if shown else 404)
    if shown:
        assert item.number in detail.content.decode()
