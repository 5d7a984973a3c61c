"""Ladder API: the tree, versions, visibility of drafts, errors as JSON, query counts."""

import pytest

from apps.ladders.services import ladder_load

pytestmark = pytest.mark.django_db

URL = "/api/v1/ladders/ai-ml-engineer/"


def test_list_shows_the_published_ladder(engineer_api):
    response = engineer_api.get("/api/v1/ladders/")

    assert response.status_code == 200
    assert response.json() == [
        {
            "slug": "ai-ml-engineer",
            "name": "AI/ML Engineer",
            "description": "Career ladder for AI/ML engineers, levels 1–5.",
            "published_version": 1,
        }
    ]


def test_tree_has_levels_competencies_and_expectation_codes(engineer_api):
    body = engineer_api.get(URL).json()

    assert body["version"]["number"] == 1
    assert [lv["number"] for lv in body["levels"]] == [1, 2, 3, 4, 5]
    te = [e["code"] for e in body["expectations"] if e["competency"] == "TE" and e["level"] == 3]
    assert te == ["TE-3.1", "TE-3.2", "TE-3.3"]


def test_anonymous_gets_json_401(api, ladder):
    response = api.get(URL)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_token_auth_works(api, engineer):
    from apps.security.services import token_create

    _, plain = token_create(actor=engineer.user, name="script")
    response = api.get(URL, HTTP_AUTHORIZATION=f"Token {plain}")

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/v1/ladders/no-such-ladder/", 404, "No ladder 'no-such-ladder'."),
        (URL + "?version=99", 404, "No such version of 'ai-ml-engineer'."),
        (URL + "?version=abc", 400, "version: A valid integer is required."),
        (URL + "?version=0", 400, "version: Ensure this value is greater than or equal to 1."),
        (URL + "diff/?from=1", 400, "to: This field is required."),
        (URL + "diff/?from=1&to=zz", 400, "to: A valid integer is required."),
        (URL + "diff/?from=1&to=7", 404, "No such version of 'ai-ml-engineer'."),
        ("/api/v1/no-such-thing/", 404, "Not found."),
    ],
    ids=[
        "unknown-ladder",
        "unknown-version",
        "bad-version",
        "zero-version",
        "diff-missing-to",
        "diff-bad-to",
        "diff-unknown-version",
        "unknown-path",
    ],
)
def test_bad_requests_get_a_json_4xx(engineer_api, path, status, message):
    response = engineer_api.get(path)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["message"] == message


def _new_draft(ladder_text: str):
    return ladder_load(text=ladder_text.replace("Codes in Python/R", "Codes in Python or R"))


def test_drafts_are_hidden_from_engineers_and_shown_to_admins(engineer_api, admin_api, ladder_text):
    _new_draft(ladder_text)

    assert [v["number"] for v in engineer_api.get(URL + "versions/").json()] == [1]
    assert engineer_api.get(URL + "?version=2").status_code == 404
    assert [v["number"] for v in admin_api.get(URL + "versions/").json()] == [2, 1]
    assert admin_api.get(URL + "?version=2").json()["version"]["status"] == "draft"
    # the default stays the published version for everyone
    assert admin_api.get(URL).json()["version"]["number"] == 1


def test_diff_between_versions(admin_api, ladder, ladder_text):
    changed = ladder_text.replace("Codes in Python/R", "Codes in Python or R").replace(
        'code: "CC-5.1"', 'code: "CC-5.2"'
    )
    ladder_load(text=changed, publish=True)

    body = admin_api.get(URL + "diff/?from=1&to=2").json()

    assert (body["from_version"], body["to_version"]) == (1, 2)
    assert [c["code"] for c in body["added"]] == ["CC-5.2"]
    assert [c["code"] for c in body["removed"]] == ["CC-5.1"]
    assert body["changed"] == [
        {
            "code": "TE-1.2",
            "before": {
                "code": "TE-1.2",
                "text": "Codes in Python/R",
                "level": 1,
                "competency": "TE",
            },
            "after": {
                "code": "TE-1.2",
                "text": "Codes in Python or R",
                "level": 1,
                "competency": "TE",
            },
            "fields": ["text"],
        }
    ]


def test_tree_query_count_is_fixed(engineer_api, django_assert_num_queries):
    # auth(token/session) lookups + ladder (its published number rides along) + the version
    # + 6 tree tables
    with django_assert_num_queries(8):
        assert engineer_api.get(URL).status_code == 200


def test_expectation_edit_on_published_version_is_409(admin_api, ladder):
    response = admin_api.patch(
        URL.replace("ai-ml-engineer/", "ai-ml-engineer/versions/1/expectations/TE-1.1/"),
        {"text": "Something else"},
        format="json",
    )

    assert response.status_code == 409
    assert "is published and cannot be changed" in response.json()["error"]["message"]
    assert admin_api.get(URL).json()["expectations"][0]["text"] == (
        "Understands basic ML/DL principles"
    )


def test_expectation_edit_on_draft_works_and_validates(admin_api, ladder, ladder_text):
    _new_draft(ladder_text)
    path = "/api/v1/ladders/ai-ml-engineer/versions/2/expectations/TE-1.1/"

    bad = admin_api.patch(path, {"text": "  "}, format="json")
    good = admin_api.patch(path, {"text": "Knows ML basics"}, format="json")

    assert bad.status_code == 400
    assert good.status_code == 200
    assert good.json()["text"] == "Knows ML basics"


def test_expectation_edit_is_admin_only(engineer_api, ladder_text):
    _new_draft(ladder_text)
    path = "/api/v1/ladders/ai-ml-engineer/versions/2/expectations/TE-1.1/"

    assert engineer_api.patch(path, {"text": "x"}, format="json").status_code == 403
