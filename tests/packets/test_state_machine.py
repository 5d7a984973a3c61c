"""The packet state machine, exhaustively: every state × every action × every role.

The expectation is a table written from DESIGN.md ("Packet states", "Who sees what"), not
from the code (apps/packets/transitions.py is checked against it below, and every case
asks the page selector packet_actions_allowed too):

- anonymous → 401, whatever the packet;
- 404 when the role cannot see the packet (a peer sees nothing of erin's; the committee
  sees only endorsed and decided packets; owner, managers at any depth and admins see all);
- 403 when the role sees the packet but is not the one who may do this action
  (submit/withdraw: the owner; request-changes/endorse/decline: a manager of the owner, at
  any depth; decide: a committee member outside the owner's chain; admins act on nothing);
- 409 when the role may act but the state does not allow the action;
- 200 otherwise, and the packet is in the action's target state.

Each request carries a valid body for its action (a comment; every expectation of the
target level assessed for endorse/decline; outcome + rationale for decide), so state × role
alone decides the status. Anything but 200 leaves the packet as it was: same state, no
event, no snapshot, no assessment, no decision.

The org (tests/factories.py `org_build`): erin (owner, level 2 → 3) → omar (direct
manager) → maria (skip-level manager) → vic, added here (a committee member who is one of
erin's managers: maria's manager, three levels up); pete, the peer, reports to omar too;
cora is a committee member outside the chain; root is an admin with no person profile.
"""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from rest_framework.test import APIClient

from apps.ladders.services import ladder_load_file
from apps.packets.models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketSnapshot,
)
from apps.packets.selectors import packet_actions_allowed
from apps.packets.transitions import MOVES, TRANSITIONS, Role
from tests.conftest import LADDER_FILE
from tests.factories import (
    PACKET_STATES,
    AdminUserFactory,
    EvidenceFactory,
    PacketFactory,
    PersonFactory,
    PromotionCycleFactory,
    api_client,
    level_codes,
    org_build,
)

pytestmark = pytest.mark.django_db

ROLES = [
    "owner",
    "manager",
    "skip_manager",
    "peer",
    "committee",
    "committee_manager",
    "admin",
    "anonymous",
]

# action → the state it moves the packet to (decide is sent with outcome "promoted")
TARGET = {
    "submit": "submitted",
    "request-changes": "changes_requested",
    "endorse": "endorsed",
    "decline": "declined",
    "decide": "promoted",
    "withdraw": "withdrawn",
}
ACTIONS = list(TARGET)

# DESIGN.md "Packet states": the states each action may start from ...
FROM = {
    "submit": {"draft", "changes_requested"},
    "request-changes": {"submitted"},
    "endorse": {"submitted"},
    "decline": {"submitted"},
    "decide": {"endorsed"},
    "withdraw": {"draft", "submitted", "changes_requested"},
}
# ... and who does it ("reviewing manager": the owner's managers at any depth; a committee
# member does not decide for their own reports, so only cora decides erin's packet).
MANAGERS = {"manager", "skip_manager", "committee_manager"}
WHO = {
    "submit": {"owner"},
    "request-changes": MANAGERS,
    "endorse": MANAGERS,
    "decline": MANAGERS,
    "decide": {"committee"},
    "withdraw": {"owner"},
}
# DESIGN.md "Who sees what"
COMMITTEE_STATES = {"endorsed", "promoted", "not_promoted"}


def sees(role: str, state: str) -> bool:
    if role == "peer":
        return False
    if role == "committee":
        return state in COMMITTEE_STATES
    return True  # owner, managers at any depth (committee_manager included), admin


def expected_status(state: str, action: str, role: str) -> int:
    if role == "anonymous":
        return 401
    if not sees(role, state):
        return 404
    if role not in WHO[action]:
        return 403
    if state not in FROM[action]:
        return 409
    return 200


# What each role of this org is to erin's packet, in the terms of the transitions table.
TABLE_ROLES = {
    "owner": {Role.OWNER},
    "manager": {Role.REVIEWER},
    "skip_manager": {Role.REVIEWER},
    "committee_manager": {Role.REVIEWER},  # in erin's chain: reviews, never decides
    "committee": {Role.COMMITTEE},
    "peer": set(),
    "admin": set(),
    "anonymous": set(),
}


def status_from_the_table(state: str, action: str, role: str) -> int:
    """The same question answered from apps/packets/transitions.py."""
    if role == "anonymous":
        return 401
    if not sees(role, state):
        return 404
    transition = TRANSITIONS[action]
    if transition.role not in TABLE_ROLES[role]:
        return 403
    return 200 if state in transition.sources else 409


