"""A manager verifies a report's packet in the browser: the packet page flags the item whose
ServiceNow record was deleted, "Verify against ServiceNow" (htmx, against the emulator over
real HTTP) answers per item in place, and the evidence page's own button does the same."""

from __future__ import annotations

import pytest

from apps.evidence.models import Evidence
from apps.evidence.services import evidence_accept
from servicenow.emulator import Emulator
from servicenow.models import WorkItem
from tests.factories import PASSWORD, PacketFactory
from tests.servicenow.conftest import make_connection, make_dataset, make_source, run_sync

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def emulator():
    emu = Emulator(make_dataset(incidents=30, users=4)).start()
    yield emu
    emu.stop()


def test_a_manager_verifies_a_packet_and_an_item(
    browser, live_server, emulator, org, cycle, ladder_version
):
    # given erin's imported evidence in a submitted packet; one record edited, one deleted
    connection = make_connection(emulator)
    run_sync(make_source(connection, "sys_user", query="active=true"), "full")
    run_sync(make_source(connection, "incident"), "full")
    mine = list(Evidence.objects.filter(person=org.engineer).order_by("pk"))[:3]
    for ev in mine:
        evidence_accept(evidence=ev, actor=org.engineer.user)
    same, edited, gone = mine
    packet = PacketFactory(person=org.engineer, cycle=cycle, ladder_version=ladder_version,
                           state="submitted", evidence=mine)  # fmt: skip
    emulator.store.update("incident", edited.work_item.sys_id, {"short_description": "Edited"})
    emulator.store.delete("incident", gone.work_item.sys_id)
    WorkItem.objects.filter(pk=gone.work_item_id).update(deleted_reason="audit_delete",
                                                         deleted_at=gone.created_at)  # fmt: skip

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(f"{live_server.url}/login/?next=/packets/{packet.pk}/")
        page.get_by_label("Username").fill("omar")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{live_server.url}/packets/{packet.pk}/")

        # the deleted record is flagged before anyone verifies
        assert page.get_by_test_id(f"deleted-{gone.pk}").first.is_visible()

        # when the manager verifies the packet
        panel = page.get_by_test_id("verify-packet")
        panel.get_by_role("button", name="Verify against ServiceNow").click()
        page.get_by_test_id("verify-summary").wait_for()

        # then each item's answer is in place, without a reload
        summary = page.get_by_test_id("verify-summary").inner_text()
        assert "1 match, 1 changed, 1 deleted" in summary
        assert page.get_by_test_id(f"verify-item-{edited.pk}").get_attribute("data-result") == (
            "changed"
        )
        assert "Edited" in page.get_by_test_id(f"verify-item-{edited.pk}").inner_text()

        # and on the evidence page, the item's own button answers there
        page.goto(f"{live_server.url}/evidence/{same.pk}/")
        page.get_by_test_id("verify-panel").get_by_role(
            "button", name="Verify against ServiceNow"
        ).click()
        result = page.get_by_test_id("verify-result")
        result.wait_for()
        assert result.get_attribute("data-result") == "match"
        assert "by omar" in result.inner_text()
    finally:
        context.close()
