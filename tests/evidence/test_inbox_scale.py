"""The inbox at scale (issue 12 point 2): search, filters, sort and paging on the page and
the API, bulk accept with links, ServiceNow display labels, suggestions for the person's
level, and query counts that do not grow with the candidates.

The org is the `org` fixture; erin is a level-2 engineer (next level 3).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.evidence.candidates import CandidateData, SuggestedLink, candidates_import
from apps.evidence.models import Evidence
from apps.ladders.services import ladder_load_file
from tests.evidence.builders import candidate, work_item
from tests.factories import PASSWORD, api_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(org):
    assert org.engineer.level == 2
    return org.engineer


@pytest.fixture
def as_erin(client, erin):
    assert client.login(username="erin", password=PASSWORD)
    return client


def numbers(html: str) -> list[str]:
    return re.findall(r'class="title" id="candidate-\d+-title" href="[^"]+">(\w+):', html)


# --- search, filters, sort ------------------------------------------------------------------


@pytest.fixture
def inbox(erin, org):
    return {
        "latency": candidate(erin, "INC0000001", text="Model latency regression",
                             suggested=["TE-3.1"], on=date(2026, 3, 1)),
        "drift": candidate(erin, "INC0000002", text="Feature drift alert", state="2",
                           priority="1", on=date(2026, 3, 5)),
        "change": candidate(erin, "CHG0000003", table="change_request", text="Deploy v2",
                            suggested=["CC-3.1"], on=date(2026, 2, 1)),
        "petes": candidate(org.peer, "INC0000004", text="Model latency elsewhere"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["INC0000002", "INC0000001", "CHG0000003"]),
        ("q=latency", ["INC0000001"]),
        ("q=chg0000003", ["CHG0000003"]),
        ("table=change_request", ["CHG0000003"]),
        ("state=2", ["INC0000002"]),
        ("suggested=TE-3.1", ["INC0000001"]),
        ("date_from=2026-03-02", ["INC0000002"]),
        ("date_to=2026-02-28", ["CHG0000003"]),
        ("sort=oldest", ["CHG0000003", "INC0000001", "INC0000002"]),
        ("sort=priority", ["INC0000002", "INC0000001", "CHG0000003"]),
        ("q=latency&table=change_request", []),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_inbox_page_searches_filters_and_sorts(as_erin, inbox, query, expected):
    html = as_erin.get(f"/evidence/inbox/?{query}").content.decode()

    assert numbers(html) == expected
    if not expected:
        assert "Nothing matches these filters." in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=latency", ["INC0000001"]),
        ("q=CHG", ["CHG0000003"]),
        ("table=incident&sort=oldest", ["INC0000001", "INC0000002"]),
        ("state=6&suggested=CC-3.1", ["CHG0000003"]),
        ("sort=title", ["CHG0000003", "INC0000001", "INC0000002"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_evidence_api_searches_and_filters_candidates(erin, inbox, query, expected):
    body = api_client(erin).get(f"/api/v1/evidence/?status=candidate&{query}").json()

    assert [r["title"].split(":")[0] for r in body["results"]] == expected


def test_evidence_api_names_a_bad_sort(erin):
    response = api_client(erin).get("/api/v1/evidence/?sort=sideways")

    assert response.status_code == 400
    assert "sort" in response.json()["error"]["detail"]


def test_inbox_filters_offer_the_waiting_tables_and_state_labels(as_erin, inbox):
    html = as_erin.get("/evidence/inbox/").content.decode()

    form = html[html.index('aria-label="Search and filter the inbox"') :]
    table = form[form.index('name="table"') : form.index("</select>")]
    assert re.findall(r'<option value="([^"]*)"', table) == ["", "change_request", "incident"]
    state = form[form.index('name="state"') :]
    state = state[: state.index("</select>")]
    assert re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)<', state) == [
        ("", "Any state"), ("2", "In Progress"), ("6", "Resolved"),
    ]  # fmt: skip


def test_inbox_shows_state_and_priority_display_labels(as_erin, inbox):
    html = as_erin.get("/evidence/inbox/").content.decode()
    row = html[html.index(f'id="candidate-{inbox["drift"].pk}"') :]
    row = row[: row.index("</article>")]

    assert '<span class="tag" title="state 2">In Progress</span>' in row
    assert '<span class="tag" title="priority 1">priority 1 - High</span>' in row


def test_inbox_pages_by_25_and_keeps_the_filters(as_erin, erin):
    for i in range(30):
        candidate(erin, f"INC10{i:05d}", on=date(2026, 1, 1) + timedelta(days=i))

    first = as_erin.get("/evidence/inbox/?table=incident").content.decode()
    second = as_erin.get("/evidence/inbox/?table=incident&page=2").content.decode()

    assert len(numbers(first)) == 25 and len(numbers(second)) == 5
    assert "30 candidates match · showing 1–25" in first
    assert 'href="?table=incident&amp;page=2" rel="next"' in first
    assert set(numbers(first)).isdisjoint(numbers(second))
    # a row's "all expectations" link (its whole picker, without JavaScript) keeps them too
    assert re.search(r'href="\?table=incident&amp;pick=\d+#candidate-\d+">All expectations', first)


def test_inbox_page_has_select_all_picker_and_static_script(as_erin, inbox):
    html = as_erin.get("/evidence/inbox/").content.decode()

    assert '<script src="/static/js/inbox.js" defer></script>' in html
    assert 'id="select-all"' in html
    assert "<script>" not in html and " onclick=" not in html
    bulk = html[html.index('id="bulk"') : html.index('id="inbox-list"')]
    assert 'name="expectations" value="TE-3.1" form="bulk">' in bulk


# --- bulk accept with links -----------------------------------------------------------------


def test_inbox_bulk_accept_adds_the_chosen_links_and_keeps_suggestions(as_erin, inbox):
    picked = [inbox["latency"], inbox["change"]]

    response = as_erin.post(
        "/evidence/inbox/bulk/",
        {
            "action": "accept",
            "ids": [e.pk for e in picked],
            "expectations": ["TE-3.2", "TE-3.1"],
            "next": "/evidence/inbox/?table=incident",
        },
    )

    assert response["Location"] == "/evidence/inbox/?table=incident"
    page = as_erin.get(response["Location"]).content.decode()
    assert "Accepted 2 items. Linked to TE-3.2, TE-3.1." in page
    links = {
        e.title[:10]: sorted(e.links.values_list("expectation__code", "origin"))
        for e in Evidence.objects.filter(pk__in=[e.pk for e in picked])
    }
    assert links == {
        "INC0000001": [("TE-3.1", "engineer"), ("TE-3.2", "engineer")],
        "CHG0000003": [("CC-3.1", "engineer"), ("TE-3.1", "engineer"), ("TE-3.2", "engineer")],
    }
    assert inbox["drift"].links.count() == 0


def test_inbox_bulk_accept_with_an_unknown_code_changes_nothing(as_erin, inbox):
    response = as_erin.post(
        "/evidence/inbox/bulk/",
        {"action": "accept", "ids": [inbox["latency"].pk], "expectations": ["ZZ-9.9"]},
    )

    page = as_erin.get(response["Location"]).content.decode()
    assert "&#x27;ZZ-9.9&#x27; is not an expectation of your ladder" in page
    inbox["latency"].refresh_from_db()
    assert inbox["latency"].status == "candidate"


def test_api_bulk_accept_with_expectations(erin, inbox):
    client = api_client(erin)
    ids = [inbox["latency"].pk, inbox["drift"].pk]

    response = client.post(
        "/api/v1/evidence/bulk/",
        {"ids": ids, "action": "accept", "expectations": ["CC-3.1"]},
        format="json",
    )
    refused = client.post(
        "/api/v1/evidence/bulk/",
        {"ids": [inbox["change"].pk], "action": "dismiss", "expectations": ["CC-3.1"]},
        format="json",
    )

    assert response.status_code == 200 and response.json() == {"updated": 2}
    assert sorted(inbox["drift"].links.values_list("expectation__code", flat=True)) == ["CC-3.1"]
    assert refused.status_code == 400 and "expectations" in refused.json()["error"]["detail"]


# --- suggestions for the person's level -----------------------------------------------------


@pytest.mark.parametrize(
    ("rules_say", "offered"),
    [
        (["TE-1.1", "TE-2.1", "TE-4.1", "TE-3.1"], ["TE-3.1", "TE-4.1", "TE-2.1"]),
        (["TE-1.1", "TE-2.1"], ["TE-2.1"]),
        (["TE-1.1", "CC-1.1"], ["TE-1.1", "CC-1.1"]),  # nothing else fits: kept, in order
    ],
    ids=["next-first-then-above-then-own", "own-beats-below", "only-below"],
)
def test_suggestions_favour_the_next_level_and_drop_levels_below(erin, rules_say, offered):
    item = work_item(erin, "INC0009999")

    candidates_import(
        candidates=[
            CandidateData(
                person_id=erin.pk, work_item_id=item.pk, title="t", occurred_on=date(2026, 1, 1),
                url="", snapshot={}, links=tuple(SuggestedLink(c, "rule") for c in rules_say),
            )
        ]
    )  # fmt: skip

    evidence = Evidence.objects.get(work_item=item)
    codes = list(evidence.links.order_by("id").values_list("expectation__code", flat=True))
    assert codes == offered


# --- query counts ---------------------------------------------------------------------------


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert fn().status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "path",
    [
        "/evidence/inbox/",
        "/evidence/inbox/?q=INC&table=incident&state=6&sort=priority",
        "/evidence/inbox/?suggested=TE-3.1&page=2",
    ],
)
def test_inbox_page_queries_do_not_grow_with_the_candidates(as_erin, erin, path):
    def make(n, start):
        for i in range(start, start + n):
            candidate(erin, f"INC2{i:06d}", suggested=["TE-3.1", "CC-2.1"],
                      on=date(2026, 1, 1) + timedelta(days=i % 300))  # fmt: skip

    make(30, 0)  # more than one page: page 2 exists at both sizes
    as_erin.get(path)  # the ladder's picker is built once per process (views.inbox_picker)
    small = _queries(lambda: as_erin.get(path))
    make(120, 30)
    with CaptureQueriesContext(connection) as ctx:
        as_erin.get(path)
    large_queries = ctx.captured_queries
    large = len(large_queries)

    assert small == large
    # session, user, person; published version; facets; nav (2); count, page, links
    assert small == 11


def test_candidate_api_queries_do_not_grow_with_the_candidates(erin):
    client = api_client(erin)
    path = "/api/v1/evidence/?status=candidate&q=INC&sort=priority"
    for i in range(5):
        candidate(erin, f"INC3{i:06d}", suggested=["TE-3.1"])
    small = _queries(lambda: client.get(path))
    for i in range(5, 120):
        candidate(erin, f"INC3{i:06d}", suggested=["TE-3.1"])
    large = _queries(lambda: client.get(path))

    assert small == large


def test_a_newly_published_version_gets_a_new_picker(as_erin, erin, inbox, ladder_text, tmp_path):
    before = as_erin.get("/evidence/inbox/").content.decode()
    assert "Owns the latency budget" not in before
    changed = tmp_path / "ladder.yaml"
    old = "Designs and builds production-grade models"  # TE-3.1, erin's next level
    assert ladder_text.count(old) == 1
    changed.write_text(ladder_text.replace(old, "Owns the latency budget"), encoding="utf-8")
    ladder_load_file(path=changed, publish=True)

    after = as_erin.get("/evidence/inbox/").content.decode()
    template = after[after.index('<template id="picker-template">') :]
    assert "Owns the latency budget" in template[: template.index("</template>")]
