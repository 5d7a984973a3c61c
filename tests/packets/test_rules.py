"""The rules around the state machine (DESIGN.md "Packet states" and the packets rows of the
Public API): the submission window and its extension, the cycle's coverage minimum, frozen
snapshots, what a packet may hold, one open packet per cycle, the diff between submissions,
who is emailed after each transition, and the cycle report."""

import csv
import io
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from apps.evidence.models import Evidence
from apps.evidence.services import (
    evidence_create,
    evidence_delete,
    evidence_dismiss,
    evidence_update,
)
from apps.packets.exports import packet_data_frozen
from apps.packets.models import Packet, PacketEvent, PacketItem, PacketSnapshot
from tests.factories import (
    PACKET_STATES,
    PacketFactory,
    PersonFactory,
    PromotionCycleFactory,
    api_client,
    canonical_sha256,
    level_codes,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes(ladder_version):
    return level_codes(ladder_version, 3)


def make_cycle(name="Window", *, opens_in_days=-5, deadline_in=timedelta(days=10), minimum=0.5):
    return PromotionCycleFactory(
        name=name,
        opens_in_days=opens_in_days,
        deadline_in=deadline_in,
        decision_in_days=30,
        min_coverage=minimum,
    )


def draft(org, cycle, ladder_version, evidence, state="draft"):
    return PacketFactory(
        person=org.engineer,
        cycle=cycle,
        ladder_version=ladder_version,
        state=state,
        evidence=evidence,
        reviewer=org.manager,
        decider=org.committee,
    )


def untouched(packet, events_before):
    """A refused request wrote nothing: same state, no snapshot, no event, no email."""
    assert Packet.objects.get(pk=packet.pk).state == packet.state
    assert PacketSnapshot.objects.filter(packet=packet).count() == 0
    assert PacketEvent.objects.filter(packet=packet).count() == events_before
    assert mail.outbox == []


# --- the submission window --------------------------------------------------------------


@pytest.mark.parametrize(
    ("opens_in_days", "deadline_in"),
    [(1, timedelta(days=10)), (-30, timedelta(hours=-1)), (-30, timedelta(seconds=-1))],
    ids=["before-it-opens", "an-hour-after-the-deadline", "a-second-after-the-deadline"],
)
def test_submit_outside_the_window_is_refused(
    opens_in_days, deadline_in, org, ladder_version, engineer_evidence,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    cycle = make_cycle(opens_in_days=opens_in_days, deadline_in=deadline_in)
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    events = packet.events.count()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client(org.engineer).post(f"/api/v1/packets/{packet.pk}/submit/", {},
                                                format="json")  # fmt: skip

    assert response.status_code == 400, response.json()
    assert "does not take submissions" in response.json()["error"]["message"]
    assert callbacks == []
    untouched(packet, events)


def test_an_admin_extends_the_deadline_and_the_submit_goes_through(
    org, ladder_version, engineer_evidence, admin_api
):
    cycle = make_cycle(opens_in_days=-30, deadline_in=timedelta(hours=-1))
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    erin = api_client(org.engineer)
    assert erin.post(f"/api/v1/packets/{packet.pk}/submit/", {}, format="json").status_code == 400

    later = timezone.now() + timedelta(days=3)
    response = admin_api.patch(
        f"/api/v1/cycles/{cycle.pk}/", {"submission_deadline": later.isoformat()}, format="json"
    )

    assert response.status_code == 200, response.json()
    cycle.refresh_from_db()
    assert abs(cycle.submission_deadline - later) < timedelta(seconds=1)
    submitted = erin.post(f"/api/v1/packets/{packet.pk}/submit/", {}, format="json")
    assert submitted.status_code == 200, submitted.json()
    assert submitted.json()["state"] == "submitted"


@pytest.mark.parametrize("who", ["engineer", "manager", "director", "committee"])
def test_only_admins_change_a_cycle(who, org):
    cycle = make_cycle(opens_in_days=-30, deadline_in=timedelta(hours=-1))
    deadline = cycle.submission_deadline

    response = api_client(org[who]).patch(
        f"/api/v1/cycles/{cycle.pk}/",
        {"submission_deadline": (timezone.now() + timedelta(days=3)).isoformat()},
        format="json",
    )

    assert response.status_code == 403
    cycle.refresh_from_db()
    assert cycle.submission_deadline == deadline


def test_an_extension_past_the_decision_date_is_refused(admin_api):
    cycle = make_cycle()
    response = admin_api.patch(
        f"/api/v1/cycles/{cycle.pk}/",
        {"submission_deadline": (timezone.now() + timedelta(days=90)).isoformat()},
        format="json",
    )
    assert response.status_code == 400
    assert "decision_on" in response.json()["error"]["detail"]


# --- coverage minimum -------------------------------------------------------------------


def test_submit_below_the_minimum_lists_the_gaps(
    org, cycle, ladder_version, engineer_evidence, codes, django_capture_on_commit_callbacks
):
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    PacketItem.objects.filter(packet=packet, expectation__code__in=codes[2:]).delete()
    events = packet.events.count()

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(org.engineer).post(f"/api/v1/packets/{packet.pk}/submit/", {},
                                                format="json")  # fmt: skip

    assert response.status_code == 400
    detail = response.json()["error"]["detail"]
    assert detail["gaps"] == codes[2:]
    assert float(detail["coverage"]) == pytest.approx(0.4)  # DRF renders error leaves as str
    untouched(packet, events)


def test_submit_exactly_at_the_minimum_goes_through(org, ladder_version, engineer_evidence, codes):
    cycle = make_cycle(minimum=0.6)
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    PacketItem.objects.filter(packet=packet, expectation__code__in=codes[3:]).delete()  # 3/5
    events = list(packet.events.values_list("id", flat=True))

    response = api_client(org.engineer).post(f"/api/v1/packets/{packet.pk}/submit/", {},
                                            format="json")  # fmt: skip

    assert response.status_code == 200, response.json()
    packet.refresh_from_db()
    assert packet.state == Packet.State.SUBMITTED
    assert packet.submitted_at is not None
    snapshots = PacketSnapshot.objects.filter(packet=packet)
    assert list(snapshots.values_list("number", flat=True)) == [1]
    assert snapshots.get().sha256 == canonical_sha256(snapshots.get().data)
    new_events = PacketEvent.objects.filter(packet=packet).exclude(id__in=events)
    assert list(new_events.values_list("action", "from_state", "to_state", "actor")) == [
        ("submit", "draft", "submitted", org.engineer.user.pk)
    ]


@pytest.mark.parametrize("how", ["dismissed", "deleted"])
def test_evidence_dismissed_or_deleted_after_it_was_offered_is_a_gap(
    how, org, cycle, ladder_version, engineer_evidence, codes
):
    packet = draft(org, cycle, ladder_version, engineer_evidence)  # e0: codes 0 and 3, e1: 1 and 4
    PacketItem.objects.filter(packet=packet, expectation__code=codes[2]).delete()
    erin = org.engineer
    drop = evidence_dismiss if how == "dismissed" else evidence_delete
    drop(evidence=engineer_evidence[1], actor=erin.user)

    response = api_client(erin).post(f"/api/v1/packets/{packet.pk}/submit/", {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["detail"]["gaps"] == [codes[1], codes[2], codes[4]]


# --- snapshots are frozen ---------------------------------------------------------------


def _build_via_api(erin, cycle, evidence, codes):
    api = api_client(erin)
    pk = api.post("/api/v1/packets/", {"cycle": cycle.pk}, format="json").json()["id"]
    items = [{"expectation": c, "evidence": evidence[i % 2].pk, "note": f"note {i}"}
             for i, c in enumerate(codes)]  # fmt: skip
    r = api.patch(f"/api/v1/packets/{pk}/",
                  {"items": items, "narratives": {"Technical Expertise": "First *take*"}},
                  format="json")  # fmt: skip
    assert r.status_code == 200, r.json()
    return api, pk


def test_a_snapshot_does_not_change_when_its_sources_do(org, cycle, engineer_evidence, codes):
    erin, omar = org.engineer, org.manager
    api, pk = _build_via_api(erin, cycle, engineer_evidence, codes)
    assert api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json").status_code == 200
    stored = PacketSnapshot.objects.get(packet_id=pk, number=1)
    data, sha = stored.data, stored.sha256
    titles = {i["title"] for e in data["expectations"] for i in e["items"]}
    assert titles == {"Work 0", "Work 1"}
    assert canonical_sha256(data) == sha

    # the evidence changes under it ...
    evidence_update(evidence=engineer_evidence[0], actor=erin.user, title="Renamed later",
                    description="A **new** description")  # fmt: skip
    # ... a submitted packet cannot be edited through the API ...
    blocked = api.patch(f"/api/v1/packets/{pk}/", {"narratives": {"Technical Expertise": "x"}},
                        format="json")  # fmt: skip
    assert blocked.status_code == 409
    # ... and the live rows change anyway (behind the API's back, then through it)
    PacketItem.objects.filter(packet_id=pk).update(note="tampered")
    Packet.objects.filter(pk=pk).update(narratives={"Technical Expertise": "tampered"})
    api_client(omar).post(f"/api/v1/packets/{pk}/request-changes/", {"comment": "More"},
                          format="json")  # fmt: skip
    edited = api.patch(
        f"/api/v1/packets/{pk}/",
        {"items": [{"expectation": c, "evidence": engineer_evidence[1].pk} for c in codes[:3]],
         "narratives": {"Technical Expertise": "Second take", "Problem Solving & Innovation":
                        "New"}},
        format="json",
    )  # fmt: skip
    assert edited.status_code == 200, edited.json()

    stored.refresh_from_db()
    assert stored.data == data and stored.sha256 == sha
    assert canonical_sha256(stored.data) == sha
    via_api = api.get(f"/api/v1/packets/{pk}/snapshots/1/").json()
    assert via_api["data"] == data and via_api["sha256"] == sha
    exported = api.get(f"/api/v1/packets/{pk}/export/?format=json&snapshot=1").json()
    assert packet_data_frozen(exported) == data

    # the next submission is a new snapshot with its own hash; the first stays as it was
    assert api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json").status_code == 200
    second = PacketSnapshot.objects.get(packet_id=pk, number=2)
    assert second.sha256 != sha and canonical_sha256(second.data) == second.sha256
    assert {i["title"] for e in second.data["expectations"] for i in e["items"]} == {"Work 1"}
    assert PacketSnapshot.objects.get(packet_id=pk, number=1).sha256 == sha
    listed = api.get(f"/api/v1/packets/{pk}/snapshots/").json()
    assert [(s["number"], s["sha256"]) for s in listed] == [(1, sha), (2, second.sha256)]


@pytest.mark.parametrize(
    ("state", "status"),
    [(s, 200 if s in ("draft", "changes_requested") else 409) for s in PACKET_STATES],
    ids=PACKET_STATES,
)
def test_only_draft_and_changes_requested_packets_are_edited(
    state, status, org, cycle, ladder_version, engineer_evidence, codes
):
    packet = draft(org, cycle, ladder_version, engineer_evidence, state=state)
    items = sorted(packet.items.values_list("expectation__code", "evidence_id", "note"))

    response = api_client(org.engineer).patch(
        f"/api/v1/packets/{packet.pk}/",
        {"items": [{"expectation": codes[0], "evidence": engineer_evidence[0].pk}],
         "narratives": {"Technical Expertise": "changed"}},
        format="json",
    )  # fmt: skip

    assert response.status_code == status, response.json()
    packet.refresh_from_db()
    if status == 409:
        assert packet.narratives["Technical Expertise"] != "changed"
        assert sorted(packet.items.values_list("expectation__code", "evidence_id", "note")) == items
    else:
        assert packet.items.count() == 1


@pytest.mark.parametrize(("who", "status"), [("manager", 403), ("director", 403), ("peer", 404)])
def test_only_the_owner_edits_their_packet(
    who, status, org, cycle, ladder_version, engineer_evidence
):
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    response = api_client(org[who]).patch(f"/api/v1/packets/{packet.pk}/",
                                          {"narratives": {"Technical Expertise": "mine now"}},
                                          format="json")  # fmt: skip
    assert response.status_code == status
    packet.refresh_from_db()
    assert packet.narratives["Technical Expertise"] != "mine now"


# --- what a packet may hold -------------------------------------------------------------


def _bad_evidence(kind, org):
    erin = org.engineer
    if kind == "someone-elses":
        peer = org.peer
        return evidence_create(person=peer, actor=peer.user, title="Peer's work").pk
    if kind == "missing":
        return 999_999
    ev = evidence_create(person=erin, actor=erin.user, title=f"{kind} work")
    if kind == "candidate":
        Evidence.objects.filter(pk=ev.pk).update(status="candidate")
    elif kind == "dismissed":
        evidence_dismiss(evidence=ev, actor=erin.user)
    elif kind == "deleted":
        evidence_delete(evidence=ev, actor=erin.user)
    return ev.pk


@pytest.mark.parametrize("kind", ["someone-elses", "candidate", "dismissed", "deleted", "missing"])
def test_items_must_be_the_owners_accepted_evidence(
    kind, org, cycle, ladder_version, engineer_evidence, codes
):
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    before = sorted(packet.items.values_list("expectation__code", "evidence_id", "note"))
    bad = _bad_evidence(kind, org)

    response = api_client(org.engineer).patch(
        f"/api/v1/packets/{packet.pk}/",
        {"items": [{"expectation": codes[0], "evidence": engineer_evidence[0].pk},
                   {"expectation": codes[1], "evidence": bad}]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 400
    assert response.json()["error"]["detail"]["items"] == [
        f"[1]: evidence {bad} is not one of your accepted items"
    ]
    assert sorted(packet.items.values_list("expectation__code", "evidence_id", "note")) == before


@pytest.mark.parametrize("code", ["TE-2.1", "TE-4.1", "NOPE-3.1", ""],
                         ids=["level-below", "level-above", "unknown", "empty"])  # fmt: skip
def test_items_must_be_expectations_of_the_target_level(
    code, org, cycle, ladder_version, engineer_evidence
):
    packet = draft(org, cycle, ladder_version, engineer_evidence)
    before = packet.items.count()

    response = api_client(org.engineer).patch(
        f"/api/v1/packets/{packet.pk}/",
        {"items": [{"expectation": code, "evidence": engineer_evidence[0].pk}]},
        format="json",
    )

    assert response.status_code == 400
    if code:  # an empty code is refused by the serializer already
        assert response.json()["error"]["detail"]["items"] == [
            f"[0]: {code!r} is not an expectation of level 3"
        ]
    assert packet.items.count() == before


# --- one open packet per cycle ----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "status"),
    [(s, 409 if s in ("draft", "submitted", "changes_requested", "endorsed") else 201)
     for s in PACKET_STATES],
    ids=PACKET_STATES,
)  # fmt: skip
def test_a_second_open_packet_in_a_cycle_is_a_conflict(
    state, status, org, cycle, ladder_version, engineer_evidence
):
    draft(org, cycle, ladder_version, engineer_evidence, state=state)
    api = api_client(org.engineer)

    response = api.post("/api/v1/packets/", {"cycle": cycle.pk}, format="json")

    assert response.status_code == status, response.json()
    assert Packet.objects.filter(person=org.engineer, cycle=cycle).count() == (
        1 if status == 409 else 2
    )
    other = make_cycle("Next")
    assert api.post("/api/v1/packets/", {"cycle": other.pk}, format="json").status_code == 201


# --- the diff between two submissions ---------------------------------------------------


def test_diff_between_two_submissions(org, cycle, engineer_evidence, codes):
    erin, omar = org.engineer, org.manager
    api, pk = _build_via_api(erin, cycle, engineer_evidence, codes[:4])
    # v1: c0←e0 "note 0", c1←e1 "note 1", c2←e0 "note 2", c3←e1 "note 3"
    assert api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json").status_code == 200
    api_client(omar).post(f"/api/v1/packets/{pk}/request-changes/", {"comment": "More"},
                          format="json")  # fmt: skip
    e0, e1, e2 = engineer_evidence
    items = [
        {"expectation": codes[0], "evidence": e0.pk, "note": "note 0, sharper"},  # note changed
        {"expectation": codes[1], "evidence": e1.pk, "note": "note 1"},  # same
        {"expectation": codes[2], "evidence": e2.pk, "note": ""},  # c2: e0 → e2
        {"expectation": codes[4], "evidence": e1.pk, "note": ""},  # c4 added, c3 dropped
    ]
    r = api.patch(
        f"/api/v1/packets/{pk}/",
        {"items": items, "narratives": {"Technical Expertise": "First *take*",
                                        "Collaboration & Communication": "New"}},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.json()
    assert api.post(f"/api/v1/packets/{pk}/submit/", {}, format="json").status_code == 200

    diff = api_client(omar).get(f"/api/v1/packets/{pk}/diff/?from=1&to=2")

    assert diff.status_code == 200, diff.json()
    body = diff.json()
    assert body["added"] == sorted(
        [{"expectation": codes[2], "evidence": e2.pk, "title": "Work 2"},
         {"expectation": codes[4], "evidence": e1.pk, "title": "Work 1"}],
        key=lambda d: (d["expectation"], d["evidence"]),
    )  # fmt: skip
    assert body["removed"] == sorted(
        [{"expectation": codes[2], "evidence": e0.pk, "title": "Work 0"},
         {"expectation": codes[3], "evidence": e1.pk, "title": "Work 1"}],
        key=lambda d: (d["expectation"], d["evidence"]),
    )  # fmt: skip
    assert body["notes_changed"] == [
        {"expectation": codes[0], "evidence": e0.pk, "before": "note 0",
         "after": "note 0, sharper"}
    ]  # fmt: skip
    assert body["narratives_changed"] == ["Collaboration & Communication"]
    assert body["coverage"] == {"before": 0.8, "after": 0.8}
    # a snapshot that does not exist is a 404; a missing bound a 400
    assert api.get(f"/api/v1/packets/{pk}/diff/?from=1&to=3").status_code == 404
    assert api.get(f"/api/v1/packets/{pk}/diff/?from=1").status_code == 400


# --- email after commit -----------------------------------------------------------------


@pytest.fixture
def committee(org, ladder):
    """The director (erin's skip-level) on the committee too; carl on it; dora on it, inactive."""
    org.director.is_committee = True
    org.director.save()
    carl = PersonFactory(user__username="carl", ladder=ladder, level=5, is_committee=True)
    PersonFactory(user__username="dora", ladder=ladder, level=5, is_committee=True,
                  is_active=False)  # fmt: skip
    return {**org.people, "carl": carl}


TRANSITION_MAIL = [
    # from state, action, actor, body, recipients (the engineer hears of reviews and decisions)
    ("draft", "submit", "engineer", {}, ["manager"]),
    ("submitted", "request-changes", "manager", {"comment": "More"}, ["engineer"]),
    ("submitted", "endorse", "manager", {"comment": "Ready"}, ["carl", "committee", "engineer"]),
    ("submitted", "decline", "director", {"comment": "Not yet"}, ["engineer"]),
    ("endorsed", "decide", "committee", {"outcome": "promoted", "rationale": "Yes"}, ["engineer"]),
    ("endorsed", "decide", "carl", {"outcome": "not_promoted", "rationale": "No"}, ["engineer"]),
    ("submitted", "withdraw", "engineer", {}, ["manager"]),
]


@pytest.mark.parametrize(
    ("state", "action", "actor", "body", "recipients"),
    TRANSITION_MAIL,
    ids=[f"{a}-by-{who}" for _s, a, who, _b, _r in TRANSITION_MAIL],
)
def test_each_transition_emails_the_next_actor_after_commit(
    state, action, actor, body, recipients, org, committee, cycle, ladder_version,
    engineer_evidence,
    codes, django_capture_on_commit_callbacks,
):  # fmt: skip
    packet = draft(org, cycle, ladder_version, engineer_evidence, state=state)
    if action in ("endorse", "decline"):
        rating = "meets" if action == "endorse" else "below"
        body = {**body, "assessments": [{"expectation": c, "rating": rating} for c in codes]}

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client(committee[actor]).post(
            f"/api/v1/packets/{packet.pk}/{action}/", body, format="json"
        )
        assert mail.outbox == []  # nothing goes out before the transaction commits

    assert response.status_code == 200, response.json()
    assert len(callbacks) == 1
    # one mail per person, each with an absolute link to the packet
    assert sorted(m.to[0] for m in mail.outbox) == sorted(committee[r].email for r in recipients)
    new_state = response.json()["state"]
    for message in mail.outbox:
        assert len(message.to) == 1
        assert new_state.replace("_", " ") in message.subject
        assert f"https://ladder.test/packets/{packet.pk}/" in message.body


def test_a_refused_transition_emails_nobody(
    org, cycle, ladder_version, engineer_evidence, django_capture_on_commit_callbacks
):
    packet = draft(org, cycle, ladder_version, engineer_evidence, state="submitted")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api_client(org.manager).post(f"/api/v1/packets/{packet.pk}/request-changes/",
                                                {"comment": ""}, format="json")  # fmt: skip
    assert response.status_code == 400
    assert callbacks == [] and mail.outbox == []


# --- the cycle report -------------------------------------------------------------------


@pytest.fixture
def reported(org, ladder, ladder_version, cycle, engineer_evidence):
    """In the cycle: erin endorsed (L3), peer draft (L3), ken (level 3) submitted (L4) and
    a withdrawn earlier packet of ken's; in another cycle: one more draft of erin's."""
    ken = PersonFactory(user__username="ken", ladder=ladder, level=3, manager=org.manager)
    ken_evidence = [evidence_create(person=ken, actor=ken.user, title="Ken's work")]
    peer_evidence = [evidence_create(person=org.peer, actor=org.peer.user, title="P")]
    make = PacketFactory
    common = {"cycle": cycle, "ladder_version": ladder_version, "reviewer": org.manager}
    make(person=org.engineer, state="endorsed", evidence=engineer_evidence, **common)
    make(person=org.peer, state="draft", evidence=peer_evidence, **common)
    make(person=ken, state="withdrawn", evidence=ken_evidence, **common)
    make(person=ken, state="submitted", evidence=ken_evidence, **common)
    make(person=org.engineer, state="draft", evidence=engineer_evidence,
         **{**common, "cycle": make_cycle("Other")})  # fmt: skip
    return cycle


EXPECTED_ROWS = [
    {"target_level": 3, "state": "draft", "count": 1},
    {"target_level": 3, "state": "endorsed", "count": 1},
    {"target_level": 4, "state": "submitted", "count": 1},
    {"target_level": 4, "state": "withdrawn", "count": 1},
]


@pytest.mark.parametrize("who", ["admin", "committee"])
def test_cycle_report_json_and_csv(who, reported, org, admin_user):
    client = APIClient()
    client.force_authenticate(admin_user if who == "admin" else org[who].user)

    js = client.get(f"/api/v1/cycles/{reported.pk}/report/")
    csv_response = client.get(f"/api/v1/cycles/{reported.pk}/report/?format=csv")

    assert js.status_code == 200, js.json()
    assert js.json() == {
        "cycle": reported.pk,
        "rows": EXPECTED_ROWS,
        "by_state": {"draft": 1, "endorsed": 1, "submitted": 1, "withdrawn": 1},
    }
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    assert f'filename="cycle-{reported.pk}.csv"' in csv_response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode())))
    assert rows == [{k: str(v) for k, v in row.items()} for row in EXPECTED_ROWS]


@pytest.mark.parametrize(
    ("who", "status"), [("engineer", 403), ("manager", 403), ("director", 403), ("anonymous", 401)]
)
def test_cycle_report_is_for_admins_and_the_committee(who, status, reported, org):
    client = APIClient()
    if who != "anonymous":
        client.force_authenticate(org[who].user)
    for suffix in ("", "?format=csv"):
        response = client.get(f"/api/v1/cycles/{reported.pk}/report/{suffix}")
        assert response.status_code == status
        assert response["Content-Type"].startswith("application/json")
