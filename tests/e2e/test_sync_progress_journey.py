"""The admin presses "Sync now" in the embedded default and watches the run move.

The app, a real Celery worker on the SQLite broker and their SQLite database run as
subprocesses (tests/embedded_stack.py), the emulator answers every request after 80-120 ms
over 40 pages, and Chromium drives the Sync page: the click comes back at once with the
run queued, the run's row polls its progress and its bar shows values between 0 and 100 %
as pages land, the row ends "Succeeded" at 100 % and then stops polling. A failure leaves a
screenshot in var/e2e-screenshots/ (tests/e2e/conftest.py)."""

from __future__ import annotations

import time

import pytest

from servicenow.emulator import Emulator
from tests.embedded_stack import ADMIN, EmbeddedStack
from tests.servicenow.conftest import make_dataset

pytestmark = pytest.mark.e2e

INCIDENTS = 800
PAGE_SIZE = 20  # 40 pages of >= 80 ms: several seconds of visible progress


@pytest.fixture
def stack(tmp_path):
    emu = Emulator(make_dataset(incidents=INCIDENTS, users=4), latency_ms=80,
                   latency_jitter_ms=40).start()  # fmt: skip
    try:
        with EmbeddedStack(tmp_path, emu.url, worker=True, page_size=PAGE_SIZE) as running:
            yield running
    finally:
        emu.stop()


def test_sync_now_returns_at_once_and_the_bar_moves_until_the_run_ends(page, stack):
    page.goto(f"{stack.url}/login/?next=/servicenow/")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{stack.url}/servicenow/")
    progress_requests: list[float] = []
    page.on(
        "request",
        lambda r: progress_requests.append(time.monotonic()) if "/progress/" in r.url else None,
    )

    # when the admin presses Sync now
    started = time.monotonic()
    with page.expect_response(lambda r: r.url.endswith("/sync/")) as answer:
        page.get_by_role("button", name="Sync now").click()
    notice = page.locator("#runs [data-started-run]")
    notice.wait_for()
    returned_after = time.monotonic() - started

    # then the page came back at once (long before 40 slow pages), the run not done yet
    assert answer.value.status == 202
    assert returned_after < 3.0, returned_after
    run_id = notice.get_attribute("data-started-run")
    row = page.locator(f"#run-{run_id}")
    assert row.get_attribute("data-status") in ("queued", "running")
    assert "started" in notice.inner_text()

    # and while it runs the bar shows values strictly between 0 and 100 %
    seen: list[float] = []
    deadline = time.monotonic() + 120
    while row.get_attribute("data-status") in ("queued", "running"):
        value = row.locator("progress").get_attribute("value")
        if value is not None and (not seen or seen[-1] != float(value)):
            seen.append(float(value))
        assert time.monotonic() < deadline, f"run {run_id} did not finish: {seen}"
        page.wait_for_timeout(100)
    between = [v for v in seen if 0 < v < 1]
    assert len(between) >= 2 and between == sorted(between), seen  # it moved, forwards

    # and it finished: Succeeded, 100 %, every row, and the row no longer polls
    assert row.get_attribute("data-status") == "succeeded"
    assert row.locator("progress").get_attribute("value") == "1.000"
    assert "100%" in row.inner_text() and "Succeeded" in row.inner_text()
    assert f"{INCIDENTS} / {INCIDENTS}" in row.inner_text()
    assert row.get_attribute("hx-trigger") is None
    polls_at_end = len(progress_requests)
    page.wait_for_timeout(2500)
    assert len(progress_requests) == polls_at_end
    assert polls_at_end >= 3  # it did poll while the run went
    assert stack.run(int(run_id))["status"] == "succeeded"