def test_the_transitions_table_says_what_design_md_says():
    assert sorted(MOVES) == sorted(ACTIONS)
    assert {a: set(TRANSITIONS[a].sources) for a in ACTIONS} == FROM
    assert {a: TRANSITIONS[a].targets[0] for a in ACTIONS} == TARGET
    for state in PACKET_STATES:
        for action in ACTIONS:
            for role in ROLES:
                assert status_from_the_table(state, action, role) == expected_status(
                    state, action, role
                ), (state, action, role)


CASES = [
    pytest.param(state, action, role, expected_status(state, action, role),
                 id=f"{state}-{action}-{role}-{expected_status(state, action, role)}")
    for state in PACKET_STATES
    for action in ACTIONS
    for role in ROLES
]  # fmt: skip


def test_the_table_covers_every_combination():
    assert len(CASES) == 8 * 6 * 8 == 384
    counts = {}
    for case in CASES:
        counts[case.values[3]] = counts.get(case.values[3], 0) + 1
    # 200s: submit×2 states, withdraw×3 (owner); request-changes/endorse/decline from
    # submitted × 3 managers; decide from endorsed × cora
    assert counts[200] == 2 + 3 + 3 * 3 + 1


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """The ladder, the org, a cycle and erin's evidence, made once for this module's ~400
    tests inside one transaction rolled back at the end; each test still runs in its own
    savepoint (pytest-django), so nothing one test writes reaches the next."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            version = ladder_load_file(path=LADDER_FILE, publish=True).version
            ladder = version.ladder
            org = org_build(ladder=ladder)
            # a committee member who is one of erin's managers (the director's manager)
            vic = PersonFactory(user__username="vic", ladder=ladder, level=5, is_committee=True)
            org.director.manager = vic
            org.director.save()
            cycle = PromotionCycleFactory(name="H2")
            evidence = [EvidenceFactory(person=org.engineer, title=f"Work {i}") for i in range(3)]
            yield {
                "version": version,
                "cycle": cycle,
                "evidence": evidence,
                "codes": level_codes(version, 3),
                "admin": AdminUserFactory(username="root"),
                "people": {
                    "owner": org.engineer,
                    "manager": org.manager,
                    "skip_manager": org.director,
                    "peer": org.peer,
                    "committee": org.committee,
                    "committee_manager": vic,
                },
            }
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def people(world):
    return world["people"]


def make(world, state: str) -> Packet:
    people = world["people"]
    return PacketFactory(
        person=people["owner"],
        cycle=world["cycle"],
        ladder_version=world["version"],
        state=state,
        evidence=world["evidence"],
        reviewer=people["manager"],
        decider=people["committee"],
    )


def user_as(role: str, world: dict):
    if role == "anonymous":
        return AnonymousUser()
    return world["admin"] if role == "admin" else world["people"][role].user


def client_as(role: str, world: dict) -> APIClient:
    client = APIClient()
    if role == "admin":
        client.force_authenticate(world["admin"])
    elif role != "anonymous":
        client.force_authenticate(world["people"][role].user)
    return client


def body_for(action: str, codes: list[str]) -> dict:
    if action == "endorse":
        return {"comment": "Ready for the committee",
                "assessments": [{"expectation": c, "rating": "meets"} for c in codes]}  # fmt: skip
    if action == "decline":
        return {"comment": "Not yet",
                "assessments": [{"expectation": c, "rating": "below"} for c in codes]}  # fmt: skip
    if action == "decide":
        return {"outcome": "promoted", "rationale": "Consistently at level 3"}
    return {"comment": f"{action} comment"}


def footprint(packet_id: int) -> dict:
    return {
        "events": PacketEvent.objects.filter(packet_id=packet_id).count(),
        "snapshots": PacketSnapshot.objects.filter(packet_id=packet_id).count(),
        "assessments": sorted(
            Assessment.objects.filter(packet_id=packet_id).values_list(
                "reviewer_id", "expectation__code", "rating"
            )
        ),
        "decision": Decision.objects.filter(packet_id=packet_id).exists(),
    }


@pytest.mark.parametrize(("state", "action", "role", "status"), CASES)
def test_transition(state, action, role, status, world):
    packet = make(world, state)
    before = footprint(packet.pk)
    offered = action in packet_actions_allowed(viewer=user_as(role, world), packet=packet)

    response = client_as(role, world).post(
        f"/api/v1/packets/{packet.pk}/{action}/", body_for(action, world["codes"]), format="json"
    )

    assert response.status_code == status, response.json()
    assert offered == (status == 200)  # the pages offer exactly what the services allow
    after_state = Packet.objects.get(pk=packet.pk).state
    after = footprint(packet.pk)
    if status != 200:
        assert "error" in response.json()
        assert after_state == state
        assert after == before  # nothing written
        return
    assert after_state == TARGET[action]
    assert response.json()["state"] == TARGET[action]
    event = PacketEvent.objects.filter(packet=packet).latest("id")
    assert (event.action, event.from_state, event.to_state) == (action, state, TARGET[action])
    assert after["events"] == before["events"] + 1
    assert after["snapshots"] == before["snapshots"] + (action == "submit")
    assert after["decision"] == (action == "decide")


# --- body rules: each a 400 that leaves the packet as it was ---------------------------


@pytest.fixture
def submitted(world):
    return make(world, "submitted")


@pytest.fixture
def endorsed(world):
    return make(world, "endorsed")


@pytest.fixture
def codes(world):
    return world["codes"]


def _post_400(client, packet, action, body):
    before_state, before = packet.state, footprint(packet.pk)
    response = client.post(f"/api/v1/packets/{packet.pk}/{action}/", body, format="json")
    assert response.status_code == 400, response.json()
    assert Packet.objects.get(pk=packet.pk).state == before_state
    assert footprint(packet.pk) == before
    return response.json()["error"]


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "   "}],
                         ids=["no-comment", "empty", "blank"])  # fmt: skip
def test_request_changes_needs_a_comment(body, people, submitted):
    error = _post_400(api_client(people["manager"]), submitted, "request-changes", body)
    assert error["detail"]["comment"] == "required"


@pytest.mark.parametrize("body", [{}, {"comment": ""}, {"comment": "  "}],
                         ids=["no-comment", "empty", "blank"])  # fmt: skip
def test_decline_needs_a_comment(body, people, submitted, codes):
    body = {**body, "assessments": [{"expectation": c, "rating": "below"} for c in codes]}
    error = _post_400(api_client(people["manager"]), submitted, "decline", body)
    assert error["detail"]["comment"] == "required"
    # the assessments sent with the refused decline were not kept either
    assert not Assessment.objects.filter(packet=submitted).exists()


@pytest.mark.parametrize("action", ["endorse", "decline"])
def test_endorse_or_decline_with_an_expectation_unassessed_lists_it(
    action, people, submitted, codes
):
    assessed, left = codes[:-2], codes[-2:]
    body = {"comment": "Looks good",
            "assessments": [{"expectation": c, "rating": "meets"} for c in assessed]}  # fmt: skip
    error = _post_400(api_client(people["manager"]), submitted, action, body)
    assert error["detail"]["missing"] == left


def test_endorse_with_no_assessments_lists_every_expectation(people, submitted, codes):
    error = _post_400(api_client(people["manager"]), submitted, "endorse", {"comment": "ok"})
    assert error["detail"]["missing"] == codes


@pytest.mark.parametrize(
    ("assessment", "field"),
    [
        ({"expectation": "TE-2.1", "rating": "meets"}, "assessments"),  # not level 3
        ({"expectation": "NOPE-9", "rating": "meets"}, "assessments"),
        ({"expectation": "TE-3.1", "rating": "great"}, "assessments"),
    ],
    ids=["other-level", "unknown-code", "bad-rating"],
)
def test_endorse_with_a_bad_assessment(assessment, field, people, submitted, codes):
    good = [{"expectation": c, "rating": "meets"} for c in codes]
    error = _post_400(api_client(people["manager"]), submitted, "endorse",
                      {"comment": "ok", "assessments": [*good, assessment]})  # fmt: skip
    assert field in error["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "promoted"},
        {"outcome": "promoted", "rationale": ""},
        {"outcome": "not_promoted", "rationale": "   "},
    ],
    ids=["no-rationale", "empty", "blank"],
)
def test_decide_needs_a_rationale(body, people, endorsed):
    error = _post_400(api_client(people["committee"]), endorsed, "decide", body)
    assert "rationale" in error["detail"]
    people["owner"].refresh_from_db()
    assert people["owner"].level == 2


@pytest.mark.parametrize(
    "body",
    [
        {"outcome": "hired", "rationale": "x"},
        {"outcome": "", "rationale": "x"},
        {"outcome": "endorsed", "rationale": "x"},
        {"rationale": "x"},
    ],
    ids=["hired", "empty", "a-state-not-an-outcome", "missing"],
)
def test_decide_with_a_bad_outcome(body, people, endorsed):
    error = _post_400(api_client(people["committee"]), endorsed, "decide", body)
    assert "outcome" in error["detail"]
