"""A promotion packet in the browser, from the first tick to the new level: the engineer
builds and submits, the manager asks for changes, the engineer resubmits, the manager
assesses and endorses, a committee member promotes, and the ladder page shows the level.
Playwright + Debian's Chromium against a live server; the org is the `org` fixture, the
cycle and the evidence are made with the services."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.evidence.services import LinkSpec, evidence_create
from apps.ladders.models import Expectation
from apps.packets.models import Packet, PromotionCycle
from apps.packets.services import cycle_save
from apps.people.models import LevelChange
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def journey(org):
    """An open cycle that asks for full coverage, and erin's evidence: one item per
    expectation of level 3, plus one unrelated."""
    erin = org.engineer
    today = timezone.localdate()
    cycle = cycle_save(
        cycle=PromotionCycle(
            name="2026 H2", opens_on=today - timedelta(days=3),
            submission_deadline=timezone.now() + timedelta(days=14),
            decision_on=today + timedelta(days=30), min_coverage=1,
        )
    )  # fmt: skip
    codes = list(
        Expectation.objects.filter(level__number=3)
        .order_by("competency__position", "position")
        .values_list("code", flat=True)
    )
    evidence = {
        code: evidence_create(
            person=erin,
            actor=erin.user,
            title=f"Shipped work for {code}",
            description="Built it with **PyTorch**.",
            links=[LinkSpec(expectation=code)],
        )
        for code in codes
    }
    evidence_create(person=erin, actor=erin.user, title="An unrelated talk")
    return {"cycle": cycle, "codes": codes, "evidence": evidence}


@contextmanager
def signed_in(browser, live_server, username: str, *, phone: bool = False):
    """A browser context of one person, signed in (each person keeps their own session)."""
    size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=size, is_mobile=phone)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ladders/.*"))
        yield page
    finally:
        context.close()


def nav(page, name):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def pick(page, code: str, evidence_id: int):
    return page.locator(f'[id="pick-{code}-{evidence_id}"]')


def test_packet_from_builder_to_promotion(browser, live_server, org, journey):
    codes, evidence = journey["codes"], journey["evidence"]

    # the engineer starts a packet, ticks evidence for every expectation, writes, submits
    with signed_in(browser, live_server, "erin") as page:
        nav(page, "My packets").click()
        page.wait_for_url(f"{live_server.url}/packets/")
        assert page.get_by_label("Target level").input_value() == "3"
        page.get_by_role("button", name="Start a packet").click()
        page.wait_for_url(re.compile(rf"{live_server.url}/packets/\d+/$"))
        packet = Packet.objects.get(person=org.engineer)
        expect(page.get_by_test_id("coverage-overall")).to_have_text("0%")
        assert page.locator('.chip.gap[data-code="TE-3.1"]').is_visible()

        for n, code in enumerate(codes, start=1):
            pick(page, code, evidence[code].pk).check()
            # saved as you go: the coverage panel comes back from the server
            expect(page.get_by_test_id("coverage-overall")).to_have_text(
                f"{round(100 * n / len(codes))}%"
            )
        with page.expect_response(re.compile(r"/save/$")):  # typing saves after a pause
            page.get_by_label(f"Note for Shipped work for {codes[0]} on {codes[0]}").fill(
                "Led the design and the rollout"
            )
        with page.expect_response(re.compile(r"/save/$")):
            page.get_by_label("Narrative for Technical Expertise").fill(
                "I **built** and shipped the feature store."
            )
        expect(page.locator(".save-status")).to_contain_text("Draft saved")
        packet.refresh_from_db()
        assert packet.narratives["Technical Expertise"].startswith("I **built**")
        assert page.locator('.chip.covered[data-code="TE-3.1"]').is_visible()
        assert page.locator("#coverage-panel svg").is_visible()  # the exports' chart
        assert not page.locator("#gaps").is_visible()

        page.get_by_role("button", name="Submit for review").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/")
        expect(page.locator(".messages")).to_contain_text("Submitted for review.")
        packet.refresh_from_db()
        sha = packet.snapshots.get().sha256
        assert page.get_by_test_id("sha256").inner_text() == sha
        assert page.locator(".narrative strong").first.inner_text() == "built"
        first = page.locator(f'[id="exp-{codes[0]}"]').inner_text()
        assert "Led the design and the rollout" in first

    # the manager asks for changes, with a comment
    with signed_in(browser, live_server, "omar") as page:
        expect(nav(page, re.compile(r"^Reviews"))).to_contain_text("1")
        nav(page, re.compile(r"^Reviews")).click()
        page.wait_for_url(f"{live_server.url}/packets/reviews/")
        page.get_by_role("link", name="Review Erin").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/review/")
        assert "Shipped work for TE-3.1" in page.locator('[id="exp-TE-3.1"]').inner_text()
        page.get_by_label("Comment to Erin").fill(
            "Please add a narrative for Collaboration & Communication."
        )
        page.get_by_role("button", name="Request changes").click()
        page.wait_for_url(f"{live_server.url}/packets/reviews/")
        expect(page.locator(".messages")).to_contain_text("Asked Erin for changes.")

    # the engineer reads the comment, adds the narrative and resubmits
    with signed_in(browser, live_server, "erin") as page:
        page.goto(f"{live_server.url}/packets/")
        row = page.locator("tr", has_text="2026 H2")
        assert "Changes requested" in row.inner_text()
        row.get_by_role("link", name="2026 H2").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/")
        expect(page.locator(".callout.changes")).to_contain_text(
            "Please add a narrative for Collaboration & Communication."
        )
        assert pick(page, codes[0], evidence[codes[0]].pk).is_checked()
        page.get_by_label("Narrative for Collaboration & Communication").fill(
            "I paired with the data platform team every sprint."
        )
        page.get_by_role("button", name="Submit for review").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/")
        expect(page.locator(".messages")).to_contain_text("Submitted for review.")
        assert page.locator(".snapshots > li").count() == 2

    # the manager assesses every expectation and endorses
    with signed_in(browser, live_server, "omar") as page:
        page.goto(f"{live_server.url}/packets/{packet.pk}/review/")
        assert "paired with the data platform team" in page.locator(".review-form").inner_text()
        for code in codes:
            rating = "exceeds" if code == codes[0] else "meets"
            page.locator(f'input[name="rating-{code}"][value="{rating}"]').check()
        page.get_by_label("Comment", exact=True).first.fill("Strong ownership")
        page.get_by_role("button", name="Save assessments").click()
        expect(page.locator(".messages")).to_contain_text(f"Saved {len(codes)} assessments.")
        assert page.locator(f'input[name="rating-{codes[0]}"][value="exceeds"]').is_checked()
        page.get_by_role("button", name="Endorse").click()
        page.wait_for_url(f"{live_server.url}/packets/reviews/")
        expect(page.locator(".messages")).to_contain_text("Endorsed Erin's packet")

    # a committee member compares and promotes, with a rationale
    with signed_in(browser, live_server, "cora") as page:
        nav(page, "Committee").click()
        page.wait_for_url(f"{live_server.url}/packets/committee/")
        row = page.locator(".committee-table tbody tr", has_text="Erin")
        assert "2 → 3" in row.inner_text() and "100%" in row.inner_text()
        row.get_by_role("link", name="Decide Erin").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/decide/")
        assert "Strong ownership" in page.locator(f'[id="exp-{codes[0]}"]').inner_text()
        page.get_by_label("Promoted", exact=True).check()
        page.get_by_label("Rationale").fill("Consistent level 3 impact across all competencies.")
        page.get_by_role("button", name="Record decision").click()
        page.wait_for_url(re.compile(rf"{live_server.url}/packets/committee/\?cycle=\d+$"))
        expect(page.locator(".messages")).to_contain_text("Decided: Erin, promoted.")

    # the engineer's ladder now says level 3
    with signed_in(browser, live_server, "erin") as page:
        page.goto(f"{live_server.url}/ladders/ai-ml-engineer/")
        expect(page.locator("main")).to_contain_text("you are at level 3")
        page.goto(f"{live_server.url}/packets/{packet.pk}/")
        timeline = page.locator(".timeline").inner_text()
        assert "promoted" in timeline and "Consistent level 3 impact" in timeline

    packet.refresh_from_db()
    assert packet.state == "promoted"
    assert [e.to_state for e in packet.events.order_by("at", "id")] == [
        "draft", "submitted", "changes_requested", "submitted", "endorsed", "promoted",
    ]  # fmt: skip
    change = LevelChange.objects.get(person=org.engineer, to_level=3)
    assert (change.from_level, change.packet_id) == (2, packet.pk)


def test_builder_and_review_are_readable_on_a_phone(browser, live_server, org, journey):
    from apps.packets import services

    erin = org.engineer
    packet = services.packet_create(person=erin, actor=erin.user, cycle=journey["cycle"])
    services.packet_update(
        packet=packet, actor=erin.user,
        items=[services.ItemSpec(expectation=c, evidence=journey["evidence"][c].pk)
               for c in journey["codes"]],
    )  # fmt: skip

    with signed_in(browser, live_server, "erin", phone=True) as page:
        page.goto(f"{live_server.url}/packets/{packet.pk}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.get_by_role("button", name="Submit for review").is_visible()
        page.get_by_role("button", name="Submit for review").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

    with signed_in(browser, live_server, "omar", phone=True) as page:
        page.goto(f"{live_server.url}/packets/{packet.pk}/review/")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.get_by_role("button", name="Endorse").is_visible()
