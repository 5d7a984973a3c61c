"""manage.py demo_packets: an open "2026 H2" cycle and packets in several states for the
demo org, so every role has work waiting; before it a decided "2026 H1" whose analytics have
something to show; a second run changes nothing."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command

from apps.evidence.models import Evidence
from apps.packets.analytics import cycle_analytics
from apps.packets.models import (
    Assessment,
    Packet,
    PacketEvent,
    PacketItem,
    PacketSnapshot,
    PromotionCycle,
)
from apps.packets.selectors import packet_committee_queue, packet_coverage, packet_review_queue
from apps.packets.services import cycle_is_open
from apps.people.models import Person
from tests.factories import api_client

pytestmark = pytest.mark.django_db

EXPECTED = {
    "ken": "draft",
    "erin": "submitted",
    "sam": "endorsed",
    "lena": "changes_requested",
}


def run(*names) -> str:
    out = StringIO()
    for name in names:
        call_command(name, stdout=out)
    return out.getvalue()


def counts() -> dict:
    models = (PromotionCycle, Packet, PacketItem, PacketSnapshot, PacketEvent, Assessment,
              Evidence)  # fmt: skip
    return {m.__name__: m.objects.count() for m in models}


@pytest.mark.parametrize("with_evidence", [False, True], ids=["org-only", "org-and-evidence"])
def test_demo_packets_twice(with_evidence, ladder_version):
    run("demo_org", *(["demo_evidence"] if with_evidence else []))

    first = run("demo_packets")
    after_first = counts()
    second = run("demo_packets")

    assert "created" in first and "nothing new" in second
    assert counts() == after_first  # idempotent: no duplicates of anything
    cycle = PromotionCycle.objects.get(name="2026 H2")
    assert cycle_is_open(cycle=cycle) and float(cycle.min_coverage) == 0.5
    packets = {
        p.person.user.username: p
        for p in Packet.objects.filter(cycle=cycle).select_related("person__user")
    }
    assert {u: p.state for u, p in packets.items()} == EXPECTED
    assert all(p.cycle_id == cycle.pk for p in packets.values())
    # every submitted packet met the cycle's minimum with the person's own accepted evidence
    for username, packet in packets.items():
        coverage = packet_coverage(packet=packet)
        assert coverage.overall >= 0.5, username
        owners = set(packet.items.values_list("evidence__person_id", flat=True))
        assert owners == {packet.person_id}
    assert PacketSnapshot.objects.filter(packet=packets["ken"]).count() == 0
    for username in ("erin", "sam", "lena"):
        assert PacketSnapshot.objects.filter(packet=packets[username]).count() == 1
    maria = Person.objects.get(user__username="maria")
    assert set(
        Assessment.objects.filter(packet=packets["sam"]).values_list("reviewer_id", flat=True)
    ) == {maria.pk}


def test_every_role_finds_work_waiting(ladder_version):
    run("demo_org", "demo_packets")
    people = {p.user.username: p for p in Person.objects.select_related("user")}
    packets = {
        p.person.user.username: p
        for p in Packet.objects.filter(cycle__name="2026 H2").select_related("person__user")
    }

    # omar reviews erin's submitted packet
    assert list(packet_review_queue(viewer=people["omar"].user)) == [packets["erin"]]
    # sam's endorsed packet is on the committee's table; maria manages sam, so cora decides
    assert list(packet_committee_queue(viewer=people["cora"].user)) == [packets["sam"]]
    sam_packet = packets["sam"].pk
    decide = {"outcome": "promoted", "rationale": "Consistent level-3 work."}
    refused = api_client(people["maria"]).post(
        f"/api/v1/packets/{sam_packet}/decide/", decide, format="json"
    )
    assert refused.status_code == 403
    # lena has changes to make, ken a draft to finish: both can still edit theirs
    for username in ("lena", "ken"):
        response = api_client(people[username]).patch(
            f"/api/v1/packets/{packets[username].pk}/",
            {"narratives": {"Technical Expertise": "Edited"}},
            format="json",
        )
        assert response.status_code == 200, response.json()
    decided = api_client(people["cora"]).post(
        f"/api/v1/packets/{sam_packet}/decide/", decide, format="json"
    )
    assert decided.status_code == 200, decided.json()
    people["sam"].refresh_from_db()
    assert people["sam"].level == 3


def test_the_past_cycle_gives_its_analytics_something_to_show(ladder_version):
    run("demo_org", "demo_packets")
    past = PromotionCycle.objects.get(name="2026 H1")
    packets = {
        p.person.user.username: p
        for p in Packet.objects.filter(cycle=past).select_related("person__user")
    }

    assert not cycle_is_open(cycle=past)
    assert {u: p.state for u, p in packets.items()} == {
        "ken": "promoted",
        "erin": "declined",
        "lena": "not_promoted",
        "sam": "withdrawn",
    }
    ken = Person.objects.get(user__username="ken")
    assert ken.level == 2  # promoted in H1; his H2 draft aims at level 3
    assert Packet.objects.get(person=ken, cycle__name="2026 H2").target_level == 3
    data = cycle_analytics(cycle=past).as_dict()
    assert data["coverage_at_submission"]["submitted"] == 3
    assert {r["label"]: r["total"] for r in data["outcomes_by_manager"]} == {
        "Maria Manager": 2,
        "Omar Okafor": 2,  # sam's withdrawn draft: his manager maria
    }
    means = {r["name"]: r["mean"] for r in data["ratings"]["by_reviewer"]}
    assert means["Omar Okafor"] > data["ratings"]["cycle"]["mean"] > means["Maria Manager"]
    times = {t["state"]: t for t in data["time_in_state"]}
    # the timeline is the plan's weeks, not the seconds the seed took
    assert times["endorsed"]["median_seconds"] == pytest.approx(51.5 * 86400)  # 54 and 49 days
    assert times["submitted"]["count"] == 4 and times["changes_requested"]["count"] == 1
    assert (
        PacketEvent.objects.filter(packet__cycle=past).earliest("at").at < past.submission_deadline
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("send", [False, True], ids=["quiet", "send-mail"])
def test_seed_transitions_mail_nobody_unless_asked(send, ladder_version):
    """Committed for real (a transactional test), so the after-commit emails do go out."""
    run("demo_org")
    call_command("demo_packets", *(["--send-mail"] if send else []), stdout=StringIO())

    sent = sorted((m.to[0], m.subject.rsplit(": ", 1)[1]) for m in mail.outbox)
    assert sent == (
        sorted([
            ("omar@example.com", "submitted"),  # erin's
            ("maria@example.com", "submitted"),  # sam's
            ("cora@example.com", "endorsed"),  # sam's: maria is in his chain
            ("sam@example.com", "endorsed"),  # his own packet, endorsed
            ("maria@example.com", "submitted"),  # lena's
            ("lena@example.com", "changes requested"),
        ])
        if send
        else []
    )  # fmt: skip


def test_demo_packets_needs_the_demo_org(ladder_version):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="demo_org"):
        run("demo_packets")
