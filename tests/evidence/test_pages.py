"""Evidence, inbox, team and people-import pages, rendered with the real templates.

The org is the `org` fixture: maria → omar (manager) → {erin (the engineer under test), pete
(her peer)}; nina → otto outside the chain; root (`admin_user`) is an admin.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from apps.evidence import services
from apps.evidence.models import Attachment, Evidence, EvidenceLink
from apps.evidence.services import LinkSpec
from apps.ladders.models import Expectation, Skill
from apps.people.imports import people_import
from apps.people.models import Person
from tests.evidence.builders import candidate
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def erin(org):
    return org.engineer


def login(client, username: str):
    assert client.login(username=username, password=PASSWORD)
    return client


@pytest.fixture
def as_erin(client, erin):
    return login(client, "erin")


def add(person, title, *, codes=(), skills=(), **kw) -> Evidence:
    return services.evidence_create(
        person=person, actor=person.user, title=title,
        links=[LinkSpec(expectation=c, rationale=f"why {c}") for c in codes],
        skills=list(skills), **kw,
    )  # fmt: skip


# The shared builder, with the stored state a display label (no separate display values).
candidate = functools.partial(candidate, state="Resolved")


def titles(html: str) -> list[str]:
    return re.findall(r'<a class="title" href="/evidence/\d+/">([^<]*)</a>', html)


# --- every page renders ---------------------------------------------------------------


def test_anonymous_is_sent_to_login(client, erin):
    for url in ("/evidence/", "/evidence/inbox/", "/evidence/brag.md", "/team/", "/people/import/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/login/?next="), url


def test_every_page_renders_for_the_owner(as_erin, erin):
    item = add(erin, "Churn model", codes=["TE-3.1"])
    candidate(erin, "INC0010001")

    pages = {
        "/evidence/": "My evidence",
        "/evidence/new/": "Add evidence",
        f"/evidence/{item.pk}/": "Churn model",
        f"/evidence/{item.pk}/edit/": "Edit evidence",
        "/evidence/inbox/": "INC0010001",
        "/evidence/trash/": "The trash is empty.",
    }
    for url, text in pages.items():
        response = as_erin.get(url)
        assert response.status_code == 200, url
        assert text in response.content.decode(), url
    brag = as_erin.get("/evidence/brag.md")
    assert brag.status_code == 200


def test_nav_is_role_aware(client, org, admin_user):
    candidate(org.engineer, "INC0010001")
    candidate(org.engineer, "INC0010002")

    as_engineer = login(client, "erin").get("/evidence/").content.decode()
    as_manager = login(client, "omar").get("/evidence/").content.decode()
    client.login(username=admin_user.username, password=PASSWORD)
    as_admin = client.get("/ladders/").content.decode()

    assert re.search(r'href="/evidence/"[^>]*>My evidence</a>', as_engineer)
    assert re.search(r'href="/evidence/inbox/"[^>]*>Inbox <span id="inbox-count"[^>]*>2</span>',
                     as_engineer)  # fmt: skip
    assert "My team" not in as_engineer and "People import" not in as_engineer
    assert 'href="/team/"' in as_manager and "People import" not in as_manager
    assert 'href="/people/import/"' in as_admin
    assert "My evidence" not in as_admin  # an admin without a person profile has none


# --- the list: facts, filters, coverage ---------------------------------------------------


def test_list_shows_each_items_facts(as_erin, erin):
    manual = add(erin, "Feature store talk", codes=["CC-3.1"], skills=["Python"],
                 occurred_on=date(2026, 2, 1), occurred_until=date(2026, 2, 3))  # fmt: skip
    services.attachment_add(
        evidence=manual, actor=erin.user,
        upload=SimpleUploadedFile("notes.txt", b"slides\n"),
    )  # fmt: skip
    gone = candidate(erin, "INC0010009", deleted=True)
    services.evidence_accept(evidence=gone, actor=erin.user)

    html = as_erin.get("/evidence/").content.decode()

    item = html[html.index(f'id="evidence-{manual.pk}"') :][:1500]
    assert "2026-02-01 – 2026-02-03" in item
    assert '<code class="code"' in item and "CC-3.1</code>" in item
    assert '<span class="skill">Python</span>' in item
    assert "1 file</span>" in item
    assert '<span class="source manual">Manual</span>' in item
    imported = html[html.index(f'id="evidence-{gone.pk}"') :][:1500]
    assert (
        f'ServiceNow <a href="{gone.url}" target="_blank" rel="noopener noreferrer">INC0010009</a>'
        in imported
    )
    assert "deleted in ServiceNow" in imported


def test_list_is_your_own_accepted_evidence_by_default(as_erin, org, erin):
    add(erin, "Mine")
    add(org.peer, "Pete's")
    candidate(erin, "INC0010001")
    dismissed = candidate(erin, "INC0010002")
    services.evidence_dismiss(evidence=dismissed, actor=erin.user)

    assert titles(as_erin.get("/evidence/").content.decode()) == ["Mine"]
    assert len(titles(as_erin.get("/evidence/?status=any").content.decode())) == 3


@pytest.fixture
def mixed(erin):
    """Five of erin's items that differ in one filterable fact each."""
    return {
        "te3": add(erin, "Production model", codes=["TE-3.1"], skills=["PyTorch"],
                   occurred_on=date(2026, 1, 10)),
        "cc2": add(erin, "Demo to peers", codes=["CC-2.2"], occurred_on=date(2026, 2, 10),
                   description="Showed the **drift** dashboard"),
        "range": add(erin, "Migration sprint", occurred_on=date(2025, 12, 20),
                     occurred_until=date(2026, 1, 5)),
        "imported": services.evidence_accept(
            evidence=candidate(erin, "INC0010077", suggested=["PSI-3.1"]), actor=erin.user
        ),
        "candidate": candidate(erin, "INC0010078"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "",
            {"Production model", "Demo to peers", "Migration sprint", "INC0010077: Fix INC0010077"},
        ),
        ("competency=TE", {"Production model"}),
        ("competency=CC", {"Demo to peers"}),
        ("level=3", {"Production model", "INC0010077: Fix INC0010077"}),
        ("skill=PyTorch", {"Production model"}),
        ("source=servicenow", {"INC0010077: Fix INC0010077"}),
        ("source=manual&level=2", {"Demo to peers"}),
        ("status=candidate", {"INC0010078: Fix INC0010078"}),
        ("date_from=2026-01-01&date_to=2026-01-31", {"Production model", "Migration sprint"}),
        ("date_from=2026-02-01", {"Demo to peers", "INC0010077: Fix INC0010077"}),
        ("q=drift", {"Demo to peers"}),
        ("expectation=TE-3.1", {"Production model"}),
    ],
    ids=[
        "none",
        "competency-te",
        "competency-cc",
        "level",
        "skill",
        "source",
        "two-filters",
        "status",
        "date-range",
        "date-from",
        "text",
        "expectation",
    ],  # fmt: skip
)
def test_filters_narrow_the_list(as_erin, mixed, query, expected):
    html = as_erin.get(f"/evidence/?{query}").content.decode()

    assert set(titles(html)) == expected


