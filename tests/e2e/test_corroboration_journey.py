"""Corroboration in the browser: erin opens her imported incident, the page asks the
ServiceNow emulator (real HTTP) who saw the work, she asks Pete with a click (htmx); Pete
follows the mail's link, confirms on the request page, and the confirmation shows on
erin's evidence. No CSP violation on the way. A failure saves a screenshot under
var/e2e-screenshots/."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import expect

from servicenow.emulator import Emulator
from tests.evidence.corroboration_setup import dataset, sync_items
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screenshots"


@contextmanager
def screenshot_on_failure(page, name: str):
    try:
        yield
    except BaseException:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        raise


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def test_engineer_asks_corroborator_confirms(browser, live_server, org, settings):
    settings.SITE_URL = live_server.url
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    emu = Emulator(dataset()).start()
    try:
        incident, _ = sync_items(emu, org)
        mail.outbox.clear()
        for who, actions in (("erin", "ask"), ("pete", "confirm"), ("erin", "check")):
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.add_init_script(
                "window.__csp = []; document.addEventListener('securitypolicyviolation',"
                " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )
            try:
                with screenshot_on_failure(page, f"corroboration-{actions}"):
                    sign_in(page, live_server.url, who)
                    if actions == "ask":
                        page.goto(f"{live_server.url}/evidence/{incident.pk}/")
                        card = page.locator("#corroboration-card")
                        card.get_by_role("link", name="Find who else worked on it").click()
                        expect(card).to_contain_text("co-assignee, wrote a comment")
                        expect(card).to_contain_text("Omar")
                        expect(card.get_by_role("button", name="Ask Erin")).to_have_count(0)
                        card.get_by_role("button", name="Ask Pete").click()
                        expect(card.get_by_role("status")).to_contain_text("Asked")
                    elif actions == "confirm":
                        (message,) = mail.outbox
                        link = re.search(
                            r'href="([^"]+/corroborations/\d+/)"', message.alternatives[0][0]
                        ).group(1)
                        assert link.startswith(live_server.url)
                        expect(page.get_by_role("navigation", name="Main")).to_contain_text(
                            "Corroborations 1"
                        )
                        page.goto(link)
                        expect(page.get_by_role("heading", level=1)).to_contain_text("memory leak")
                        expect(page.locator(".snapshot")).to_contain_text("INC0000100")
                        page.get_by_label("Comment (optional)").fill("I reviewed the fix.")
                        page.get_by_role("button", name="Confirm").click()
                        expect(page.locator("#corroboration-state")).to_have_text("Confirmed")
                        # erin's evidence page itself stays closed to him
                        missing = page.goto(f"{live_server.url}/evidence/{incident.pk}/")
                        assert missing.status == 404
                    else:
                        page.goto(f"{live_server.url}/evidence/{incident.pk}/")
                        card = page.locator("#corroboration-card")
                        expect(card.locator(".corroborations")).to_contain_text("Pete")
                        expect(card.locator(".corroborations")).to_contain_text("confirmed")
                        expect(card).to_contain_text("I reviewed the fix.")
                    assert page.evaluate("window.__csp") == []
            finally:
                context.close()
    finally:
        emu.stop()
