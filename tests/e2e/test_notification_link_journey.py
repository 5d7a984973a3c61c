"""A reminder mail's link in the browser: the manager of a packet that has waited a week
gets the reminder, opens its absolute link (SITE_URL is the live server), signs in and lands
on the packet. Playwright + Debian's Chromium against a live server."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from apps.notifications.services import waiting_reminders_send
from apps.packets.models import PacketEvent
from tests.factories import PASSWORD, EvidenceFactory, PacketFactory, PromotionCycleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reminder_link_opens_the_packet_after_sign_in(browser, live_server, org, settings):
    settings.SITE_URL = live_server.url
    packet = PacketFactory(
        person=org.engineer,
        cycle=PromotionCycleFactory(name="H1"),
        state="submitted",
        evidence=[EvidenceFactory(person=org.engineer)],
    )
    PacketEvent.objects.filter(packet=packet, to_state="submitted").update(
        at=timezone.now() - timedelta(days=7)
    )
    assert waiting_reminders_send() == 1
    [message] = mail.outbox
    assert message.to == [org.manager.email]
    [(html, _mimetype)] = message.alternatives
    link = re.search(r'href="([^"]+/packets/\d+/)"', html).group(1)
    assert link == f"{live_server.url}/packets/{packet.pk}/"

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(link)  # as a mail client would: no session yet
        page.wait_for_url(re.compile(r".*/login/\?next=.*"))
        page.get_by_label("Username").fill("omar")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(link)
        expect(page.get_by_role("heading", level=1)).to_contain_text("Erin")
    finally:
        context.close()
