"""The packet journey through the API: build, submit, request changes, resubmit, endorse,
decide; the person's level changes with history; snapshots freeze what was submitted."""

import pytest
from django.core import mail

from apps.evidence.services import evidence_update
from apps.packets.models import Packet
from apps.people.models import LevelChange
from tests.factories import api_client

pytestmark = pytest.mark.django_db


def _build(erin, cycle, evidence, codes):
    api = api_client(erin)
    packet = api.post("/api/v1/packets/", {"cycle": cycle.pk}, format="json").json()
    items = [{"expectation": c, "evidence": evidence[i % len(evidence)].pk, "note": f"n{i}"}
             for i, c in enumerate(codes)]  # fmt: skip
    r = api.patch(f"/api/v1/packets/{packet['id']}/",
                  {"items": items, "narratives": {"Technical Expertise": "I *built* it"}},
                  format="json")  # fmt: skip
    assert r.status_code == 200, r.json()
    return api, packet["id"]


def _level3_codes(ladder_version):
    return list(ladder_version.expectations.filter(level__number=3).order_by("position")
                .values_list("code", flat=True))  # fmt: skip


def test_whole_journey(
    org, cycle, engineer_evidence, ladder_version, django_capture_on_commit_callbacks
):
    codes = _level3_codes(ladder_version)
    erin, omar, cora = org.engineer, org.manager, org.committee
    api, pk = _build(erin, cycle, engineer_evidence, codes[:2])

    low = api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json")
    assert low.status_code == 400
    assert set(low.json()["error"]["detail"]["gaps"]) == set(codes[2:])

    api.patch(
        f"/api/v1/packets/{pk}/",
        {"items": [{"expectation": c, "evidence": engineer_evidence[0].pk} for c in codes]},
        format="json",
    )
    with django_capture_on_commit_callbacks(execute=True):
        submitted = api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json")
    assert submitted.status_code == 200
    assert mail.outbox[-1].to == [omar.email]

    manager = api_client(omar)
    changes = manager.post(f"/api/v1/packets/{pk}/request-changes/", {"comment": "More"},
                           format="json")  # fmt: skip
    assert changes.json()["state"] == "changes_requested"
    evidence_update(evidence=engineer_evidence[0], actor=erin.user, title="Renamed later")
    assert api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json").status_code == 200

    snaps = api.get(f"/api/v1/packets/{pk}/snapshots/").json()
    assert [s["number"] for s in snaps] == [1, 2] and len(snaps[0]["sha256"]) == 64
    first = api.get(f"/api/v1/packets/{pk}/snapshots/1/").json()["data"]
    titles = {i["title"] for e in first["expectations"] for i in e["items"]}
    assert "Work 0" in titles and "Renamed later" not in titles  # frozen at submission

    assessments = [{"expectation": c, "rating": "meets"} for c in codes]
    endorse = manager.post(
        f"/api/v1/packets/{pk}/endorse/",
        {"comment": "Ready", "assessments": assessments},
        format="json",
    )
    assert endorse.status_code == 200, endorse.json()
    again = manager.post(f"/api/v1/packets/{pk}/endorse/", {}, format="json")
    assert again.status_code == 409

    decide = api_client(cora).post(
        f"/api/v1/packets/{pk}/decide/",
        {"outcome": "promoted", "rationale": "Clear"},
        format="json",
    )
    assert decide.status_code == 200, decide.json()
    erin.refresh_from_db()
    assert erin.level == 3
    change = LevelChange.objects.filter(person=erin).latest("id")
    assert (change.from_level, change.to_level, change.packet_id) == (2, 3, pk)
    events = [e["to_state"] for e in api.get(f"/api/v1/packets/{pk}/events/").json()]
    assert events == ["draft", "submitted", "changes_requested", "submitted", "endorsed",
                      "promoted"]  # fmt: skip


def test_exports(org, cycle, engineer_evidence, ladder_version):
    codes = _level3_codes(ladder_version)
    api, pk = _build(org.engineer, cycle, engineer_evidence, codes)
    api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json")

    md = api.get(f"/api/v1/packets/{pk}/export/?format=md")
    pdf = api.get(f"/api/v1/packets/{pk}/export/?format=pdf")
    js = api.get(f"/api/v1/packets/{pk}/export/?format=json")

    assert md["Content-Type"].startswith("text/markdown")
    for code in codes:
        assert code in md.content.decode()
    assert pdf.content[:5] == b"%PDF-"
    assert js.json()["target_level"] == 3
    assert api.get(f"/api/v1/packets/{pk}/export/?format=doc").status_code == 400


def test_committee_cannot_decide_for_own_reports(org, cycle, engineer_evidence, ladder_version):
    org.director.is_committee = True
    org.director.save()
    codes = _level3_codes(ladder_version)
    api, pk = _build(org.engineer, cycle, engineer_evidence, codes)
    api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json")
    api_client(org.manager).post(
        f"/api/v1/packets/{pk}/endorse/",
        {"assessments": [{"expectation": c, "rating": "meets"} for c in codes]},
        format="json",
    )

    r = api_client(org.director).post(
        f"/api/v1/packets/{pk}/decide/", {"outcome": "promoted", "rationale": "x"}, format="json"
    )
    assert r.status_code == 403
    assert Packet.objects.get(pk=pk).state == "endorsed"
