"""A new ladder version in the browser (issue 13.1): while erin has evidence and a draft
packet on v1, an admin publishes v2 (TE-3.2 reworded, TE-3.3 removed, TE-3.4 added). Her
links follow (the coverage strip still counts TE-3.2), the evidence page links to "What
changed", which shows the change and her touched evidence; the evidence page flags the
reworded link; the draft shows that the ladder moved on and moves to v2, gaps after.
A screenshot is saved next to the test's tmp_path when a step fails."""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from apps.evidence.services import LinkSpec, evidence_create
from tests.e2e.test_packet_journey import signed_in
from tests.factories import PacketFactory, PromotionCycleFactory
from tests.ladders.test_versions import V2_FILE

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@contextmanager
def screenshot_on_failure(page, path):
    try:
        yield
    except BaseException:
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        raise


def test_publishing_a_new_version_carries_links_and_moves_a_draft(
    browser, live_server, org, tmp_path
):
    erin = org.engineer
    work = {
        code: evidence_create(
            person=erin,
            actor=erin.user,
            title=f"Shipped work for {code}",
            links=[LinkSpec(expectation=code)],
        )
        for code in ("TE-3.1", "TE-3.2", "TE-3.3")
    }
    cycle = PromotionCycleFactory(name="2026 H2")
    draft = PacketFactory(person=erin, cycle=cycle, evidence=list(work.values()))

    with (
        signed_in(browser, live_server, "erin") as page,
        screenshot_on_failure(page, tmp_path / "ladder-versions.png"),
    ):
        page.goto(f"{live_server.url}/evidence/")
        expect(page.locator('.chip.covered[data-code="TE-3.2"]')).to_be_visible()
        expect(page.locator("#ladder-changes-link")).to_have_count(0)

        call_command("load_ladder", str(V2_FILE), "--publish")  # the admin publishes v2

        page.reload()
        # her links followed: TE-3.2 still covered on v2, TE-3.4 a new gap, TE-3.3 gone
        expect(page.locator('.chip.covered[data-code="TE-3.2"]')).to_be_visible()
        expect(page.locator('.chip.gap[data-code="TE-3.4"]')).to_be_visible()
        expect(page.locator('[data-code="TE-3.3"]')).to_have_count(0)

        page.locator("#ladder-changes-link").get_by_role("link").click()
        page.wait_for_url(f"{live_server.url}/ladder-changes/")
        expect(page.get_by_role("heading", name="What changed for your next level")).to_be_visible()
        level3 = page.locator("#level-3")
        expect(level3.locator("tr.change-added")).to_contain_text("TE-3.4")
        expect(level3.locator("tr.change-removed")).to_contain_text("Shipped work for TE-3.3")
        reworded = level3.locator("tr.change-reworded")
        expect(reworded).to_contain_text("Runs models through MLflow, Airflow and CI/CD pipelines")
        reworded.get_by_role("link", name="Shipped work for TE-3.2").click()

        page.wait_for_url(f"{live_server.url}/evidence/{work['TE-3.2'].pk}/")
        expect(page.locator(".ladder-change")).to_contain_text("Reworded in v2")
        expect(page.locator(".ladder-change")).to_contain_text("Uses MLflow, Airflow, CI/CD tools")
        page.get_by_role("button", name="It still fits: keep it").click()
        expect(page.locator(".ladder-change")).to_have_count(0)

        page.goto(f"{live_server.url}/packets/{draft.pk}/")
        banner = page.locator("#ladder-moved-on")
        expect(banner).to_contain_text("the current version is v2")
        expect(banner).to_contain_text("TE-3.3")
        page.get_by_role("button", name="Move this draft to v2").click()
        page.wait_for_url(re.compile(rf".*/packets/{draft.pk}/$"))
        expect(page.locator("ul.messages")).to_contain_text("Moved to ladder v2")
        expect(page.locator("#ladder-moved-on")).to_have_count(0)
        expect(page.locator('.chip.gap[data-code="TE-3.4"]')).to_be_visible()

    draft.refresh_from_db()
    assert draft.ladder_version.number == 2
