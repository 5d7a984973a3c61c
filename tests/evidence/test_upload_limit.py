"""The attachment size limit is told in units people read (MB), before an upload on the
form and after one in the error, on the page and in the API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.evidence.models import Evidence
from apps.evidence.uploads import human_size
from tests.factories import EvidenceFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (10 * 1024 * 1024, "10 MB"),
        (20 * 1024 * 1024, "20 MB"),
        (1536, "1.5 KB"),
        (int(2.5 * 1024 * 1024), "2.5 MB"),
        (1000, "1000 bytes"),
    ],
    ids=["10MB", "20MB", "1.5KB", "2.5MB", "bytes"],
)
def test_human_size(size, text):
    assert human_size(size) == text


@pytest.fixture
def limit_10mb(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 10 * 1024 * 1024


@pytest.fixture
def as_erin(org):
    client = Client()
    client.force_login(org.engineer.user)
    return client


def test_the_form_states_the_limit_before_any_upload(as_erin, limit_10mb):
    html = as_erin.get("/evidence/new/").content.decode()

    assert "PDF, PNG, JPEG, GIF, WebP or text files, up to 10 MB each." in html
    assert "10485760" not in html


def test_a_file_over_the_limit_is_refused_in_mb_on_the_page(as_erin, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1024 * 1024
    big = SimpleUploadedFile("big.txt", b"a" * (1024 * 1024 + 512 * 1024))

    response = as_erin.post(
        "/evidence/new/", {"title": "Too big", "visibility": "manager", "files": [big]}
    )

    assert response.status_code == 400
    assert "big.txt is 1.5 MB; the limit is 1 MB." in response.content.decode()
    assert not Evidence.objects.exists()


def test_the_api_refuses_in_mb_too(org, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1024 * 1024
    item = EvidenceFactory(person=org.engineer, title="Work")
    big = SimpleUploadedFile("big.txt", b"a" * (1024 * 1024 + 1024))

    response = org.client("engineer").post(
        f"/api/v1/evidence/{item.pk}/attachments/", {"file": big}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["error"]["message"] == "big.txt is over the limit of 1 MB."
