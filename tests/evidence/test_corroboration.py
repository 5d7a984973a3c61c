"""Corroborators: who saw an imported item's work, read from the emulator over real HTTP;
asking one, the mail, confirming or declining; the 400s; what a corroborator may see; the
confirmations on the evidence, in the packet, the committee view and the exports."""

from __future__ import annotations

import json

import pytest
from django.core import mail
from django.utils.html import escape

from apps.evidence.models import Corroboration, Evidence
from apps.packets import exports
from servicenow.emulator import Emulator
from tests.factories import EvidenceFactory, PacketFactory, api_client

from .corroboration_setup import dataset, sync_items

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def emu():
    emulator = Emulator(dataset()).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def items(emu, org, settings):
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    return sync_items(emu, org)


def suggestions(person, evidence) -> list[dict]:
    response = api_client(person).get(f"/api/v1/evidence/{evidence.pk}/corroborators/")
    assert response.status_code == 200, response.content
    return response.json()


def ask(person, evidence, whom) -> object:
    return api_client(person).post(
        f"/api/v1/evidence/{evidence.pk}/corroborations/", {"person": whom.pk}, format="json"
    )


def test_suggestions_carry_each_reason_only_known_people_never_the_owner(items, org):
    incident, change = items
    got = {s["name"]: s["reasons"] for s in suggestions(org.engineer, incident)}
    assert got == {
        "Pete": ["co-assignee", "wrote a comment"],  # additional_assignee_list + journal
        "Omar": ["wrote a work note"],  # journal author by user name, matched by email
        "Cora": ["caller"],
    }
    # the stranger (no person here), erin herself (opened_by), nina's note on another
    # record and otto's close_notes are not witnesses of the incident
    got = {s["name"]: s["reasons"] for s in suggestions(org.engineer, change)}
    assert got == {"Otto": ["approver (approved)"], "Nina": ["wrote a work note"]}
    assert all(s["corroboration"] is None for s in suggestions(org.engineer, change))


def test_unreachable_instance_is_a_clear_502(items, org, emu):
    incident, _ = items
    emu.stop()
    response = api_client(org.engineer).get(f"/api/v1/evidence/{incident.pk}/corroborators/")
    assert response.status_code == 502
    body = response.json()["error"]
    assert body["code"] == "servicenow_unavailable"
    assert "INC0000100" in body["message"]
    assert "integration-pass" not in response.content.decode()


def test_only_the_owner_asks_and_a_manual_item_has_no_corroborators(items, org):
    incident, _ = items
    # omar manages erin and sees the (shared) item, but may not ask for her
    assert (
        api_client(org.manager).get(f"/api/v1/evidence/{incident.pk}/corroborators/").status_code
        == 403
    )
    assert ask(org.manager, incident, org.peer).status_code == 403
    manual = EvidenceFactory(person=org.engineer, title="Hand-written")
    response = api_client(org.engineer).get(f"/api/v1/evidence/{manual.pk}/corroborators/")
    assert response.status_code == 400
    assert ask(org.engineer, manual, org.peer).status_code == 400


def test_the_evidence_page_asks_servicenow_only_when_the_owner_clicks(items, org, emu, client):
    incident, _ = items
    client.force_login(org.engineer.user)
    emu.request_log.clear()

    page = client.get(f"/evidence/{incident.pk}/")

    assert page.status_code == 200
    assert emu.request_log == []  # opening the page reads nothing from the instance
    link = f'href="/evidence/{incident.pk}/corroborators/"'
    assert link in page.content.decode() and 'hx-trigger="load"' not in page.content.decode()
    found = client.get(f"/evidence/{incident.pk}/corroborators/", HTTP_HX_REQUEST="true")
    assert found.status_code == 200 and "Ask " in found.content.decode()
    assert emu.request_log  # the click does


