"""A committee member reads a cycle's analytics in a browser: from the committee page to the
charts, each an SVG drawn with a real size and readable labels, with its data table.
Playwright + Debian's Chromium against a live server; the cycle is the hand-built one of
tests/packets/test_analytics.py (decided, declined, withdrawn and open packets, three
reviewers who rate differently). On a failure the page is saved as a screenshot under
var/e2e-screenshots/."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.test_evidence_journeys import nav, sign_in
from tests.packets.test_analytics import hand_built_cycle

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screenshots"
CHARTS = {
    "chart-coverage": "Coverage at submission",
    "chart-outcomes-level": "Outcomes by target level",
    "chart-outcomes-manager": "Outcomes by reviewing manager",
    "chart-ratings": "Ratings by reviewer",
    "chart-time-in-state": "Time in each state",
}


@contextmanager
def screenshot_on_failure(page, name: str):
    try:
        yield
    except BaseException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        raise


def test_committee_member_reads_the_cycle_analytics(page, live_server, org, ladder_version):
    cycle = hand_built_cycle(org, ladder_version)

    # inline SVG with presentation attributes only: nothing for the CSP to block
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    with screenshot_on_failure(page, "cycle-analytics"):
        sign_in(page, live_server, "cora")
        nav(page, "Committee").click()
        page.locator("#cycle-picker").select_option(label=cycle.name)  # submits itself
        page.wait_for_url(f"{live_server.url}/packets/committee/?cycle={cycle.pk}")
        page.get_by_role("link", name="Cycle analytics").click()
        page.wait_for_url(f"{live_server.url}/packets/cycles/{cycle.pk}/analytics/")
        assert page.get_by_role("heading", name="2026 H1: analytics").is_visible()

        for chart_id, title in CHARTS.items():
            chart = page.get_by_role("img", name=title, exact=True)
            assert chart.get_attribute("id") == chart_id
            chart.scroll_into_view_if_needed()
            assert chart.is_visible()
            box = chart.bounding_box()
            assert box["width"] > 300 and box["height"] > 30, (chart_id, box)
            bars = page.locator(f"#{chart_id} rect.bar")
            assert bars.count() > 0, chart_id
            sizes = [bars.nth(i).bounding_box() for i in range(bars.count())]
            assert any(b["width"] > 0 and b["height"] > 0 for b in sizes), chart_id

        # labels are text in the drawing, big enough to read
        ratings = page.locator("#chart-ratings")
        for label in ("Whole cycle", "Maria", "Nina", "Omar", "mean 2.17 (+0.17) · n 6"):
            text = ratings.locator("text", has_text=label).first
            assert text.is_visible(), label
            assert text.bounding_box()["height"] >= 10, label
        level = page.locator("#chart-outcomes-level")
        assert level.locator("text", has_text="Level 3").is_visible()
        assert level.get_by_text("Promoted", exact=True).is_visible()
        # a stacked bar per level: level 3 has one segment per outcome it holds
        assert page.locator('#chart-outcomes-level rect.bar[data-row="Level 3"]').count() == 4
        omar = page.locator('#chart-ratings rect.bar[data-row="Omar"]')
        cycle_row = page.locator('#chart-ratings rect.bar[data-row="Whole cycle"]')
        width = sum(omar.nth(i).bounding_box()["width"] for i in range(omar.count()))
        whole = sum(cycle_row.nth(i).bounding_box()["width"] for i in range(cycle_row.count()))
        assert abs(width - whole) < 1  # shares: every row spans the same length

        # the numbers as a table, one click away
        section = page.locator(
            "section", has=page.get_by_role("heading", name="Time in each state")
        )
        section.get_by_text("Data table").click()
        row = section.get_by_role("row", name="Endorsed")
        assert row.is_visible() and "8.5 d" in row.inner_text()
        assert page.evaluate("window.__csp") == []
