"""A published version never changes: services, the API (see test_api) and the admin refuse."""

import pytest

from apps.ladders.models import Expectation
from apps.ladders.services import (
    LadderVersionImmutable,
    expectation_update,
    ladder_load,
    ladder_version_publish,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_service_refuses_to_edit_a_published_expectation(ladder_version):
    expectation = ladder_version.expectations.get(code="TE-1.1")

    with pytest.raises(LadderVersionImmutable, match="version 1 is published"):
        expectation_update(expectation=expectation, text="changed")

    assert Expectation.objects.get(pk=expectation.pk).text == "Understands basic ML/DL principles"


def test_publishing_twice_is_refused(ladder_version):
    with pytest.raises(LadderVersionImmutable):
        ladder_version_publish(version=ladder_version)


def test_draft_can_be_edited_then_published_then_not(ladder_text):
    version = ladder_load(text=ladder_text).version
    expectation = version.expectations.get(code="TE-1.1")

    expectation_update(expectation=expectation, text="Knows ML basics")
    ladder_version_publish(version=version)

    with pytest.raises(LadderVersionImmutable):
        expectation_update(expectation=expectation, text="again")
    assert Expectation.objects.get(pk=expectation.pk).text == "Knows ML basics"


def test_admin_shows_published_version_read_only(client, admin_user, ladder_version):
    client.login(username=admin_user.username, password=PASSWORD)
    expectation = ladder_version.expectations.get(code="TE-1.1")
    url = f"/admin/ladders/expectation/{expectation.pk}/change/"

    page = client.get(url)
    post = client.post(url, {"text": "hacked", "code": "TE-1.1"})
    delete = client.post(f"/admin/ladders/expectation/{expectation.pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert b'name="text"' not in page.content  # rendered as read-only text, not a field
    assert post.status_code == 403
    assert delete.status_code == 403
    assert Expectation.objects.get(pk=expectation.pk).text == "Understands basic ML/DL principles"
