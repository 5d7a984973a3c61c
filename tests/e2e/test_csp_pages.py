"""Key pages under the Content-Security-Policy in a real browser: no violation reported (no
inline script or style blocked, nothing from another origin), the htmx behaviour that moved to
static/js/app.js still works (the version picker, the builder's autosave), and /api/docs/
renders Swagger UI's operations with no request leaving the live server."""

import re
from contextlib import contextmanager

import pytest
from django.utils import timezone

from servicenow.models import Connection, Source, SyncRun
from tests.factories import PASSWORD, EvidenceFactory, PacketFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@contextmanager
def watched(browser, live_server, username: str):
    """A signed-in page that records CSP violations, CSP console errors and every request
    that went anywhere but the live server (those are refused)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    seen = {"violations": [], "console": [], "outside": []}

    def route(r):
        if r.request.url.startswith(live_server.url):
            r.continue_()
        else:
            seen["outside"].append(r.request.url)
            r.abort()

    context.route("**/*", route)
    context.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile"
        " + ':' + e.lineNumber));"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on(
        "console",
        lambda m: (
            seen["console"].append(m.text)
            if m.type == "error" and "Content Security Policy" in m.text
            else None
        ),
    )
    try:
        page.goto(f"{live_server.url}/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/ladders/.*"))
        yield page, seen
    finally:
        context.close()


def visit(page, seen, url: str, *, idle: bool = True) -> None:
    page.goto(url)
    # a page that polls (the Sync page with a run going) is never network-idle
    page.wait_for_load_state("networkidle" if idle else "load")
    seen["violations"] += page.evaluate("window.__csp")


def test_engineer_pages_and_their_scripts_run_under_the_csp(
    browser, live_server, org, cycle, ladder_version
):
    eng = org.engineer
    items = [EvidenceFactory(person=eng, title=f"Work {i}") for i in range(2)]
    packet = PacketFactory(person=eng, cycle=cycle, ladder_version=ladder_version, state="draft",
                           evidence=items)  # fmt: skip
    base = live_server.url

    with watched(browser, live_server, "erin") as (page, seen):
        for path in ("/ladders/", "/evidence/", f"/evidence/{items[0].pk}/", "/evidence/inbox/",
                     "/packets/"):  # fmt: skip
            visit(page, seen, base + path)

        # the builder's autosave (app.js triggers htmx): typing a narrative saves it
        visit(page, seen, f"{base}/packets/{packet.pk}/")
        narrative = page.locator("textarea").first
        with page.expect_response(re.compile(rf".*/packets/{packet.pk}/save/")) as saved:
            narrative.fill("Shipped the feature store, end to end.")
        assert saved.value.status == 200
        seen["violations"] += page.evaluate("window.__csp")

        # the ladder's version picker (data-autosubmit in app.js) still submits its form
        visit(page, seen, f"{base}/ladders/{eng.ladder.slug}/")
        with page.expect_navigation(url=re.compile(r".*\?version=1")):
            page.locator("#version-picker").select_option("1")
        seen["violations"] += page.evaluate("window.__csp")

    assert seen == {"violations": [], "console": [], "outside": []}


def test_admin_pages_and_swagger_ui_render_with_nothing_from_outside(browser, live_server, org):
    base = live_server.url
    # a source whose run is still going: "Sync now" answers 409 with the runs table
    connection = Connection.objects.create(name="Acme", instance_url="https://acme.example.com")
    source = Source.objects.create(connection=connection, name="Incidents", table="incident")
    SyncRun.objects.create(source=source, status="running", heartbeat_at=timezone.now())

    with watched(browser, live_server, "ada") as (page, seen):
        for path in ("/people/import/", "/packets/cycles/", "/admin/",
                     "/admin/servicenow/connection/add/", "/servicenow/setup/",
                     "/servicenow/setup/connections/new/",
                     f"/servicenow/setup/connections/{connection.pk}/",
                     f"/servicenow/setup/sources/{source.pk}/"):  # fmt: skip
            visit(page, seen, base + path)
        visit(page, seen, f"{base}/servicenow/", idle=False)

        # the Sync page swaps the 409 in (data-swap-statuses, app.js): the reason shows (the
        # runs table polls while a run is going, so the swap is watched as it happens)
        page.evaluate(
            "window.__swaps = []; document.addEventListener('htmx:afterSwap', e =>"
            " window.__swaps.push(e.detail.xhr.status + ' ' + e.detail.xhr.responseText))"
        )
        with page.expect_response(re.compile(r".*/servicenow/sources/\d+/sync/")) as answer:
            page.get_by_role("button", name="Sync now").click()
        assert answer.value.status == 409
        page.wait_for_function(
            "window.__swaps.some(s => s.startsWith('409 ') && s.includes('already has run'))"
        )

        visit(page, seen, f"{base}/api/docs/")
        operations = page.locator(".opblock")
        operations.first.wait_for()
        count = operations.count()
        page.locator(".opblock-summary").first.click()  # an operation opens
        page.locator(".opblock-body").first.wait_for()
        seen["violations"] += page.evaluate("window.__csp")

    assert count >= 70  # every operation of the schema
    assert seen == {"violations": [], "console": [], "outside": []}
