"""People API (minimal until the people issue): me, scoped list, tokens."""

import hashlib
import re

import pytest
from django.core.management import call_command

from apps.security.models import ApiToken
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_me_returns_the_contract_fields(engineer_api, engineer):
    response = engineer_api.get("/api/v1/people/me/")

    assert response.status_code == 200
    assert response.json() == {
        "id": engineer.pk,
        "username": "erin",
        "email": "erin@example.com",
        "name": engineer.name,
        "title": "",
        "ladder": "ai-ml-engineer",
        "level": 2,
        "manager": None,
        "servicenow_sys_id": "",
        "is_active": True,
        "is_committee": False,
    }


def test_me_without_a_profile_is_a_json_404(api, db):
    api.force_authenticate(UserFactory(username="nobody"))

    response = api.get("/api/v1/people/me/")

    assert response.status_code == 404
    assert "no person profile" in response.json()["error"]["message"]


def test_people_list_is_self_and_reports_at_any_depth(api, ladder):
    boss = PersonFactory(user__username="boss", ladder=ladder)
    mid = PersonFactory(user__username="mid", ladder=ladder, manager=boss)
    leaf = PersonFactory(user__username="leaf", ladder=ladder, manager=mid)
    other = PersonFactory(user__username="other", ladder=ladder)

    api.force_authenticate(boss.user)
    seen_by_boss = {p["username"] for p in api.get("/api/v1/people/").json()["results"]}
    api.force_authenticate(leaf.user)
    seen_by_leaf = {p["username"] for p in api.get("/api/v1/people/").json()["results"]}

    assert seen_by_boss == {"boss", "mid", "leaf"}
    assert seen_by_leaf == {"leaf"}
    assert api.get(f"/api/v1/people/{other.pk}/").status_code == 404
    assert api.get(f"/api/v1/people/{boss.pk}/").status_code == 404


def test_admin_sees_everyone(admin_api, ladder):
    PersonFactory.create_batch(3, ladder=ladder)

    assert admin_api.get("/api/v1/people/").json()["count"] == 3


def test_drf_create_token_command_mints_a_working_token(api, engineer, capsys):
    call_command("drf_create_token", "erin")
    out = capsys.readouterr().out
    key = re.search(r"Generated token (\S+) for user erin", out).group(1)

    token = ApiToken.objects.get(user=engineer.user)
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in str(ApiToken.objects.values_list().get())  # only the hash is stored
    response = api.get("/api/v1/people/me/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.json()["username"] == "erin"


def test_org_chart_cycle_does_not_hang_the_report_walk(api, ladder):
    a = PersonFactory(user__username="a", ladder=ladder)
    b = PersonFactory(user__username="b", ladder=ladder, manager=a)
    a.manager = b  # a cycle only bad data can make; the walk must still end
    a.save()

    api.force_authenticate(a.user)
    assert {p["username"] for p in api.get("/api/v1/people/").json()["results"]} == {"a", "b"}
