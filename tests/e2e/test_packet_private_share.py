"""Ticking a private item in the packet builder asks to share it, in a real browser: saying
no unticks it and nothing is saved or shared; saying yes ticks "Share with my reviewers",
the builder saves, and the item becomes visible to managers with a "shared" event."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.evidence.models import Evidence, EvidenceEvent
from apps.evidence.services import LinkSpec, evidence_create
from apps.packets.models import PacketItem
from apps.packets.services import packet_create
from tests.e2e.test_packet_journey import pick, signed_in
from tests.factories import PromotionCycleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_picking_a_private_item_asks_to_share_it(browser, live_server, org, ladder):
    erin = org.engineer
    packet = packet_create(person=erin, actor=erin.user, cycle=PromotionCycleFactory(name="H2"))
    hidden = evidence_create(
        person=erin,
        actor=erin.user,
        title="Private tuning notes",
        visibility="private",
        links=[LinkSpec(expectation="TE-3.1")],
    )
    asked: list[str] = []

    with signed_in(browser, live_server, "erin") as page:
        page.goto(f"{live_server.url}/packets/{packet.pk}/")
        box = pick(page, "TE-3.1", hidden.pk)
        share = page.get_by_test_id(f"share-{hidden.pk}").first

        def say_no(dialog):
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", say_no)
        box.click()
        expect(box).not_to_be_checked()
        assert asked == [
            "“Private tuning notes” is private. Share it with your reviewers? "
            "Your managers will then see it."
        ]
        assert not share.is_checked()

        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_response(re.compile(r"/save/$")) as saved:
            box.click()
        assert saved.value.status == 200
        expect(box).to_be_checked()
        assert share.is_checked()
        expect(page.get_by_test_id("coverage-overall")).not_to_have_text("0%")

    hidden.refresh_from_db()
    assert hidden.visibility == Evidence.Visibility.MANAGER
    assert EvidenceEvent.objects.filter(evidence=hidden, action="shared").count() == 1
    assert list(PacketItem.objects.filter(packet=packet).values_list("evidence_id", flat=True)) == [
        hidden.pk
    ]