def test_invalid_filters_are_reported_and_ignored(as_erin, mixed):
    response = as_erin.get("/evidence/?date_from=2026-13-45&level=9")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Ignored filters:" in html and "Enter a valid date." in html
    assert len(titles(html)) == 4


def test_htmx_filter_request_gets_only_the_list(as_erin, mixed):
    response = as_erin.get("/evidence/?competency=TE", headers={"HX-Request": "true"})
    html = response.content.decode()

    assert html.lstrip().startswith('<div id="evidence-list"')
    assert "<html" not in html and "coverage" not in html
    assert titles(html) == ["Production model"]
    assert "HX-Request" in response["Vary"]
    # the filter form drives it: GET, list as target, URL pushed
    page = as_erin.get("/evidence/").content.decode()
    assert 'hx-get="/evidence/" hx-target="#evidence-list"' in page
    assert 'hx-push-url="true"' in page


def test_list_paginates_by_50(as_erin, erin):
    Evidence.objects.bulk_create(
        Evidence(person=erin, title=f"Item {i:03}", occurred_on=date(2026, 1, 1) + timedelta(i))
        for i in range(55)
    )

    first = as_erin.get("/evidence/").content.decode()
    second = as_erin.get("/evidence/?page=2").content.decode()

    assert len(titles(first)) == 50 and titles(first)[0] == "Item 054"
    assert titles(second) == [f"Item {i:03}" for i in range(4, -1, -1)]
    assert "Page 1 of 2" in first and 'href="?page=2"' in first


def test_coverage_strip_marks_covered_and_gaps(as_erin, erin):
    add(erin, "Model A", codes=["TE-3.1"])
    add(erin, "Model B", codes=["TE-3.1", "CC-3.1"])
    candidate(erin, "INC0010001", suggested=["TE-3.2"])  # not accepted: no coverage
    services.evidence_delete(evidence=add(erin, "Gone", codes=["PSI-3.1"]), actor=erin.user)

    html = as_erin.get("/evidence/").content.decode()
    strip = html[html.index('<section class="coverage') : html.index("</section>")]

    assert "Level 3: your next level" in strip
    assert "<strong>2 of 5</strong> expectations covered (40%)" in strip
    assert re.search(
        r'class="chip covered" data-code="TE-3.1"[^>]*>TE-3.1 <span class="n">✓ 2<', strip
    )
    assert re.search(
        r'class="chip covered" data-code="CC-3.1"[^>]*>CC-3.1 <span class="n">✓ 1<', strip
    )
    for gap in ("TE-3.2", "TE-3.3", "PSI-3.1"):
        assert f'class="chip gap" data-code="{gap}"' in strip
    headings = re.findall(r"<h3>([^<]*)</h3>", strip)
    assert headings == ["Technical Expertise", "Problem Solving &amp; Innovation",
                        "Collaboration &amp; Communication"]  # fmt: skip


# --- add and edit -------------------------------------------------------------------------


