"""A director reads the team overview in a browser: groups, sorting, one person's page."""

import pytest

from apps.evidence.services import LinkSpec
from apps.ladders.selectors import ladder_version_published
from tests.e2e.test_evidence_journeys import nav, sign_in
from tests.factories import EvidenceFactory, level_codes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_director_sorts_the_team_and_opens_a_person(page, live_server, org):
    version = ladder_version_published(ladder_id=org.engineer.ladder_id)
    codes = level_codes(version, 3)
    EvidenceFactory(
        person=org.peer, title="Built the feature store", links=[LinkSpec(expectation=codes[0])]
    )
    sign_in(page, live_server, "maria")
    nav(page, "My team").click()
    page.wait_for_url(f"{live_server.url}/team/")
    assert page.get_by_role("heading", name="Reporting to Omar").is_visible()
    assert page.get_by_role("heading", name="Reporting to Maria").is_visible()

    page.get_by_role("link", name="Coverage").first.click()  # ascending, then descending
    page.get_by_role("link", name="Coverage ↑").first.click()
    page.wait_for_url(f"{live_server.url}/team/?sort=-coverage")
    omar_team = page.locator("section", has=page.get_by_role("heading", name="Reporting to Omar"))
    first = omar_team.locator("tbody tr").first
    assert "Pete" in first.inner_text()

    page.get_by_label("Search").fill("erin")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#team-count").inner_text() == "1 of 3 people"

    page.get_by_role("link", name="Erin").click()
    page.wait_for_url(f"{live_server.url}/team/{org.engineer.pk}/")
    assert page.get_by_role("heading", name="Erin").is_visible()
    assert "working towards level 3" in page.content()
    page.get_by_role("link", name="← My team").click()
    page.wait_for_url(f"{live_server.url}/team/")
