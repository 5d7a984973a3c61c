"""A newer ladder version: packets say they moved on, a draft moves, decided packets never
change, and each engineer sees what changed for their next level (issue 13.1).

Version 2 (tests/fixtures/ladders/ai-ml-engineer-v2.yaml) rewords TE-3.2, removes TE-3.3
and adds TE-3.4; erin is at level 2, so level 3 is her next level."""

import pytest

from apps.evidence.services import LinkSpec
from apps.packets.models import Packet, PacketEvent, PacketItem
from apps.packets.selectors import ladder_changes_for_person
from tests.factories import (
    EvidenceFactory,
    PacketFactory,
    PromotionCycleFactory,
    api_client,
    level_codes,
)
from tests.ladders.test_versions import publish_v2

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin_work(org):
    erin = org.engineer
    return {
        code: EvidenceFactory(
            person=erin, title=f"Work for {code}", links=[LinkSpec(expectation=code)]
        )
        for code in ("TE-3.1", "TE-3.2", "TE-3.3")
    }


def packet_body(client, packet):
    response = client.get(f"/api/v1/packets/{packet.pk}/")
    assert response.status_code == 200
    return response.json()


# --- packets pinned to an older version ------------------------------------------------------


def test_a_packet_says_when_its_ladder_moved_on(org, cycle, ladder_version):
    erin = org.engineer
    packet = PacketFactory(person=erin, cycle=cycle)
    client = api_client(erin)
    body = packet_body(client, packet)
    assert (body["ladder_version"], body["ladder_latest_version"], body["ladder_moved_on"]) == (
        1, 1, False,
    )  # fmt: skip

    publish_v2()
    body = packet_body(client, packet)
    assert (body["ladder_version"], body["ladder_latest_version"], body["ladder_moved_on"]) == (
        1, 2, True,
    )  # fmt: skip
    listed = client.get("/api/v1/packets/").json()["results"]
    assert [(p["id"], p["ladder_moved_on"]) for p in listed] == [(packet.pk, True)]