def test_add_evidence_with_links_skills_and_files(as_erin, erin):
    response = as_erin.post(
        "/evidence/new/",
        {
            "title": "Churn model v2", "description": "Rebuilt it with **PyTorch**.",
            "occurred_on": "2026-03-01", "occurred_until": "2026-03-04",
            "url": "https://git.example.com/churn/pull/7", "visibility": "private",
            "skills": ["PyTorch", "Python"], "expectations": ["TE-3.1", "PSI-2.1"],
            "rationale-TE-3.1": "Shipped to production", "rationale-PSI-2.1": "",
            "rationale-TE-3.2": "not ticked, ignored",
            "files": [SimpleUploadedFile("a.txt", b"one\n"),
                      SimpleUploadedFile("b.md", b"# two\n")],
        },
    )  # fmt: skip

    evidence = Evidence.objects.get(title="Churn model v2")
    assert response.status_code == 302 and response["Location"] == f"/evidence/{evidence.pk}/"
    assert (evidence.occurred_on, evidence.occurred_until) == (date(2026, 3, 1), date(2026, 3, 4))
    assert evidence.visibility == "private" and evidence.source == "manual"
    assert evidence.description_html == "<p>Rebuilt it with <strong>PyTorch</strong>.</p>"
    assert sorted(evidence.skills.values_list("name", flat=True)) == ["PyTorch", "Python"]
    assert sorted(evidence.links.values_list("expectation__code", "rationale", "origin")) == [
        ("PSI-2.1", "", "engineer"), ("TE-3.1", "Shipped to production", "engineer"),
    ]  # fmt: skip
    assert sorted(evidence.attachments.values_list("name", flat=True)) == ["a.txt", "b.md"]


def test_add_links_a_deliverable(as_erin, erin, ladder_version):
    deliverable = ladder_version.deliverables.first()

    as_erin.post("/evidence/new/", {
        "title": "EDA report", "visibility": "manager", "deliverables": [str(deliverable.pk)],
        f"rationale-d{deliverable.pk}": "the churn EDA",
    })  # fmt: skip

    link = Evidence.objects.get(title="EDA report").links.get()
    assert (link.deliverable_id, link.rationale) == (deliverable.pk, "the churn EDA")


def test_form_lists_next_level_first_with_skills(as_erin):
    html = as_erin.get("/evidence/new/").content.decode()

    summaries = re.findall(r"<summary>Level (\d)", html)
    assert summaries == ["3", "1", "2", "4", "5"]
    assert 'name="expectations" value="TE-3.1" id="exp-TE-3.1"' in html
    assert 'name="rationale-TE-3.1"' in html
    assert 'value="PyTorch"' in html  # the ladder's skill taxonomy
    assert 'name="files" multiple' in html and 'enctype="multipart/form-data"' in html


@pytest.mark.parametrize(
    ("data", "field_error"),
    [
        ({"occurred_on": "2026-13-45"}, "Enter a valid date."),
        (
            {"occurred_on": "2026-03-05", "occurred_until": "2026-03-01"},
            "The range ends before it starts.",
        ),
        ({"occurred_until": "2026-03-01"}, "A range needs a start date."),
        (
            {"expectations": ["TE-3.1", "XX-9.9"]},
            "&#x27;XX-9.9&#x27; is not an expectation of your ladder",
        ),
        ({"title": ""}, "This field is required."),
        ({"url": "javascript:alert(1)"}, "Enter a valid URL."),
        (
            {"skills": ["Cobol"]},
            "Select a valid choice. Cobol is not one of the available choices.",
        ),
        ({"deliverables": ["abc"]}, "&#x27;abc&#x27; is not a deliverable."),
    ],
    ids=[
        "bad-date",
        "range-backwards",
        "range-without-start",
        "unknown-expectation",
        "no-title",
        "bad-url",
        "unknown-skill",
        "bad-deliverable",
    ],  # fmt: skip
)
def test_form_errors_show_on_the_page(as_erin, data, field_error):
    post = {"title": "Something", "visibility": "manager", **data}

    response = as_erin.post("/evidence/new/", post)
    html = response.content.decode()

    assert response.status_code == 400
    assert "Please fix the following." in html
    assert field_error in html
    assert not Evidence.objects.exists()
    # what was typed is still there
    if post["title"]:
        assert 'value="Something"' in html


def test_rejected_file_keeps_everything_unwritten(as_erin):
    response = as_erin.post("/evidence/new/", {
        "title": "With a bad file", "visibility": "manager",
        "files": [SimpleUploadedFile("tool.txt", b"MZ\x00\x01binary")],
    })  # fmt: skip

    assert response.status_code == 400
    assert "tool.txt: application/x-msdownload files are not accepted." in response.content.decode()
    assert not Evidence.objects.exists() and not Attachment.objects.exists()


def test_edit_changes_fields_and_history_shows_old_to_new(as_erin, erin):
    item = add(erin, "Old title", codes=["TE-3.1"], skills=["Python"])

    form = as_erin.get(f"/evidence/{item.pk}/edit/").content.decode()
    response = as_erin.post(f"/evidence/{item.pk}/edit/", {
        "title": "New title", "description": "", "occurred_on": item.occurred_on.isoformat(),
        "visibility": "manager", "skills": ["Python", "SQL"],
        "expectations": ["TE-3.1", "TE-3.2"], "rationale-TE-3.1": "why TE-3.1",
        "rationale-TE-3.2": "MLflow tracking",
    })  # fmt: skip
    detail = as_erin.get(f"/evidence/{item.pk}/").content.decode()

    assert 'value="Old title"' in form
    assert 'value="TE-3.1" id="exp-TE-3.1" checked' in form
    assert 'name="rationale-TE-3.1" value="why TE-3.1"' in form
    assert response.status_code == 302
    assert '<span class="field">title</span>: <del>Old title</del> → <ins>New title</ins>' in detail
    assert '<span class="field">skills</span>: <del>Python</del> → <ins>Python, SQL</ins>' in detail
    assert "<del>TE-3.1</del> → <ins>TE-3.1, TE-3.2</ins>" in detail
    assert "MLflow tracking" in detail


