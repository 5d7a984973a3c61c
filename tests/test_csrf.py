"""CSRF on every state-changing page: a POST without the token is refused (403) and changes
nothing; the same POST with the page's token gets through (not 403)."""

import pytest
from django.test import Client

from apps.evidence.models import Evidence
from apps.evidence.services import evidence_create
from tests.factories import PASSWORD, AdminUserFactory, PersonFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(ladder):
    manager = PersonFactory(user__username="boss", ladder=ladder, level=4)
    erin = PersonFactory(user__username="erin", ladder=ladder, level=2, manager=manager)
    item = evidence_create(person=erin, actor=erin.user, title="Mine")
    AdminUserFactory(username="root")
    return {"erin": erin, "item": item}


POSTS = [
    # (user, path template, form data)
    ("erin", "/evidence/new/", {"title": "X", "occurred_on": "2026-01-01",
                                "visibility": "manager"}),
    ("erin", "/evidence/{item}/edit/", {"title": "Y", "occurred_on": "2026-01-01",
                                        "visibility": "manager"}),
    ("erin", "/evidence/{item}/delete/", {}),
    ("erin", "/evidence/{item}/restore/", {}),
    ("erin", "/evidence/{item}/accept/", {}),
    ("erin", "/evidence/{item}/dismiss/", {}),
    ("erin", "/evidence/inbox/bulk/", {"ids": ["{item}"], "action": "dismiss"}),
    ("erin", "/packets/new/", {}),
    ("root", "/people/import/", {}),
    ("root", "/packets/cycles/new/", {}),
    ("erin", "/logout/", {}),
]  # fmt: skip


def _fill(value, item_id):
    if isinstance(value, list):
        return [_fill(v, item_id) for v in value]
    return value.replace("{item}", str(item_id)) if isinstance(value, str) else value


@pytest.mark.parametrize(("user", "path", "data"), POSTS, ids=[p[1] for p in POSTS])
def test_post_without_token_is_refused(world, user, path, data):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user, password=PASSWORD)
    before = list(Evidence.objects.values_list("id", "title", "status", "deleted_at"))

    response = client.post(_fill(path, world["item"].pk), _fill(data, world["item"].pk))

    assert response.status_code == 403
    assert list(Evidence.objects.values_list("id", "title", "status", "deleted_at")) == before


@pytest.mark.parametrize(("user", "path", "data"), POSTS, ids=[p[1] for p in POSTS])
def test_post_with_the_pages_token_gets_through(world, user, path, data):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user, password=PASSWORD)
    client.get("/evidence/" if user == "erin" else "/ladders/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value

    response = client.post(
        _fill(path, world["item"].pk),
        {**_fill(data, world["item"].pk), "csrfmiddlewaretoken": token},
    )

    assert response.status_code != 403