def test_request_mail_and_confirm_flow(items, org):
    incident, _ = items
    mail.outbox.clear()
    response = ask(org.engineer, incident, org.peer)
    assert response.status_code == 201, response.content
    request_id = response.json()["id"]
    assert response.json()["state"] == "pending"

    (message,) = mail.outbox
    assert message.to == ["pete@example.com"]
    link = f"https://ladder.test/corroborations/{request_id}/"
    assert link in message.body
    html, kind = message.alternatives[0]
    assert kind == "text/html" and link in html and "Erin" in html

    to_me = api_client(org.peer).get("/api/v1/corroborations/?role=to_me").json()["results"]
    assert [c["id"] for c in to_me] == [request_id]
    assert to_me[0]["snapshot"]["number"] == "INC0000100"
    asked = api_client(org.engineer).get("/api/v1/corroborations/?role=asked").json()["results"]
    assert [c["id"] for c in asked] == [request_id]
    assert (
        api_client(org.engineer).get("/api/v1/corroborations/?role=to_me").json()["results"] == []
    )

    # only the corroborator answers
    path = f"/api/v1/corroborations/{request_id}/confirm/"
    assert api_client(org.engineer).post(path, {}, format="json").status_code == 404
    done = api_client(org.peer).post(path, {"comment": "Paired on it."}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "confirmed"
    # once only
    again = api_client(org.peer).post(
        f"/api/v1/corroborations/{request_id}/decline/", {}, format="json"
    )
    assert again.status_code == 400
    assert Corroboration.objects.get(pk=request_id).state == "confirmed"

    body = api_client(org.engineer).get(f"/api/v1/evidence/{incident.pk}/").json()
    (shown,) = body["corroborations"]
    assert shown["person"] == org.peer.pk and shown["name"] == "Pete"
    assert shown["state"] == "confirmed" and shown["comment"] == "Paired on it."
    assert shown["answered_at"].endswith("Z")
    # the suggestion now says it was asked
    pete = next(s for s in suggestions(org.engineer, incident) if s["name"] == "Pete")
    assert pete["state"] == "confirmed" and pete["corroboration"] == request_id


def test_decline(items, org):
    incident, _ = items
    request_id = ask(org.engineer, incident, org.committee).json()["id"]
    response = api_client(org.committee).post(
        f"/api/v1/corroborations/{request_id}/decline/", {"comment": "Not me"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["state"] == "declined" and response.json()["comment"] == "Not me"


def test_the_400s(items, org):
    incident, _ = items
    assert ask(org.engineer, incident, org.peer).status_code == 201
    twice = ask(org.engineer, incident, org.peer)
    assert twice.status_code == 400
    assert twice.json()["error"]["detail"]["person"] == ["already asked"]
    # answered counts too
    c = Corroboration.objects.get(evidence=incident, person=org.peer)
    api_client(org.peer).post(f"/api/v1/corroborations/{c.pk}/decline/", {}, format="json")
    assert ask(org.engineer, incident, org.peer).status_code == 400
    me = ask(org.engineer, incident, org.engineer)
    assert me.status_code == 400 and me.json()["error"]["detail"]["person"] == ["that is you"]
    unknown = api_client(org.engineer).post(
        f"/api/v1/evidence/{incident.pk}/corroborations/", {"person": 999999}, format="json"
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["detail"]["person"] == ["unknown person"]
    bad = api_client(org.engineer).post(
        f"/api/v1/evidence/{incident.pk}/corroborations/", {"person": "x"}, format="json"
    )
    assert bad.status_code == 400
    assert Corroboration.objects.count() == 1
    for role in ("", "mine"):
        listed = api_client(org.engineer).get(f"/api/v1/corroborations/?role={role}")
        assert listed.status_code == 400 and "role" in listed.json()["error"]["detail"]
    assert api_client(org.peer).get("/api/v1/corroborations/x/").status_code == 404
    confirm_bad = api_client(org.peer).post(
        f"/api/v1/corroborations/{c.pk}/confirm/", {"comment": "x" * 2001}, format="json"
    )
    assert confirm_bad.status_code == 400


def test_a_corroborator_sees_that_one_item_and_nothing_else(items, org, client):
    incident, change = items
    other = EvidenceFactory(person=org.engineer, title="Erin's other work")
    request_id = ask(org.engineer, incident, org.other_engineer).json()["id"]
    otto = api_client(org.other_engineer)
    # the request shows the item's title and snapshot
    seen = otto.get(f"/api/v1/corroborations/{request_id}/").json()
    assert seen["evidence_title"] == incident.title
    assert seen["snapshot"]["number"] == "INC0000100"
    # ... and nothing else of erin's: the evidence API stays 404 for him
    for ev in (incident, change, other):
        assert otto.get(f"/api/v1/evidence/{ev.pk}/").status_code == 404
        assert otto.get(f"/api/v1/evidence/{ev.pk}/history/").status_code == 404
    assert otto.get(f"/api/v1/evidence/?person={org.engineer.pk}").json()["results"] == []
    # someone else's request is 404 too
    assert api_client(org.peer).get(f"/api/v1/corroborations/{request_id}/").status_code == 404
    # pages: the request page shows the item, the evidence page does not
    client.force_login(org.other_engineer.user)
    page = client.get(f"/corroborations/{request_id}/")
    assert page.status_code == 200
    assert escape(incident.title) in page.content.decode()
    assert "INC0000100" in page.content.decode()
    assert client.get(f"/evidence/{incident.pk}/").status_code == 404
    assert client.get(f"/evidence/{other.pk}/").status_code == 404


def test_pages_ask_and_answer(items, org, client):
    incident, _ = items
    client.force_login(org.engineer.user)
    page = client.get(f"/evidence/{incident.pk}/")
    assert f'hx-get="/evidence/{incident.pk}/corroborators/"' in page.content.decode()
    panel = client.get(f"/evidence/{incident.pk}/corroborators/").content.decode()
    assert "Ask Pete" in panel and "co-assignee, wrote a comment" in panel
    assert "Ask Erin" not in panel
    asked = client.post(
        f"/evidence/{incident.pk}/corroborations/",
        {"person": org.peer.pk, "reasons": ["co-assignee"]},
        HTTP_HX_REQUEST="true",
    )
    assert asked.status_code == 200 and "Asked" in asked.content.decode()
    c = Corroboration.objects.get(evidence=incident, person=org.peer)
    assert c.reasons == ["co-assignee"]

    client.force_login(org.peer.user)
    listing = client.get("/corroborations/").content.decode()
    assert escape(incident.title) in listing and 'value="confirm"' in listing
    home = client.get("/evidence/").content.decode()
    assert 'aria-label="1 waiting">1</span>' in home  # the nav's pending count
    response = client.post(
        f"/corroborations/{c.pk}/", {"answer": "confirm", "comment": "I saw it ship"}
    )
    assert response.status_code == 302
    c.refresh_from_db()
    assert c.state == "confirmed" and c.comment == "I saw it ship"

    client.force_login(org.engineer.user)
    page = client.get(f"/evidence/{incident.pk}/").content.decode()
    assert "I saw it ship" in page and "confirmed" in page


def test_confirmations_in_packet_committee_and_exports(items, org, client, cycle, ladder_version):
    incident, _ = items
    Evidence.objects.filter(pk=incident.pk).update(status="accepted")
    request_id = ask(org.engineer, incident, org.peer).json()["id"]
    api_client(org.peer).post(
        f"/api/v1/corroborations/{request_id}/confirm/", {"comment": "Paired"}, format="json"
    )
    pending = ask(org.engineer, incident, org.committee).json()["id"]
    assert pending
    packet = PacketFactory(
        person=org.engineer,
        cycle=cycle,
        ladder_version=ladder_version,
        state="endorsed",
        evidence=[Evidence.objects.get(pk=incident.pk)],
        reviewer=org.manager,
    )
    data, _sha, _ = exports.packet_export_data(packet, None, viewer=org.committee.user)
    items_shown = [i for e in data["expectations"] for i in e["items"]]
    assert items_shown
    for item in items_shown:  # answered only: the pending one is not in the packet
        assert [(c["name"], c["state"], c["comment"]) for c in item["corroborations"]] == [
            ("Pete", "confirmed", "Paired")
        ]
    assert "Confirmed by Pete: Paired" in exports.packet_markdown(data)
    assert (
        json.loads(exports.packet_json(data))["expectations"][0]["items"][0]["corroborations"][0][
            "name"
        ]
        == "Pete"
    )
    assert "Confirmed by Pete" in exports.packet_html(data)
    api_md = api_client(org.committee).get(f"/api/v1/packets/{packet.pk}/export/?format=md")
    assert api_md.status_code == 200 and "Confirmed by Pete: Paired" in api_md.content.decode()

    client.force_login(org.committee.user)
    committee = client.get(f"/packets/committee/?cycle={cycle.pk}").content.decode()
    assert 'data-label="Confirmed items">1</td>' in committee
    decide = client.get(f"/packets/{packet.pk}/decide/").content.decode()
    assert "by Pete" in decide and "Paired" in decide


def test_builder_shows_confirmations(items, org, client, cycle, ladder_version):
    incident, _ = items
    Evidence.objects.filter(pk=incident.pk).update(status="accepted")
    request_id = ask(org.engineer, incident, org.peer).json()["id"]
    api_client(org.peer).post(f"/api/v1/corroborations/{request_id}/confirm/", {}, format="json")
    packet = PacketFactory(
        person=org.engineer, cycle=cycle, ladder_version=ladder_version, state="draft"
    )
    client.force_login(org.engineer.user)
    page = client.get(f"/packets/{packet.pk}/").content.decode()
    assert "confirmed by 1" in page


@pytest.mark.parametrize("n", [1, 8])
def test_list_queries_do_not_grow(items, org, n, django_assert_num_queries):
    incident, _ = items
    for i in range(n):
        ev = EvidenceFactory(person=org.engineer, title=f"more {i}")
        Corroboration.objects.create(evidence=ev, person=org.peer, asked_by=org.engineer)
    client = api_client(org.peer)
    # person_for_user, the count, the page (with evidence, person and asker joined)
    with django_assert_num_queries(3):
        body = client.get("/api/v1/corroborations/").json()
    assert body["count"] == n
