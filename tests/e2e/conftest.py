"""Browser tests: Playwright (Python) driving Debian's Chromium against a live server.

The browser comes from Debian's `chromium` package (the Makefile installs it), never from
Playwright's own download, which this kind of machine cannot reach.
"""

import os
import shutil

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser` (installs Debian's chromium)"
        )
    # Playwright's sync API runs an event loop in the test thread; Django's ORM in that
    # thread (fixtures creating data) is still synchronous and safe, so allow it while the
    # browser is up, and only then.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    screenshot_on_failure(request, page)
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keep each phase's report on the test item, so a fixture can tell whether the test failed.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def screenshot_on_failure(request, page) -> None:
    """Save a full-page screenshot of a failed test's page under E2E_SCREENSHOTS (default
    var/e2e-screenshots/), named after the test, and say where in the report."""
    report = getattr(request.node, "report_call", None)
    if report is None or not report.failed:
        return
    folder = os.environ.get("E2E_SCREENSHOTS", "var/e2e-screenshots")
    os.makedirs(folder, exist_ok=True)
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)
    path = os.path.join(folder, f"{name}.png")
    try:
        page.screenshot(path=path, full_page=True)
    except Exception as exc:  # a closed page: the failure itself says more
        print(f"screenshot failed: {exc}")
        return
    print(f"screenshot of the failed page: {path}")