def test_edit_of_an_imported_item_shows_the_snapshot_read_only(as_erin, erin):
    item = candidate(erin, "INC0010042", short_description="Retrain classifier")

    html = as_erin.get(f"/evidence/{item.pk}/edit/").content.decode()
    undated = as_erin.post(f"/evidence/{item.pk}/edit/", {"title": "Mine", "visibility": "manager"})
    saved = as_erin.post(
        f"/evidence/{item.pk}/edit/",
        {"title": "My words", "visibility": "manager", "occurred_on": "2026-03-02"},
    )

    assert 'aria-label="ServiceNow snapshot"' in html
    assert "<dt>Number</dt><dd>INC0010042</dd>" in html
    assert "<dt>Short description</dt><dd>Retrain classifier</dd>" in html
    assert undated.status_code == 400  # an edit keeps a date ("today" is for new items)
    assert saved.status_code == 302
    item.refresh_from_db()
    assert item.title == "My words" and item.snapshot["number"] == "INC0010042"


# --- detail -------------------------------------------------------------------------------


def test_detail_shows_description_links_snapshot_files_and_history(as_erin, erin):
    item = candidate(erin, "INC0010005", suggested=["TE-3.3"])
    services.evidence_update(
        evidence=item, actor=erin.user,
        description="Fixed **drift** <script>alert(1)</script>",
    )  # fmt: skip
    attachment = services.attachment_add(
        evidence=item, actor=erin.user, upload=SimpleUploadedFile("log.txt", b"trace\n")
    )

    html = as_erin.get(f"/evidence/{item.pk}/").content.decode()

    assert "Fixed <strong>drift</strong>" in html and "<script>alert" not in html
    assert "TE-3.3</code> Experience with model deployment and monitoring" in html
    assert "rule says TE-3.3" in html and "· suggested" in html
    assert "<dt>Number</dt><dd>INC0010005</dd>" in html
    assert f'href="{item.url}" target="_blank" rel="noopener noreferrer">Open in ServiceNow' in html
    assert f'href="/evidence/{item.pk}/attachments/{attachment.pk}/">log.txt</a>' in html
    history = html[html.index("<h2>History</h2>") :]
    assert history.index("ServiceNow sync</strong> · imported") < history.index(
        "Erin</strong> · updated"
    )
    assert "Erin</strong> · file attached" in history
    # a candidate offers accept and dismiss to its owner
    assert f'action="/evidence/{item.pk}/accept/"' in html
    assert f'action="/evidence/{item.pk}/dismiss/"' in html


def test_attachment_download_checks_who_may_see_the_item(client, org, erin):
    item = add(erin, "With a file")
    attachment = services.attachment_add(
        evidence=item, actor=erin.user, upload=SimpleUploadedFile("notes.txt", b"hello\n")
    )
    url = f"/evidence/{item.pk}/attachments/{attachment.pk}/"

    owner = login(client, "erin").get(url)
    assert owner.status_code == 200
    assert b"".join(owner.streaming_content) == b"hello\n"
    assert owner["Content-Disposition"] == 'attachment; filename="notes.txt"'
    assert owner["X-Content-Type-Options"] == "nosniff"
    assert login(client, "omar").get(url).status_code == 200
    assert login(client, "pete").get(url).status_code == 404
    assert login(client, "erin").get(f"/evidence/{item.pk}/attachments/999/").status_code == 404


def test_owner_removes_an_attachment(as_erin, erin):
    item = add(erin, "With a file")
    attachment = services.attachment_add(
        evidence=item, actor=erin.user, upload=SimpleUploadedFile("notes.txt", b"hello\n")
    )

    response = as_erin.post(f"/evidence/{item.pk}/attachments/{attachment.pk}/remove/")

    assert response.status_code == 302
    assert not item.attachments.exists()


def test_manager_reads_read_only_and_others_get_404(client, org, erin):
    shared = add(erin, "Shared with managers")
    private = add(erin, "Only mine", visibility="private")

    for username in ("omar", "maria"):  # direct and skip-level manager
        login(client, username)
        html = client.get(f"/evidence/{shared.pk}/").content.decode()
        assert "Shared with managers" in html and "Read-only" in html
        assert f"/evidence/{shared.pk}/edit/" not in html
        assert client.get(f"/evidence/{shared.pk}/edit/").status_code == 403
        assert client.post(f"/evidence/{shared.pk}/delete/").status_code == 403
        assert client.get(f"/evidence/{private.pk}/").status_code == 404
    for username in ("pete", "nina", "otto"):
        login(client, username)
        assert client.get(f"/evidence/{shared.pk}/").status_code == 404
        assert client.post(f"/evidence/{shared.pk}/delete/").status_code == 404
        assert client.get(f"/evidence/{shared.pk}/edit/").status_code == 404
    shared.refresh_from_db()
    assert shared.deleted_at is None


# --- delete, undo, trash ------------------------------------------------------------------


