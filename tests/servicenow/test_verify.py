"""Verify: imported evidence re-read from ServiceNow (the emulator, over real HTTP) and
compared with its snapshot — match, changed (the field diff) or deleted — for one item
(`POST evidence/{id}/verify/`) and a whole packet (`POST packets/{id}/verify/`), batched,
stored as each item's last verification, refused when the connection is gone, and open
to whoever may see the item or packet."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.evidence.models import Evidence, EvidenceVerification
from apps.evidence.services import evidence_accept
from servicenow.emulator import Emulator
from servicenow.models import Source
from tests.factories import PASSWORD, EvidenceFactory, PacketFactory, api_client

from .conftest import make_connection, make_dataset, make_source, run_sync

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def small_emulator():
    emu = Emulator(make_dataset(incidents=40, users=6)).start()
    yield emu
    emu.stop()


@pytest.fixture
def synced(small_emulator, org, settings):
    """The emulator's incidents synced; erin's candidates accepted (her evidence)."""
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    connection = make_connection(small_emulator)
    users = make_source(connection, "sys_user", query="active=true")
    incidents = make_source(connection, "incident")
    assert run_sync(users, "full").status == "succeeded"
    assert run_sync(incidents, "full").status == "succeeded"
    mine = list(Evidence.objects.filter(person=org.engineer).order_by("pk"))
    assert len(mine) >= 4, "the dataset assigns erin a handful of incidents"
    for ev in mine:
        evidence_accept(evidence=ev, actor=org.engineer.user)
    small_emulator.clear_log()
    return {"emu": small_emulator, "source": incidents, "evidence": mine}


def table_requests(emu) -> list[tuple]:
    return [r for r in emu.request_log if r[1].startswith("/api/now/table/")]


def verify(client, ev: Evidence):
    return client.post(f"/api/v1/evidence/{ev.pk}/verify/", {}, format="json")


def test_an_unchanged_record_matches_and_is_stored_as_the_last_verification(synced, org):
    ev = synced["evidence"][0]

    response = verify(api_client(org.engineer), ev)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["evidence"], body["result"], body["diff"]) == (ev.pk, "match", [])
    assert body["verified_by"] == "erin"
    stored = EvidenceVerification.objects.get(evidence=ev)
    assert (stored.result, stored.verified_by, stored.diff) == ("match", org.engineer.user, [])
    ev.refresh_from_db()
    assert stored.compared_sha256 == ev.snapshot_sha256 == body["compared_sha256"]
    (request,) = table_requests(synced["emu"])
    assert request[0] == "GET" and request[1].startswith("/api/now/table/incident?")


def test_a_record_edited_in_servicenow_is_changed_with_the_field_diff(synced, org):
    ev = synced["evidence"][0]
    before = ev.snapshot["short_description"]
    synced["emu"].store.update("incident", ev.work_item.sys_id, {"short_description": "Edited"})

    body = verify(api_client(org.engineer), ev).json()

    assert body["result"] == "changed"
    fields = {d["field"]: d for d in body["diff"]}
    assert fields["short_description"] == {
        "field": "short_description", "snapshot": before, "live": "Edited",
    }  # fmt: skip
    assert "sys_updated_on" in fields  # the edit moved the record's version too
    assert set(fields) <= {"short_description", "sys_updated_on"}
    assert EvidenceVerification.objects.get(evidence=ev).result == "changed"
    # a sync afterwards refreshes the snapshot, and the item matches again
    assert run_sync(synced["source"]).status == "succeeded"
    assert verify(api_client(org.engineer), ev).json()["result"] == "match"


def test_a_record_deleted_in_servicenow_is_deleted(synced, org):
    ev = synced["evidence"][1]
    synced["emu"].store.delete("incident", ev.work_item.sys_id)

    body = verify(api_client(org.engineer), ev).json()

    assert (body["result"], body["diff"]) == ("deleted", [])
    assert EvidenceVerification.objects.get(evidence=ev).result == "deleted"


def test_a_packet_is_verified_item_by_item_in_one_request(synced, org, cycle, ladder_version):
    same, edited, gone, *_rest = synced["evidence"]
    manual = EvidenceFactory(person=org.engineer, title="Manual")
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="endorsed", evidence=[same, edited, gone, manual],
                           reviewer=org.manager)  # fmt: skip
    emu = synced["emu"]
    emu.store.update("incident", edited.work_item.sys_id, {"short_description": "Edited"})
    emu.store.delete("incident", gone.work_item.sys_id)
    emu.clear_log()

    # the committee sees the endorsed packet, so it may verify it
    response = api_client(org.committee).post(f"/api/v1/packets/{packet.pk}/verify/")

    assert response.status_code == 200, response.json()
    body = response.json()
    results = {i["evidence"]: i["result"] for i in body["items"]}
    assert results == {same.pk: "match", edited.pk: "changed", gone.pk: "deleted"}
    assert body["skipped"] == [manual.pk]
    assert body["summary"] == {"match": 1, "changed": 1, "deleted": 1}
    assert body["snapshot"] == 1
    assert len(table_requests(emu)) == 1  # one sys_id IN query for the three records
    stored = {v.evidence_id: (v.result, v.verified_by) for v in EvidenceVerification.objects.all()}
    assert stored == {pk: (r, org.committee.user) for pk, r in results.items()}
    # the decision page shows each item's last verification
    client = Client()
    client.login(username="cora", password=PASSWORD)
    html = client.get(f"/packets/{packet.pk}/decide/").content.decode()
    for pk in results:
        assert f'data-testid="verification-{pk}"' in html
    assert "deleted in ServiceNow" in html


def test_a_packet_compares_the_copy_its_snapshot_froze(synced, org, cycle, ladder_version):
    # given a submitted packet whose item was refreshed by a sync after the submission
    ev = synced["evidence"][0]
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=[ev])  # fmt: skip
    synced["emu"].store.update("incident", ev.work_item.sys_id, {"short_description": "Later"})
    assert run_sync(synced["source"]).status == "succeeded"

    item = verify(api_client(org.engineer), ev).json()
    in_packet = api_client(org.manager).post(f"/api/v1/packets/{packet.pk}/verify/").json()

    # the item's own snapshot is current; the packet's copy is not
    assert item["result"] == "match"
    (answer,) = in_packet["items"]
    assert answer["result"] == "changed"
    assert {"field": "short_description", "snapshot": ev.snapshot["short_description"],
            "live": "Later"} in answer["diff"]  # fmt: skip


def test_a_disabled_source_is_a_clear_409_that_changes_nothing(synced, org, cycle, ladder_version):
    ev = synced["evidence"][0]
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=[ev])  # fmt: skip
    Source.objects.filter(pk=synced["source"].pk).update(enabled=False)

    item = verify(api_client(org.engineer), ev)
    whole = api_client(org.engineer).post(f"/api/v1/packets/{packet.pk}/verify/")

    for response in (item, whole):
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "servicenow_unavailable"
        assert "disabled" in error["message"]
    assert whole.json()["error"]["detail"]["items"][0]["evidence"] == str(ev.pk)
    assert not EvidenceVerification.objects.exists()
    assert table_requests(synced["emu"]) == []


def test_an_imported_item_whose_record_is_no_longer_held_is_a_409(synced, org):
    ev = synced["evidence"][0]
    Evidence.objects.filter(pk=ev.pk).update(work_item=None)  # its connection was removed

    response = verify(api_client(org.engineer), ev)

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "servicenow_unavailable"
    assert not EvidenceVerification.objects.exists()


def test_an_unreachable_instance_is_a_502_that_stores_nothing(synced, org):
    ev = synced["evidence"][0]
    synced["emu"].stop()

    response = verify(api_client(org.engineer), ev)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "servicenow_failed"
    assert not EvidenceVerification.objects.exists()
    synced["emu"].start()


def test_manual_evidence_has_nothing_to_verify(synced, org):
    manual = EvidenceFactory(person=org.engineer, title="Manual")

    response = verify(api_client(org.engineer), manual)

    assert response.status_code == 400
    assert "not imported" in response.json()["error"]["message"]


def test_whoever_sees_the_item_may_verify_it_and_nobody_else(synced, org):
    ev = synced["evidence"][0]

    answers = {role: verify(org.client(role), ev).status_code for role in org.roles()}

    # erin, her managers (the item is shared with them) and admins; the rest get a 404
    assert answers == {
        "engineer": 200, "manager": 200, "director": 200, "peer": 404, "other_manager": 404,
        "other_engineer": 404, "committee": 404, "admin": 200,
    }  # fmt: skip
    assert verify(org.client("anonymous"), ev).status_code in (401, 403)


def test_the_verify_buttons_answer_htmx_with_their_panel(synced, org, cycle, ladder_version):
    ev, other = synced["evidence"][0], synced["evidence"][1]
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=[ev, other])  # fmt: skip
    synced["emu"].store.update("incident", ev.work_item.sys_id, {"short_description": "Edited"})
    client = Client()
    client.login(username="erin", password=PASSWORD)
    page = client.get(f"/evidence/{ev.pk}/").content.decode()
    assert f'hx-post="/evidence/{ev.pk}/verify/"' in page

    panel = client.post(f"/evidence/{ev.pk}/verify/", HTTP_HX_REQUEST="true")
    packet_page = client.get(f"/packets/{packet.pk}/").content.decode()
    results = client.post(f"/packets/{packet.pk}/verify/", HTTP_HX_REQUEST="true")

    assert panel.status_code == 200
    html = panel.content.decode()
    assert 'data-result="changed"' in html and "Edited" in html
    assert f'hx-post="/packets/{packet.pk}/verify/"' in packet_page
    assert results.status_code == 200
    text = results.content.decode()
    assert f'data-testid="verify-item-{ev.pk}" data-result="changed"' in text
    assert f'data-testid="verify-item-{other.pk}" data-result="match"' in text

    # without JavaScript: a message on the page it came from
    plain = client.post(f"/evidence/{ev.pk}/verify/", follow=True)
    assert "changed since the snapshot" in plain.content.decode()

    # the connection gone: the panel says why (422, so htmx swaps it), nothing stored
    Source.objects.filter(pk=synced["source"].pk).update(enabled=False)
    refused = client.post(f"/evidence/{other.pk}/verify/", HTTP_HX_REQUEST="true")
    assert refused.status_code == 422
    assert "disabled" in refused.content.decode()
    assert EvidenceVerification.objects.get(evidence=other).verified_at  # from the packet run


def test_verifying_a_packet_reads_a_fixed_number_of_queries(synced, org, cycle, ladder_version):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    mine = synced["evidence"]
    small = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                          state="endorsed", evidence=mine[:1], reviewer=org.manager)  # fmt: skip
    api = api_client(org.committee)

    def queries(packet) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as ctx:
            body = api.post(f"/api/v1/packets/{packet.pk}/verify/").json()
        return len(ctx.captured_queries), len(body["items"])

    few, n_few = queries(small)
    small.state = "withdrawn"  # one open packet per person and cycle
    small.save(update_fields=["state"])
    large = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                          state="endorsed", evidence=mine, reviewer=org.manager)  # fmt: skip
    many, n_many = queries(large)

    assert n_few == 1 and n_many >= 4  # one item per expectation of the level, round robin
    assert many == few
