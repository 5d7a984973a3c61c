"""An engineer signs in and reads their ladder, on a laptop and on a phone."""

import pytest

from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_engineer_logs_in_and_reads_the_ladder(page, live_server, engineer):
    _sign_in(page, live_server, "erin")

    page.wait_for_url(f"{live_server.url}/ladders/ai-ml-engineer/")
    assert page.get_by_role("heading", name="AI/ML Engineer", exact=True).is_visible()
    next_header = page.locator("th.next")
    assert "Level 3" in next_header.inner_text()
    assert "your next level" in next_header.inner_text()
    cell = page.locator("td.next li#TE-3\\.1")
    assert cell.inner_text() == "TE-3.1 Designs and builds production-grade models"
    assert page.locator("#version-picker").input_value() == "1"


def test_ladder_page_is_readable_on_a_phone(browser, live_server, engineer):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        _sign_in(page, live_server, "erin")
        page.wait_for_url(f"{live_server.url}/ladders/ai-ml-engineer/")
        # the matrix stacks: no horizontal scrolling of the page on a phone
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
        assert page.locator(".cell-label").first.is_visible()
    finally:
        context.close()


def test_sign_out(page, live_server, engineer):
    _sign_in(page, live_server, "erin")
    page.wait_for_url(f"{live_server.url}/ladders/ai-ml-engineer/")

    page.get_by_role("button", name="Sign out").click()

    page.wait_for_url(f"{live_server.url}/login/")
    assert page.get_by_role("heading", name="Sign in").is_visible()