def test_delete_then_undo_from_the_message(as_erin, erin):
    item = add(erin, "Oops")

    response = as_erin.post(f"/evidence/{item.pk}/delete/")
    page = as_erin.get(response["Location"]).content.decode()

    assert response["Location"] == "/evidence/"
    assert "Oops" not in titles(page)
    message = page[page.index('<ul class="messages"') :][:800]
    assert "Deleted “Oops”." in message
    assert f'<form method="post" action="/evidence/{item.pk}/restore/" class="undo">' in message
    assert 'name="csrfmiddlewaretoken"' in message
    assert '<button type="submit">Undo</button>' in message

    undo = as_erin.post(f"/evidence/{item.pk}/restore/")

    assert undo["Location"] == f"/evidence/{item.pk}/"
    assert "Oops" in titles(as_erin.get("/evidence/").content.decode())
    actions = list(item.events.values_list("action", flat=True))
    assert actions == ["created", "deleted", "restored"]


def test_deleted_title_is_escaped_in_the_undo_message(as_erin, erin):
    item = add(erin, "<b>bold</b>")

    as_erin.post(f"/evidence/{item.pk}/delete/")
    page = as_erin.get("/evidence/").content.decode()

    assert "Deleted “&lt;b&gt;bold&lt;/b&gt;”." in page


def test_trash_lists_own_deleted_items_and_restores(client, org, erin):
    item = add(erin, "Binned")
    services.evidence_delete(evidence=item, actor=erin.user)
    add(erin, "Kept")

    login(client, "erin")
    trash = client.get("/evidence/trash/").content.decode()
    assert "Binned" in trash and "Kept" not in trash
    assert f'action="/evidence/{item.pk}/restore/"' in trash
    assert client.get(f"/evidence/{item.pk}/").status_code == 404

    login(client, "omar")
    assert "Binned" not in client.get("/evidence/trash/").content.decode()
    assert client.post(f"/evidence/{item.pk}/restore/").status_code == 404

    login(client, "erin")
    restored = client.post(f"/evidence/{item.pk}/restore/", {"next": "/evidence/trash/"})
    assert restored["Location"] == "/evidence/trash/"
    assert "The trash is empty." in client.get("/evidence/trash/").content.decode()


# --- inbox --------------------------------------------------------------------------------


def test_inbox_lists_candidates_with_suggestions_preselected(as_erin, erin, org):
    first = candidate(erin, "INC0010001", suggested=["TE-3.1", "CC-2.1"])
    candidate(erin, "INC0010002")
    services.evidence_accept(evidence=candidate(erin, "INC0010003"), actor=erin.user)
    candidate(org.peer, "INC0010004")

    html = as_erin.get("/evidence/inbox/").content.decode()

    assert html.count('class="card inbox-item"') == 2
    assert "INC0010001" in html and "INC0010002" in html
    assert "INC0010003" not in html and "INC0010004" not in html
    row = html[html.index(f'id="candidate-{first.pk}"') :]
    row = row[: row.index("</article>")]
    # a row carries its ticked expectations (what it submits as it is) and no more
    ticked = re.findall(r'name="expectations" value="([^"]+)" checked>', row)
    assert ticked == ["TE-3.1", "CC-2.1"]
    assert row.count('name="expectations"') == 2 and "data-picker-lazy" in row
    assert f'href="?pick={first.pk}#candidate-{first.pk}">All expectations' in row
    # the page's one whole picker, which the script clones into a row as it opens:
    # the next level first, the levels above it, then the person's own and below, folded
    template = html[html.index('<template id="picker-template">') :]
    template = template[: template.index("</template>")]
    assert 'aria-label="Level 3 (your next level) · Technical Expertise"' in template
    assert template.index("Level 3 (your next level)") < template.index("Level 4 ·")
    assert template.index("Level 4 ·") < template.index("<summary>Your level and below</summary>")
    assert template.index("<summary>Your level and below</summary>") < template.index("Level 1 ·")
    assert " checked" not in template and "<select" not in row
    # without JavaScript, the link shows that row's whole picker with its ticks, open
    whole = as_erin.get(f"/evidence/inbox/?pick={first.pk}").content.decode()
    whole_row = whole[whole.index(f'id="candidate-{first.pk}"') :]
    whole_row = whole_row[: whole_row.index("</article>")]
    assert '<details class="picker" open>' in whole_row and "data-picker-lazy" not in whole_row
    assert whole_row.count('name="expectations"') == template.count('name="expectations"') > 20
    ticked = re.findall(r'name="expectations" value="([^"]+)" checked>', whole_row)
    assert ticked == ["TE-3.1", "CC-2.1"]
    assert '<span class="tag" title="priority 2">priority 2</span>' in row and "ml_model" in row
    assert f'hx-post="/evidence/{first.pk}/accept/" hx-target="#candidate-{first.pk}"' in row
    assert f'formaction="/evidence/{first.pk}/dismiss/"' in row
    assert f'name="ids" value="{first.pk}" form="bulk"' in row


