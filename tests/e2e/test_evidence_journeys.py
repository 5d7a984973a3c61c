"""Evidence in the browser: an engineer records work and triages imports, their manager
reads it, a peer cannot. Playwright + Debian's Chromium against a live server."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.utils import timezone

from apps.evidence import services
from apps.evidence.models import Evidence, EvidenceLink
from apps.ladders.models import Expectation
from servicenow.models import Connection, Source, WorkItem
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A 1×1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5f6e8a50000000049454e44ae426082"
)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def nav(page, name: str):
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/ladders/.*"))


def imported_candidate(person, number: str, *, suggested: list[str]) -> Evidence:
    """What a ServiceNow sync leaves behind: a work item and a candidate with a snapshot."""
    connection, _ = Connection.objects.get_or_create(
        name="acme", defaults={"instance_url": "https://acme.service-now.com"}
    )
    source, _ = Source.objects.get_or_create(
        connection=connection, table="incident", defaults={"name": "incidents"}
    )
    work_item = WorkItem.objects.create(
        connection=connection, source=source, table="incident", sys_id=f"{number:0>32}"[-32:],
        number=number, short_description="Model latency regression after deploy",
        state="Resolved", priority="2", sys_updated_on=timezone.now(), person=person,
    )  # fmt: skip
    evidence = Evidence.objects.create(
        person=person, title=f"{number}: {work_item.short_description}",
        occurred_on=date(2026, 3, 2), url=work_item.record_url,
        source=Evidence.Source.SERVICENOW, status=Evidence.Status.CANDIDATE, work_item=work_item,
        snapshot={
            "number": number, "short_description": work_item.short_description,
            "state": "Resolved", "priority": "2", "category": "ml_model", "table": "incident",
            "sys_id": work_item.sys_id, "url": work_item.record_url,
        },
        snapshot_updated_at=timezone.now(),
    )  # fmt: skip
    for code in suggested:
        EvidenceLink.objects.create(
            evidence=evidence, expectation=Expectation.objects.get(code=code),
            rationale="matched rule: ml_model incidents", origin=EvidenceLink.Origin.SUGGESTED,
        )  # fmt: skip
    return evidence


def test_engineer_adds_evidence_with_a_file_and_covers_an_expectation(
    page, live_server, org, tmp_path
):
    screenshot = tmp_path / "latency.png"
    screenshot.write_bytes(PNG)
    sign_in(page, live_server, "erin")

    nav(page, "My evidence").click()
    page.wait_for_url(f"{live_server.url}/evidence/")
    assert page.locator('.chip.gap[data-code="TE-3.1"]').is_visible()

    page.get_by_role("link", name="Add evidence").click()
    page.get_by_label("Title").fill("Shipped the churn model to production")
    page.get_by_label("Description").fill("Built it with **PyTorch**, served behind a canary.")
    page.locator("#id_occurred_on").fill("2026-03-01")
    page.locator('input[name="expectations"][value="TE-3.1"]').check()
    page.get_by_label("Why TE-3.1").fill("Designed and shipped a production-grade model")
    page.locator("#id_files").set_input_files(str(screenshot))
    page.get_by_role("button", name="Add evidence").click()

    page.wait_for_url(re.compile(rf"{live_server.url}/evidence/\d+/$"))
    assert page.get_by_role("heading", name="Shipped the churn model to production").is_visible()
    assert page.locator(".prose strong").inner_text() == "PyTorch"
    assert "Designed and shipped a production-grade model" in page.locator(".links").inner_text()
    download = page.get_by_role("link", name="latency.png")
    response = page.request.get(live_server.url + download.get_attribute("href"))
    assert response.status == 200 and response.body() == PNG

    nav(page, "My evidence").click()
    page.wait_for_url(f"{live_server.url}/evidence/")
    item = page.locator(".evidence-item", has_text="Shipped the churn model to production")
    assert item.is_visible()
    assert "1 file" in item.inner_text() and "TE-3.1" in item.inner_text()
    chip = page.locator('.chip.covered[data-code="TE-3.1"]')
    assert chip.is_visible() and "✓ 1" in chip.inner_text()
    assert "1 of 5" in page.locator(".coverage-summary").inner_text()

    # htmx filters: the list narrows in place and the URL follows
    page.get_by_label("Competency").select_option("CC")
    page.wait_for_url(re.compile(r".*competency=CC.*"))
    page.get_by_text("Nothing matches these filters.").wait_for()
    assert page.locator(".coverage").is_visible()  # only the list was swapped


def test_engineer_triages_an_imported_candidate_in_the_inbox(page, live_server, org):
    erin = org.engineer
    keep = imported_candidate(erin, "INC0010042", suggested=["CC-3.1"])
    drop = imported_candidate(erin, "INC0010043", suggested=[])
    sign_in(page, live_server, "erin")

    assert page.locator("#inbox-count").inner_text() == "2"
    nav(page, re.compile(r"^Inbox")).click()
    page.wait_for_url(f"{live_server.url}/evidence/inbox/")
    row = page.locator(f"#candidate-{keep.pk}")
    assert "Model latency regression after deploy" in row.inner_text()
    row.get_by_text("Link to expectations").click()  # the picker: checkboxes, no Ctrl-click
    ticked = row.locator('input[name="expectations"]:checked')
    assert ticked.evaluate_all("xs => xs.map(x => x.value)") == ["CC-3.1"]

    row.get_by_label("Filter expectations").fill("TE-3.3")  # type-ahead
    assert row.locator("label.pick:visible").count() == 1
    row.get_by_label("Filter expectations").press("Enter")  # ticks the one match
    assert "(2 chosen)" in row.locator("summary").first.inner_text()
    row.get_by_role("button", name="Accept").click()
    row.wait_for(state="detached")
    assert page.locator("#inbox-count").inner_text() == "1"

    page.locator(f"#candidate-{drop.pk}").get_by_role("button", name="Dismiss").click()
    page.locator(f"#candidate-{drop.pk}").wait_for(state="detached")
    assert page.locator("#inbox-count").is_hidden()

    keep.refresh_from_db()
    drop.refresh_from_db()
    assert (keep.status, drop.status) == ("accepted", "dismissed")
    assert sorted(keep.links.values_list("expectation__code", "origin")) == [
        ("CC-3.1", "engineer"), ("TE-3.3", "engineer"),
    ]  # fmt: skip
    nav(page, "My evidence").click()
    page.wait_for_url(f"{live_server.url}/evidence/")
    item = page.locator(".evidence-item", has_text="INC0010042")
    assert "ServiceNow INC0010042" in item.inner_text()
    assert page.locator('.chip.covered[data-code="TE-3.3"]').is_visible()


def test_engineer_bulk_triages_the_inbox_with_the_keyboard(page, live_server, org):
    erin = org.engineer
    items = [imported_candidate(erin, f"INC00200{i}", suggested=["TE-3.1"]) for i in range(5)]
    sign_in(page, live_server, "erin")
    page.goto(f"{live_server.url}/evidence/inbox/")
    assert page.locator("#inbox-keys").is_visible()  # the script is loaded (no inline JS)
    order = page.locator("article.inbox-item").evaluate_all(
        "xs => xs.map(x => Number(x.dataset.candidate))"
    )

    # j j: the second row is current; x ticks it; j x ticks the third; D dismisses the ticked
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("article.inbox-item.current").get_attribute("id") == (
        f"candidate-{order[1]}"
    )
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.locator('input[name="ids"]:checked').count() == 2
    assert page.locator("#select-all").evaluate("x => x.indeterminate")
    page.keyboard.press("Shift+D")
    page.get_by_text("Dismissed 2 items.").wait_for()
    assert page.locator("article.inbox-item").count() == 3

    # k to the first row, a accepts it in place (htmx): the next row becomes current
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("a")
    page.locator(f"#candidate-{order[0]}").wait_for(state="detached")
    assert page.locator("#inbox-count").inner_text() == "2"
    assert page.locator("article.inbox-item.current").get_attribute("id") == (
        f"candidate-{order[3]}"
    )
    page.keyboard.press("d")
    page.locator(f"#candidate-{order[3]}").wait_for(state="detached")

    # the last one: tick all, link it to TE-3.2 too and accept the ticked with A
    page.locator("#select-all").check()
    page.get_by_text("Also link accepted items to…").click()
    bulk = page.locator("#bulk")
    bulk.get_by_label("Filter expectations").fill("TE-3.2")
    bulk.locator("label.pick:visible input").check()
    page.evaluate("document.activeElement.blur()")  # keys go to the page, not the filter box
    page.keyboard.press("Shift+A")
    page.get_by_text("Accepted 1 item. Linked to TE-3.2.").wait_for()
    assert page.get_by_text("Nothing waiting.").is_visible()

    status = dict(Evidence.objects.filter(pk__in=order).values_list("pk", "status"))
    assert [status[pk] for pk in order] == [
        "accepted", "dismissed", "dismissed", "dismissed", "accepted",
    ]  # fmt: skip
    last = Evidence.objects.get(pk=order[4])
    assert sorted(last.links.values_list("expectation__code", "origin")) == [
        ("TE-3.1", "engineer"), ("TE-3.2", "engineer"),
    ]  # fmt: skip
    assert len(items) == 5


def _accepted_item(erin) -> Evidence:
    item = imported_candidate(erin, "INC0010050", suggested=["TE-3.3"])
    services.evidence_accept(evidence=item, actor=erin.user)
    return item


def test_manager_sees_the_accepted_item_on_team_and_its_detail(browser, live_server, org):
    item = _accepted_item(org.engineer)
    services.evidence_create(person=org.engineer, actor=org.engineer.user,
                             title="Private notes", visibility="private")  # fmt: skip
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, live_server, "omar")
        nav(page, "My team").click()
        page.wait_for_url(f"{live_server.url}/team/")
        assert page.locator("tr", has_text="Erin").count() == 1  # the overview's row
        page.get_by_role("link", name="Team evidence").click()
        page.wait_for_url(f"{live_server.url}/team/evidence/")
        row = page.locator(".evidence-item", has_text="INC0010050")
        assert "Erin" in row.inner_text()
        assert page.locator(".evidence-item", has_text="Private notes").count() == 0

        row.get_by_role("link", name=re.compile("INC0010050")).first.click()
        page.wait_for_url(f"{live_server.url}/evidence/{item.pk}/")
        assert page.get_by_text("Read-only", exact=True).is_visible()
        assert (
            "Experience with model deployment and monitoring" in page.locator(".links").inner_text()
        )
        assert page.get_by_role("link", name="Edit").count() == 0
        assert page.get_by_role("button", name="Delete").count() == 0
    finally:
        context.close()


def test_a_peer_opening_the_items_url_gets_404(browser, live_server, org):
    item = _accepted_item(org.engineer)
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, live_server, "pete")
        response = page.goto(f"{live_server.url}/evidence/{item.pk}/")
        assert response.status == 404
        assert "Page not found" in page.content()
        assert "INC0010050" not in page.content()
        assert page.goto(f"{live_server.url}/team/").status == 404
    finally:
        context.close()


# For the failure message: which elements stick out to the right.
WIDER_THAN_THE_SCREEN = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > 391)
  .map(e => e.tagName + '.' + e.className).slice(0, 8)"""


def test_evidence_pages_fit_a_phone(browser, live_server, org):
    item = _accepted_item(org.engineer)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, "erin")
        for path in ("/evidence/", "/evidence/new/", f"/evidence/{item.pk}/", "/evidence/inbox/"):
            page.goto(f"{live_server.url}{path}")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, page.evaluate(WIDER_THAN_THE_SCREEN))
    finally:
        context.close()
