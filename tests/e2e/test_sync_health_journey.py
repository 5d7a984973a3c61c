"""The admin watches sync health in the browser: a source that failed three runs in a row
shows its streak, last error and that the admins were mailed; "Sync now" against the
emulator (over real HTTP, in a worker on CI's second pass) brings it back and clears the
alert (so the recovery mail went out: tests/servicenow/test_health*.py read that mail)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from servicenow.emulator import Emulator
from servicenow.models import Source, SyncRun
from tests.factories import PASSWORD, AdminUserFactory
from tests.servicenow.conftest import make_connection, make_dataset, make_source

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def emulator():
    emu = Emulator(make_dataset(incidents=60, users=4)).start()
    yield emu
    emu.stop()


def test_admin_sees_a_failing_source_and_brings_it_back(browser, live_server, emulator):
    # given a source whose last three runs failed, and the admins already told
    AdminUserFactory(username="ada")
    source = make_source(make_connection(emulator), "incident", name="Incidents")
    end = timezone.now()
    for n in range(3):
        SyncRun.objects.create(
            source=source,
            status="failed",
            started_at=end - timedelta(minutes=30 - n, seconds=5),
            finished_at=end - timedelta(minutes=30 - n),
            error=f"503 Service Unavailable (table incident) #{n}",
        )
    Source.objects.filter(pk=source.pk).update(failure_alerted_at=end)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{live_server.url}/login/?next=/servicenow/")
        page.get_by_label("Username").fill("ada")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/servicenow/")

        # when the admin reads the Health table
        row = page.locator("#health tr.health", has_text="Incidents")
        # then it says the source is failing, why, and that the admins were mailed
        assert "failing" in row.get_attribute("class")
        assert "503 Service Unavailable (table incident) #2" in row.inner_text()
        assert "admins mailed" in row.inner_text()
        assert "never" in row.inner_text()  # no success yet

        # when they sync it now and the run finishes
        page.get_by_role("button", name="Sync now").click()
        page.locator("#runs tr.run-succeeded").wait_for()
        page.reload()

        # then the row is healthy again, with the run's rows and duration
        row = page.locator("#health tr.health", has_text="Incidents")
        assert "ok" in row.get_attribute("class").split()
        assert "admins mailed" not in row.inner_text()
        assert re.search(r"Succeeded, \d+ rows, [\d.]+ s", row.inner_text())
    finally:
        context.close()
    assert Source.objects.get(pk=source.pk).failure_alerted_at is None