def test_inbox_accept_with_chosen_links_swaps_the_row_out(as_erin, erin):
    item = candidate(erin, "INC0010001", suggested=["TE-3.1", "CC-2.1"])
    candidate(erin, "INC0010002")

    response = as_erin.post(
        f"/evidence/{item.pk}/accept/",
        {"links_chosen": "1", "expectations": ["TE-3.1", "TE-3.2"]},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode().strip()
    assert response.status_code == 200
    assert html == (
        '<span id="inbox-count" class="count" aria-label="1 waiting" hx-swap-oob="true">1</span>'
    )
    item.refresh_from_db()
    assert item.status == "accepted"
    assert sorted(item.links.values_list("expectation__code", "rationale", "origin")) == [
        ("TE-3.1", "rule says TE-3.1", "engineer"), ("TE-3.2", "", "engineer"),
    ]  # fmt: skip


def test_accept_without_a_choice_keeps_the_suggestions(as_erin, erin):
    item = candidate(erin, "INC0010001", suggested=["TE-3.1"])

    response = as_erin.post(f"/evidence/{item.pk}/accept/", {"next": f"/evidence/{item.pk}/"})

    assert response["Location"] == f"/evidence/{item.pk}/"
    assert list(item.links.values_list("expectation__code", "origin")) == [("TE-3.1", "engineer")]
    item.refresh_from_db()
    assert item.status == "accepted"


def test_inbox_accept_with_an_unknown_code_shows_the_error_in_the_row(as_erin, erin):
    item = candidate(erin, "INC0010001")

    response = as_erin.post(
        f"/evidence/{item.pk}/accept/", {"links_chosen": "1", "expectations": ["ZZ-1.1"]},
        headers={"HX-Request": "true"},
    )  # fmt: skip

    assert response.status_code == 422
    html = response.content.decode()
    assert html.strip().startswith(f'<article class="card inbox-item" id="candidate-{item.pk}"')
    assert "&#x27;ZZ-1.1&#x27; is not an expectation of your ladder" in html
    item.refresh_from_db()
    assert item.status == "candidate"


def test_inbox_dismiss_swaps_the_row_out(as_erin, erin):
    item = candidate(erin, "INC0010001")

    response = as_erin.post(f"/evidence/{item.pk}/dismiss/", headers={"HX-Request": "true"})
    plain = as_erin.post(f"/evidence/{candidate(erin, 'INC0010002').pk}/dismiss/")

    assert '<span id="inbox-count"' in response.content.decode()
    assert 'hidden hx-swap-oob="true">0</span>' in response.content.decode()
    assert plain["Location"] == "/evidence/inbox/"
    item.refresh_from_db()
    assert item.status == "dismissed"


@pytest.mark.parametrize(("action", "status"), [("accept", "accepted"), ("dismiss", "dismissed")])
def test_inbox_bulk_triage(as_erin, erin, org, action, status):
    picked = [candidate(erin, f"INC00100{i}", suggested=["TE-3.1"]) for i in range(3)]
    left = candidate(erin, "INC0010099")
    petes = candidate(org.peer, "INC0010098")

    response = as_erin.post(
        "/evidence/inbox/bulk/", {"action": action, "ids": [e.pk for e in picked] + [petes.pk]}
    )
    page = as_erin.get(response["Location"]).content.decode()

    assert response["Location"] == "/evidence/inbox/"
    verb = "Accepted" if action == "accept" else "Dismissed"
    assert f"{verb} 3 items. 1 were no longer in your inbox." in page
    assert [e.status for e in Evidence.objects.filter(pk__in=[e.pk for e in picked])] == [
        status
    ] * 3
    left.refresh_from_db()
    petes.refresh_from_db()
    assert (left.status, petes.status) == ("candidate", "candidate")


def test_inbox_bulk_without_a_tick_says_so(as_erin, erin):
    response = as_erin.post("/evidence/inbox/bulk/", {"action": "accept"})

    assert "Tick at least one item." in as_erin.get(response["Location"]).content.decode()


def test_manager_cannot_triage_a_reports_candidate(client, org, erin):
    item = candidate(erin, "INC0010001")

    login(client, "omar")
    assert client.post(f"/evidence/{item.pk}/accept/").status_code == 403
    login(client, "pete")
    assert client.post(f"/evidence/{item.pk}/dismiss/").status_code == 404
    item.refresh_from_db()
    assert item.status == "candidate"


# --- brag document ------------------------------------------------------------------------


def test_brag_document_groups_accepted_evidence_by_competency(as_erin, erin):
    add(erin, "Feature store", codes=["TE-3.1", "CC-3.1"], occurred_on=date(2026, 2, 1),
        description="Built the **feature store**.", url="https://git.example.com/fs")  # fmt: skip
    add(erin, "Mentoring", occurred_on=date(2026, 1, 15))
    imported = candidate(erin, "INC0010007", suggested=["PSI-3.1"])
    services.evidence_accept(evidence=imported, actor=erin.user)
    candidate(erin, "INC0010008", suggested=["TE-3.2"])  # still a candidate: left out
    services.evidence_delete(evidence=add(erin, "Deleted", codes=["TE-3.3"]), actor=erin.user)

    response = as_erin.get("/evidence/brag.md")
    text = response.content.decode()

    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="brag-erin.md"'
    sections = re.findall(r"^## (.+)$", text, flags=re.M)
    assert sections == ["Technical Expertise", "Problem Solving & Innovation",
                        "Collaboration & Communication", "Not linked"]  # fmt: skip
    assert "INC0010008" not in text and "Deleted" not in text
    te = text[text.index("## Technical Expertise") : text.index("## Problem Solving")]
    assert te == (
        "## Technical Expertise\n\n### Feature store\n\n"
        "2026-02-01 · <https://git.example.com/fs> · Expectations: TE-3.1\n\n"
        "Built the **feature store**.\n\n"
    )
    psi = text[text.index("## Problem Solving") : text.index("## Collaboration")]
    assert f"[ServiceNow INC0010007]({imported.url})" in psi
    assert "Expectations: PSI-3.1" in psi
    assert "### Feature store" in text[text.index("## Collaboration") : text.index("## Not linked")]
    assert text[text.index("## Not linked") :] == ("## Not linked\n\n### Mentoring\n\n2026-01-15\n")


# --- team ---------------------------------------------------------------------------------


def test_team_view_shows_reports_non_private_evidence_at_any_depth(client, org, erin):
    add(erin, "Erin shared")
    add(erin, "Erin private", visibility="private")
    add(org.peer, "Pete shared")
    add(org.manager, "Mona own")
    add(org.other_engineer, "Otto elsewhere")

    as_maria = login(client, "maria").get("/team/evidence/").content.decode()
    as_omar = login(client, "omar").get("/team/evidence/").content.decode()

    assert set(titles(as_maria)) == {"Erin shared", "Pete shared", "Mona own"}
    assert set(titles(as_omar)) == {"Erin shared", "Pete shared"}
    row = as_omar[as_omar.index("Erin shared") :][:200]
    assert '<span class="person">Erin</span>' in row
    assert f'<option value="{erin.pk}">Erin</option>' in as_omar
    assert f'<option value="{org.other_engineer.pk}">' not in as_omar


def test_team_view_filters_by_person_and_the_usual_filters(client, org, erin):
    add(erin, "Erin TE", codes=["TE-3.1"])
    add(erin, "Erin CC", codes=["CC-2.1"])
    add(org.peer, "Pete TE", codes=["TE-2.1"])

    login(client, "omar")
    by_person = client.get(f"/team/evidence/?person={erin.pk}").content.decode()
    by_competency = client.get("/team/evidence/?competency=TE").content.decode()
    not_a_report = client.get(f"/team/evidence/?person={org.other_engineer.pk}").content.decode()
    partial = client.get("/team/evidence/?competency=CC", headers={"HX-Request": "true"})
    partial = partial.content.decode()

    assert set(titles(by_person)) == {"Erin TE", "Erin CC"}
    assert set(titles(by_competency)) == {"Erin TE", "Pete TE"}
    assert "Ignored filters:" in not_a_report  # not one of the choices
    assert set(titles(not_a_report)) == {"Erin TE", "Erin CC", "Pete TE"}
    assert partial.lstrip().startswith('<div id="evidence-list"') and titles(partial) == ["Erin CC"]


def test_team_view_is_404_for_non_managers(client, org, admin_user):
    for username in ("erin", "otto"):
        login(client, username)
        assert client.get("/team/evidence/").status_code == 404
    client.login(username=admin_user.username, password=PASSWORD)
    assert client.get("/team/evidence/").status_code == 404


# --- query counts -------------------------------------------------------------------------


def _bulk_items(person, n: int) -> None:
    """n accepted items, each with two links, a skill and an attachment row."""
    items = Evidence.objects.bulk_create(
        Evidence(person=person, title=f"Bulk {i}", source=Evidence.Source.MANUAL,
                 occurred_on=date(2026, 1, 1) + timedelta(i % 300))
        for i in range(n)
    )  # fmt: skip
    te31, cc31 = Expectation.objects.get(code="TE-3.1"), Expectation.objects.get(code="CC-3.1")
    skill = Skill.objects.filter(name="Python").first()
    EvidenceLink.objects.bulk_create(
        EvidenceLink(evidence=e, expectation=exp) for e in items for exp in (te31, cc31)
    )
    Evidence.skills.through.objects.bulk_create(
        Evidence.skills.through(evidence_id=e.pk, skill_id=skill.pk) for e in items
    )
    Attachment.objects.bulk_create(
        Attachment(evidence=e, file=f"evidence/x/{e.pk}", name="a.txt", size=1,
                   content_type="text/plain", sha256="0" * 64)
        for e in items
    )  # fmt: skip


# Fixed costs, whatever the number of items: session, user, person, the filters' ladder
# choices, the scope, a count, one page and its three prefetches, the coverage strip (3),
# the navigation (person, inbox badge, manager check). The team page also walks the org
# chart (one query per level below the manager) for its scope, its person filter and the
# navigation's packet-review badge.
EVIDENCE_LIST_QUERIES = 20
TEAM_QUERIES = 31


@pytest.mark.parametrize("n", [10, 1000])
def test_evidence_list_queries_do_not_grow(as_erin, erin, django_assert_max_num_queries, n):
    _bulk_items(erin, n)
    candidate(erin, "INC0010001")

    with django_assert_max_num_queries(EVIDENCE_LIST_QUERIES):
        response = as_erin.get("/evidence/")

    assert len(titles(response.content.decode())) == min(n, 50)


@pytest.mark.parametrize("n", [10, 1000])
def test_team_queries_do_not_grow(client, org, django_assert_max_num_queries, n):
    _bulk_items(org.engineer, n // 2)
    _bulk_items(org.peer, n // 2)
    login(client, "maria")

    with django_assert_max_num_queries(TEAM_QUERIES):
        response = client.get("/team/evidence/")

    assert len(titles(response.content.decode())) == min(n, 50)


# --- people import ------------------------------------------------------------------------

HEADER = "username,email,name,title,ladder,level,manager,is_committee\n"
GOOD_CSV = HEADER + (
    "ana,ana@example.com,Ana Lead,Engineering Manager,ai-ml-engineer,4,,true\n"
    "bob,bob@example.com,Bob Builder,AI/ML Engineer,ai-ml-engineer,2,ana,false\n"
    "cy,cy@example.com,Cy Young,AI/ML Engineer,ai-ml-engineer,1,bob@example.com,\n"
)
BAD_CSV = HEADER + (
    "ana,ana@example.com,Ana,,ai-ml-engineer,4,,false\n"
    "bob,not-an-email,Bob,,ai-ml-engineer,9,ana,false\n"
    ",cy@example.com,Cy,,no-such-ladder,2,ghost,maybe\n"
    "ana,dan@example.com,Dan,,,,,\n"
)


def csv_upload(text: str, name: str = "people.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


@pytest.fixture
def as_admin(client, admin_user, ladder):
    client.login(username=admin_user.username, password=PASSWORD)
    return client


def test_import_page_dry_run_shows_every_error_and_writes_nothing(as_admin):
    people_before = Person.objects.count()
    expected = people_import(text=BAD_CSV).errors

    response = as_admin.post("/people/import/", {"file": csv_upload(BAD_CSV)})
    html = response.content.decode()

    assert response.status_code == 400
    assert len(expected) >= 7
    assert f"{len(expected)} errors in 4 rows" in html
    rows = [
        (int(line), field, message.replace("&#x27;", "'"))
        for line, field, message in re.findall(
            r"<tr><td>(\d+)</td><td><code>([^<]*)</code></td><td>([^<]*)</td></tr>", html
        )
    ]
    assert rows == [(e.row, e.field or "—", e.message) for e in expected]
    assert (3, "email", "'not-an-email' is not an email address") in rows
    assert (4, "manager", "unknown person 'ghost'") in rows
    assert (5, "username", "also on line 2") in rows
    assert "Import now" not in html
    assert Person.objects.count() == people_before


def test_import_page_commit_creates_people_with_their_manager_chain(as_admin):
    dry = as_admin.post("/people/import/", {"file": csv_upload(GOOD_CSV)})
    html = dry.content.decode()

    assert dry.status_code == 200
    assert "<strong>3</strong> to create, <strong>0</strong> to update" in html
    assert not Person.objects.filter(email="ana@example.com").exists()
    hidden = re.search(r'<textarea name="text"[^>]*hidden[^>]*>\n?(.*?)</textarea>', html, re.S)
    assert hidden.group(1) == GOOD_CSV
    assert '<input type="hidden" name="commit" value="1">' in html

    done = as_admin.post("/people/import/", {"text": GOOD_CSV, "commit": "1"})

    assert done.status_code == 302
    assert "Imported: 3 created, 0 updated." in as_admin.get("/people/import/").content.decode()
    ana, bob, cy = (Person.objects.get(user__username=u) for u in ("ana", "bob", "cy"))
    assert (ana.manager, bob.manager, cy.manager) == (None, ana, bob)
    assert (ana.level, bob.level, cy.level, ana.is_committee) == (4, 2, 1, True)


def test_import_page_rejects_a_file_that_is_not_utf8(as_admin):
    latin1 = SimpleUploadedFile("p.csv", "username\nzoë\n".encode("latin-1"))

    response = as_admin.post("/people/import/", {"file": latin1})

    assert response.status_code == 400
    assert "The CSV must be UTF-8." in response.content.decode()


def test_import_page_is_404_for_non_admins(client, org):
    for username in ("erin", "omar"):
        login(client, username)
        assert client.get("/people/import/").status_code == 404
        assert client.post("/people/import/", {"text": GOOD_CSV, "commit": "1"}).status_code == 404
    assert not Person.objects.filter(email="ana@example.com").exists()


def test_import_people_command_dry_run_then_commit(tmp_path, ladder):
    path = tmp_path / "people.csv"
    path.write_text(GOOD_CSV, encoding="utf-8")
    out = StringIO()

    call_command("import_people", str(path), stdout=out)
    assert out.getvalue() == (
        "dry run: 3 rows, would create 3, would update 0; run again with --commit to import\n"
    )
    assert not Person.objects.exists()

    out = StringIO()
    call_command("import_people", str(path), "--commit", stdout=out)
    assert "import: 3 rows, created 3, updated 0" in out.getvalue()
    assert Person.objects.get(user__username="cy").manager.user.username == "bob"


def test_import_people_command_reports_errors_and_fails(tmp_path, ladder):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    out = StringIO()

    with pytest.raises(CommandError, match=r"error\(s\); nothing was written"):
        call_command("import_people", str(path), "--commit", stdout=out)

    lines = out.getvalue().splitlines()
    expected = people_import(text=BAD_CSV).errors
    assert lines[0] == f"import: 4 rows, {len(expected)} error(s)"
    assert lines[1:] == [f"line {e.row}: {e.field or '-'}: {e.message}" for e in expected]
    assert not Person.objects.exists()


def test_import_people_command_missing_file(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_people", str(tmp_path / "nope.csv"))
