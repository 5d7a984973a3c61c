"""A 300-character word (a URL, a stack trace, a hash) in a title, a description, a table
or a ServiceNow snapshot wraps instead of widening the page: in a real browser, on a phone
and on a desktop, the document is no wider than the viewport."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from apps.evidence import services
from apps.evidence.models import Evidence
from servicenow.models import Connection, Source, WorkItem
from tests.e2e.test_evidence_journeys import WIDER_THAN_THE_SCREEN, sign_in
from tests.factories import PacketFactory

WORD = "x" * 300

DESCRIPTION = f"""Fixed it: {WORD}

| column | value |
|---|---|
| {WORD} | {WORD} |

`{WORD}`
"""

WIDER_THAN = WIDER_THAN_THE_SCREEN.replace("> 391", "> window.innerWidth + 1")


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _long_items(person) -> tuple[Evidence, Evidence]:
    manual = services.evidence_create(
        person=person,
        actor=person.user,
        title=WORD,  # the whole column: a title longer than 300 is refused
        description=DESCRIPTION,
        url=f"https://example.com/{WORD}",
    )
    connection = Connection.objects.create(name="acme", instance_url="https://acme.service-now.com")
    source = Source.objects.create(connection=connection, table="incident", name="incidents")
    work_item = WorkItem.objects.create(
        connection=connection,
        source=source,
        table="incident",
        sys_id="b" * 32,
        number="INC0010099",
        short_description=WORD,
        state="Resolved",
        priority="2",
        sys_updated_on=timezone.now(),
        person=person,
    )
    imported = Evidence.objects.create(
        person=person,
        title=f"INC0010099: {WORD}"[:300],
        occurred_on=date(2026, 3, 2),
        url=work_item.record_url,
        source=Evidence.Source.SERVICENOW,
        status=Evidence.Status.CANDIDATE,
        work_item=work_item,
        snapshot={
            "number": "INC0010099",
            "short_description": WORD,
            "description": DESCRIPTION,
            "state": "Resolved",
            "priority": "2",
            "category": WORD,
            "table": "incident",
            "sys_id": work_item.sys_id,
            "url": work_item.record_url,
        },
        snapshot_updated_at=timezone.now(),
    )
    return manual, imported


@pytest.mark.parametrize(
    "viewport",
    [{"width": 390, "height": 844}, {"width": 1280, "height": 900}],
    ids=["phone", "desktop"],
)
def test_a_300_character_word_does_not_widen_the_evidence_pages(
    browser, live_server, org, cycle, viewport
):
    manual, imported = _long_items(org.engineer)
    packet = PacketFactory(person=org.engineer, cycle=cycle, state="draft", evidence=[manual])
    context = browser.new_context(viewport=viewport, is_mobile=viewport["width"] < 500)
    page = context.new_page()
    try:
        sign_in(page, live_server, "erin")
        for path in (
            "/evidence/",
            f"/evidence/{manual.pk}/",
            f"/evidence/{manual.pk}/edit/",
            f"/evidence/{imported.pk}/",
            "/evidence/inbox/",
            f"/packets/{packet.pk}/",
        ):
            page.goto(f"{live_server.url}{path}")
            assert WORD in page.content(), path  # the word is on the page, wrapped
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], (path, width, page.evaluate(WIDER_THAN))
        page.context.clear_cookies()
        sign_in(page, live_server, "omar")  # erin's manager reads the same words
        for path in ("/team/evidence/", f"/evidence/{manual.pk}/"):
            page.goto(f"{live_server.url}{path}")
            assert WORD in page.content(), path
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], (path, width, page.evaluate(WIDER_THAN))
    finally:
        context.close()
