"""A promotion to level N withdraws the person's other open packets for a level ≤ N (the
states DESIGN lets go to withdrawn), with an event saying why, so they leave the managers'
review queue; a packet for a higher level, and an endorsed one, stay as they are."""

import pytest

from apps.packets import selectors, services
from apps.packets.models import PacketEvent
from tests.factories import PacketFactory, PromotionCycleFactory

pytestmark = pytest.mark.django_db


def test_promotion_withdraws_older_packets_for_that_level(org, cycle):
    erin = org.engineer  # level 2
    older = PacketFactory(
        person=erin, cycle=PromotionCycleFactory(name="H1"), state="submitted", target_level=3
    )
    higher = PacketFactory(
        person=erin, cycle=PromotionCycleFactory(name="H3"), state="draft", target_level=4
    )
    decided = PacketFactory(
        person=erin, cycle=cycle, state="endorsed", target_level=3, reviewer=org.manager
    )
    assert list(selectors.packet_review_queue(viewer=org.manager.user)) == [older]

    services.packet_decide(
        packet_id=decided.pk, actor=org.committee.user, outcome="promoted", rationale="Ready."
    )

    older.refresh_from_db()
    higher.refresh_from_db()
    erin.refresh_from_db()
    assert (erin.level, older.state, higher.state) == (3, "withdrawn", "draft")
    event = PacketEvent.objects.filter(packet=older).latest("pk")
    assert (event.action, event.from_state, event.to_state, event.actor) == (
        "withdraw",
        "submitted",
        "withdrawn",
        org.committee.user,
    )
    assert event.comment == "Withdrawn on promotion: Erin was promoted to level 3 in H2."
    assert list(selectors.packet_review_queue(viewer=org.manager.user)) == []


def test_not_promoted_leaves_other_packets_alone(org, cycle):
    erin = org.engineer
    older = PacketFactory(
        person=erin, cycle=PromotionCycleFactory(name="H1"), state="submitted", target_level=3
    )
    decided = PacketFactory(
        person=erin, cycle=cycle, state="endorsed", target_level=3, reviewer=org.manager
    )

    services.packet_decide(
        packet_id=decided.pk, actor=org.committee.user, outcome="not_promoted", rationale="No."
    )

    older.refresh_from_db()
    assert older.state == "submitted"