def test_moving_a_draft_carries_items_by_code_and_shows_the_gaps(org, cycle, ladder_version):
    erin = org.engineer
    packet = PacketFactory(person=erin, cycle=cycle)  # covers every level-3 code of v1
    before = dict(
        PacketItem.objects.filter(packet=packet).values_list("expectation__code", "evidence_id")
    )
    v2 = publish_v2()

    response = api_client(erin).post(f"/api/v1/packets/{packet.pk}/move-to-latest/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["from_version"], body["to_version"]) == (1, 2)
    assert body["packet"]["ladder_version"] == 2 and body["packet"]["ladder_moved_on"] is False
    assert body["dropped"] == [{"expectation": "TE-3.3", "evidence": before["TE-3.3"]}]
    assert body["reworded"] == ["TE-3.2"]
    assert {c["expectation"] for c in body["carried"]} == set(before) - {"TE-3.3"}
    assert body["gaps"] == ["TE-3.4"]
    packet.refresh_from_db()
    assert packet.ladder_version == v2
    items = PacketItem.objects.filter(packet=packet).select_related("expectation")
    assert {i.expectation.version_id for i in items} == {v2.pk}
    assert {i.expectation.code: i.evidence_id for i in items} == {
        k: v for k, v in before.items() if k != "TE-3.3"
    }
    coverage = api_client(erin).get(f"/api/v1/packets/{packet.pk}/coverage/").json()
    assert coverage["gaps"] == ["TE-3.4"]
    assert set(level_codes(v2, 3)) == {e["code"] for e in coverage["expectations"]}
    event = PacketEvent.objects.filter(packet=packet, action="move-to-latest").get()
    assert "v1 to v2" in event.comment and "TE-3.3" in event.comment

    again = api_client(erin).post(f"/api/v1/packets/{packet.pk}/move-to-latest/")
    assert again.status_code == 200
    assert (again.json()["from_version"], again.json()["to_version"]) == (2, 2)


@pytest.mark.parametrize("state", ["submitted", "changes_requested", "endorsed", "promoted"])
def test_a_packet_past_draft_refuses_to_move_and_never_changes(org, cycle, ladder_version, state):
    erin = org.engineer
    packet = PacketFactory(
        person=erin, cycle=cycle, state=state, reviewer=org.manager, decider=org.committee
    )
    snapshots = list(packet.snapshots.values_list("sha256", "data"))
    items = list(
        PacketItem.objects.filter(packet=packet).values_list("expectation_id", "evidence_id")
    )
    publish_v2()

    response = api_client(erin).post(f"/api/v1/packets/{packet.pk}/move-to-latest/")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "conflict"
    assert "only a draft moves" in error["message"]
    packet.refresh_from_db()
    assert packet.ladder_version == ladder_version and packet.state == state
    assert list(packet.snapshots.values_list("sha256", "data")) == snapshots
    assert (
        list(PacketItem.objects.filter(packet=packet).values_list("expectation_id", "evidence_id"))
        == items
    )


def test_only_the_owner_moves_a_draft(org, cycle, ladder_version):
    packet = PacketFactory(person=org.engineer, cycle=cycle)
    publish_v2()
    response = api_client(org.manager).post(f"/api/v1/packets/{packet.pk}/move-to-latest/")
    assert response.status_code == 403
    packet.refresh_from_db()
    assert packet.ladder_version == ladder_version


def test_the_packet_page_shows_the_banner_and_moves_a_draft(client, org, cycle, ladder_version):
    erin = org.engineer
    draft = PacketFactory(person=erin, cycle=cycle)
    client.force_login(erin.user)
    html = client.get(f"/packets/{draft.pk}/").content.decode()
    assert 'id="ladder-moved-on"' not in html

    publish_v2()
    html = client.get(f"/packets/{draft.pk}/").content.decode()
    assert 'id="ladder-moved-on"' in html
    assert "the current version is v2" in html
    assert "TE-3.4" in html and "Builds evaluation suites that gate production models" in html
    assert "<del>Experience with model deployment and monitoring</del>" in html
    assert 'id="move-to-latest"' in html

    response = client.post(f"/packets/{draft.pk}/move-to-latest/", follow=True)
    html = response.content.decode()
    assert "Moved to ladder v2" in html and "TE-3.3" in html and "gaps now: TE-3.4" in html
    assert 'id="ladder-moved-on"' not in html
    draft.refresh_from_db()
    assert draft.ladder_version.number == 2


def test_a_decided_packet_page_shows_the_banner_without_the_button(
    client, org, cycle, ladder_version
):
    packet = PacketFactory(
        person=org.engineer,
        cycle=cycle,
        state="promoted",
        reviewer=org.manager,
        decider=org.committee,
    )
    publish_v2()
    client.force_login(org.engineer.user)
    html = client.get(f"/packets/{packet.pk}/").content.decode()
    assert 'id="ladder-moved-on"' in html
    assert "keeps the version it was made against" in html
    assert 'id="move-to-latest"' not in html


# --- what changed for you --------------------------------------------------------------------


def test_ladder_changes_api_lists_changes_for_the_next_level_and_what_they_touch(
    org, cycle, ladder_version, erin_work
):
    erin = org.engineer
    draft = PacketFactory(person=erin, cycle=cycle, evidence=[erin_work["TE-3.3"]])
    publish_v2()

    response = api_client(erin).get("/api/v1/people/me/ladder-changes/")

    assert response.status_code == 200
    body = response.json()
    assert (body["ladder"], body["from_version"], body["to_version"], body["changed"]) == (
        "ai-ml-engineer", 1, 2, True,
    )  # fmt: skip
    assert body["evidence_flagged"] == 2  # TE-3.2 reworded, TE-3.3 removed
    nxt, current = body["levels"]
    assert (nxt["level"], nxt["role"], current["level"], current["role"]) == (
        3,
        "next",
        2,
        "current",
    )
    assert current["added"] == current["removed"] == current["reworded"] == []
    assert [(c["code"], c["after"], c["evidence"]) for c in nxt["added"]] == [
        ("TE-3.4", "Builds evaluation suites that gate production models", [])
    ]
    (removed,) = nxt["removed"]
    assert (
        removed["code"] == "TE-3.3"
        and removed["before"] == "Experience with model deployment and monitoring"
    )
    assert [e["id"] for e in removed["evidence"]] == [erin_work["TE-3.3"].pk]
    assert removed["evidence"][0] == {
        "id": erin_work["TE-3.3"].pk, "title": "Work for TE-3.3",
        "made_against_version": 1, "ladder_change": "removed",
    }  # fmt: skip
    assert removed["packets"] == [draft.pk]
    (reworded,) = nxt["reworded"]
    assert (reworded["code"], reworded["before"], reworded["after"]) == (
        "TE-3.2",
        "Uses MLflow, Airflow, CI/CD tools",
        "Runs models through MLflow, Airflow and CI/CD pipelines",
    )
    assert [e["id"] for e in reworded["evidence"]] == [erin_work["TE-3.2"].pk]
    assert body["packets"] == [
        {"id": draft.pk, "state": "draft", "target_level": 3, "ladder_version": 1}
    ]


def test_nothing_changed_for_someone_whose_work_is_on_the_latest_version(org, ladder_version):
    publish_v2()
    EvidenceFactory(person=org.peer, links=[LinkSpec(expectation="TE-3.4")])  # made on v2
    body = api_client(org.peer).get("/api/v1/people/me/ladder-changes/").json()
    assert body["changed"] is False
    assert (body["from_version"], body["to_version"], body["levels"]) == (2, 2, [])


def test_ladder_changes_needs_a_person(admin_user, ladder_version):
    response = api_client(admin_user).get("/api/v1/people/me/ladder-changes/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("n", [1, 25])
def test_ladder_changes_queries_do_not_grow(
    org, cycle, ladder_version, django_assert_num_queries, n
):
    erin = org.engineer
    for _ in range(n):
        EvidenceFactory(
            person=erin, links=[LinkSpec(expectation="TE-3.2"), LinkSpec(expectation="TE-3.3")]
        )
    for _ in range(min(n, 3)):
        PacketFactory(person=erin, cycle=cycle, state="withdrawn")
    PacketFactory(person=erin, cycle=cycle)
    publish_v2()
    client = api_client(erin)
    # the person, the latest version (+ its ladder), the links, the packets, the oldest
    # version, the two sides of the diff, the packets' items
    with django_assert_num_queries(9):
        body = client.get("/api/v1/people/me/ladder-changes/").json()
    assert len(body["levels"][0]["reworded"][0]["evidence"]) == n


def test_the_what_changed_page_and_the_links_to_it(client, org, cycle, ladder_version, erin_work):
    erin = org.engineer
    client.force_login(erin.user)
    assert 'id="ladder-changes-link"' not in client.get("/evidence/").content.decode()
    assert "What changed for you" not in client.get("/ladders/ai-ml-engineer/").content.decode()
    assert 'id="no-ladder-changes"' in client.get("/ladder-changes/").content.decode()

    publish_v2()
    assert 'id="ladder-changes-link"' in client.get("/evidence/").content.decode()
    assert 'id="ladder-changes-link"' in client.get("/ladders/ai-ml-engineer/").content.decode()
    html = client.get("/ladder-changes/").content.decode()
    assert "Between v1" in html and "v2 (the current version)" in html
    assert 'class="change-added"' in html and "TE-3.4" in html
    assert f'href="/evidence/{erin_work["TE-3.3"].pk}/"' in html
    assert f'href="/evidence/{erin_work["TE-3.2"].pk}/"' in html
    assert "<del>Uses MLflow, Airflow, CI/CD tools</del>" in html


def test_the_selector_with_no_published_ladder(org):
    assert ladder_changes_for_person(person=None).changed is False
    assert Packet.objects.count() == 0


# --- the schema documents what the endpoints answer -------------------------------------------


def test_the_new_answers_validate_against_the_schema(spec, org, cycle, ladder_version, erin_work):
    from tests.test_openapi_responses import assert_documented

    erin = org.engineer
    draft = PacketFactory(person=erin, cycle=cycle, evidence=[erin_work["TE-3.2"]])
    decided = PacketFactory(
        person=erin, cycle=PromotionCycleFactory(name="H1"), state="promoted",
        reviewer=org.manager, decider=org.committee,
    )  # fmt: skip
    publish_v2()
    client = api_client(erin)
    changes = "/api/v1/people/me/ladder-changes/"
    assert_documented(spec, changes, "get", client.get(changes))
    assert_documented(spec, changes, "get", api_client(org.admin.user).get(changes))
    detail = "/api/v1/packets/{id}/"
    assert_documented(spec, detail, "get", client.get(f"/api/v1/packets/{draft.pk}/"))
    move = "/api/v1/packets/{id}/move-to-latest/"
    assert_documented(
        spec, move, "post", client.post(f"/api/v1/packets/{decided.pk}/move-to-latest/")
    )
    assert_documented(
        spec, move, "post", client.post(f"/api/v1/packets/{draft.pk}/move-to-latest/")
    )
    evidence = "/api/v1/evidence/{id}/"
    pk = erin_work["TE-3.3"].pk
    assert_documented(spec, evidence, "get", client.get(f"/api/v1/evidence/{pk}/"))
    confirm = "/api/v1/evidence/{id}/confirm-link/"
    pk = erin_work["TE-3.2"].pk
    assert_documented(
        spec,
        confirm,
        "post",
        client.post(f"/api/v1/evidence/{pk}/confirm-link/", {"code": "TE-3.2"}),
    )
    assert (
        spec["components"]["schemas"]["Packet"]["properties"]["ladder_moved_on"]["type"]
        == "boolean"
    )


def test_deleted_evidence_is_not_touched_and_does_not_hold_the_from_version(org, ladder_version):
    from apps.evidence.services import evidence_delete

    erin = org.engineer
    gone = EvidenceFactory(person=erin, links=[LinkSpec(expectation="TE-3.3")])
    evidence_delete(evidence=gone, actor=erin.user)
    publish_v2()
    body = api_client(erin).get("/api/v1/people/me/ladder-changes/").json()
    assert body["changed"] is False and body["evidence_flagged"] == 0


def test_the_what_changed_page_escapes_evidence_titles(client, org, ladder_version):
    erin = org.engineer
    EvidenceFactory(
        person=erin, title='<script>alert("x")</script>', links=[LinkSpec(expectation="TE-3.2")]
    )
    publish_v2()
    client.force_login(erin.user)
    html = client.get("/ladder-changes/").content.decode()
    assert '<script>alert("x")</script>' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
