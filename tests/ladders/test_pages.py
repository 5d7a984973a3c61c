"""Ladder pages rendered with the real templates."""

import pytest
from django.urls import reverse

from apps.ladders.services import ladder_load
from tests.factories import PASSWORD, PersonFactory

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_login(client, ladder):
    response = client.get("/ladders/ai-ml-engineer/")

    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_page_and_login_flow(client, engineer):
    page = client.get("/login/")
    bad = client.post("/login/", {"username": "erin", "password": "wrong"})
    good = client.post("/login/", {"username": "erin", "password": PASSWORD})

    assert page.status_code == 200
    assert b"Sign in" in page.content
    assert "didn't match" in bad.content.decode()
    assert good.status_code == 302
    # home sends an engineer to their own ladder
    assert client.get("/").url == "/ladders/ai-ml-engineer/"


def test_logout_is_a_post(engineer_client):
    response = engineer_client.post("/logout/")

    assert response.status_code == 302
    assert engineer_client.get("/ladders/").status_code == 302


def test_ladder_page_shows_matrix_with_next_level_highlighted(engineer_client):
    response = engineer_client.get("/ladders/ai-ml-engineer/")
    html = response.content.decode()

    assert response.status_code == 200
    assert "Technical Expertise" in html and "Collaboration &amp; Communication" in html
    assert '<li id="TE-3.1"><code>TE-3.1</code> Designs and builds production-grade models' in html
    # erin is at level 2: level 3 is her next level, marked in the header and the cells
    assert html.count('class="next"') == 1 + 3  # header + one cell per competency
    assert "your next level" in html
    assert "you are at level 2" in html
    # deliverables and duties per level
    assert "Unit-tested ML scripts" in html
    assert "Architect end-to-end AI platforms" in html
    # version picker
    assert '<option value="1" selected>v1 (published)</option>' in html


def test_ladder_page_version_picker_shows_an_older_version(engineer_client, ladder_text):
    ladder_load(text=ladder_text.replace("Codes in Python/R", "Codes in Python or R"), publish=True)

    latest = engineer_client.get("/ladders/ai-ml-engineer/").content.decode()
    older = engineer_client.get("/ladders/ai-ml-engineer/?version=1").content.decode()

    assert "Codes in Python or R" in latest
    assert "Codes in Python/R" in older
    assert '<option value="1" selected>v1 (published)</option>' in older
    assert engineer_client.get("/ladders/ai-ml-engineer/?version=9").status_code == 404


def test_nav_is_role_aware(client, ladder, admin_user):
    manager = PersonFactory(user__username="mgr", ladder=ladder, level=4)
    PersonFactory(user__username="rep", ladder=ladder, level=1, manager=manager)

    client.login(username="mgr", password=PASSWORD)
    as_manager = client.get("/ladders/ai-ml-engineer/").content.decode()
    client.login(username=admin_user.username, password=PASSWORD)
    as_admin = client.get("/ladders/").content.decode()

    assert "· manager" in as_manager and 'href="/admin/"' not in as_manager
    assert "· admin" in as_admin and 'href="/admin/"' in as_admin


def test_diff_page(engineer_client, ladder_text):
    ladder_load(text=ladder_text.replace("Codes in Python/R", "Codes in Python or R"), publish=True)

    page = engineer_client.get(reverse("ladders:diff", args=["ai-ml-engineer"]))
    html = page.content.decode()

    assert page.status_code == 200
    assert "Changed (1)" in html
    assert "<del>L1 TE · Codes in Python/R</del>" in html
    assert "<ins>L1 TE · Codes in Python or R</ins>" in html


def test_diff_page_with_bad_versions_is_a_form_error(engineer_client):
    page = engineer_client.get("/ladders/ai-ml-engineer/diff/?from=1&to=5")

    assert page.status_code == 400
    assert "Pick two versions that exist." in page.content.decode()


def test_page_query_count_is_fixed(engineer_client, django_assert_max_num_queries):
    with django_assert_max_num_queries(16):
        assert engineer_client.get("/ladders/ai-ml-engineer/").status_code == 200


def test_htmx_script_is_served(engineer_client):
    html = engineer_client.get("/ladders/").content.decode()

    assert "django-htmx" in html or "htmx" in html
