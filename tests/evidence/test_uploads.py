"""Evidence attachments: size limits, types decided by content, storage and downloads."""

import io
import os
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.evidence import services
from apps.evidence.models import Attachment, EvidenceEvent
from tests.factories import EvidenceFactory

pytestmark = pytest.mark.django_db

LIMIT = 1000
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
    b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01" + b"\x00" * 40
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 60
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 60
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>\n"


def _docx_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EVIDENCE_MAX_UPLOAD_BYTES = LIMIT
    return Path(settings.MEDIA_ROOT)


@pytest.fixture
def items(org, media):
    """Two evidence items of the org's engineer: one shared with managers, one private."""
    return {
        "shared": EvidenceFactory(person=org.engineer, title="shared"),
        "private": EvidenceFactory(person=org.engineer, title="private", visibility="private"),
    }


def _client(api, person):
    if person is not None:
        api.force_authenticate(person.user)
    return api


def _upload(api, evidence, name, content, **extra):
    return api.post(
        reverse("evidence-attachments", args=[evidence.pk]),
        {"file": SimpleUploadedFile(name, content, content_type="application/octet-stream")},
        format="multipart",
        **extra,
    )


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# --- size ------------------------------------------------------------------------------


def test_over_the_limit_is_a_413_json_and_stores_nothing(api, org, items, media):
    response = _upload(_client(api, org.engineer), items["shared"], "big.txt", b"a" * (LIMIT + 1))

    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert str(LIMIT) in error["message"]
    assert not Attachment.objects.exists()
    assert _stored_files(media) == []


def test_declared_content_length_is_refused_before_the_body_is_read(api, org, items, media):
    """A client that announces a huge body is stopped on the header alone."""
    response = _upload(
        _client(api, org.engineer), items["shared"], "small.txt", b"tiny",
        CONTENT_LENGTH=str(LIMIT + 10 * 1024 * 1024),
    )  # fmt: skip

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Attachment.objects.exists()
    assert _stored_files(media) == []


def test_a_really_big_body_is_refused_by_the_pre_check(api, org, items, media):
    big = b"a" * (LIMIT + 128 * 1024)  # past the limit plus the multipart allowance

    response = _upload(_client(api, org.engineer), items["shared"], "big.txt", big)

    assert response.status_code == 413
    assert "the limit is" in response.json()["error"]["message"]
    assert not Attachment.objects.exists()


def test_exactly_at_the_limit_is_accepted(api, org, items):
    response = _upload(_client(api, org.engineer), items["shared"], "edge.txt", b"a" * LIMIT)

    assert response.status_code == 201, response.json()
    assert response.json()["size"] == LIMIT


def test_an_empty_file_is_a_400(api, org, items, media):
    response = _upload(_client(api, org.engineer), items["shared"], "empty.txt", b"")

    assert response.status_code == 400
    assert "file" in response.json()["error"]["detail"]
    assert not Attachment.objects.exists()
    assert _stored_files(media) == []


def test_no_file_at_all_is_a_400(api, org, items):
    response = _client(api, org.engineer).post(
        reverse("evidence-attachments", args=[items["shared"].pk]), {}, format="multipart"
    )

    assert response.status_code == 400
    assert "file" in response.json()["error"]["detail"]


# --- type: decided by the content, not the name -----------------------------------------

REFUSED = [
    pytest.param("scan.pdf", PNG, id="png-named-pdf"),
    pytest.param("photo.png", ELF, id="elf-named-png"),
    pytest.param("setup.pdf", WINDOWS_EXE, id="exe-named-pdf"),
    pytest.param("report.docx", _docx_zip(), id="zip-named-docx"),
    pytest.param("archive.zip", _docx_zip(), id="zip-named-zip"),
    pytest.param("notes.txt", PDF, id="pdf-named-txt"),
    pytest.param("page.html", HTML, id="html-named-html"),
    pytest.param(
        "image.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', id="svg"
    ),  # fmt: skip
    pytest.param("run.sh", b"#!/bin/sh\nrm -rf /\n", id="shell-script"),
    pytest.param("README", b"plain words\n", id="text-without-extension"),
    pytest.param("latin1.txt", "café crème".encode("latin-1"), id="not-utf8"),
    pytest.param("nul.txt", b"looks like text\x00but is not\n", id="nul-byte"),
    pytest.param("nul.csv", b"a,b\n\x00\x00\x00\x00", id="nul-byte-csv"),
    pytest.param("cut.md", "emoji 🙂".encode()[:-1], id="truncated-utf8"),
]


@pytest.mark.parametrize(("name", "content"), REFUSED)
def test_disguised_or_unaccepted_files_are_refused(api, org, items, media, name, content):
    response = _upload(_client(api, org.engineer), items["shared"], name, content)

    assert response.status_code == 400, response.json()
    assert response.json()["error"]["detail"]["file"]
    assert not Attachment.objects.exists()
    assert _stored_files(media) == []


ACCEPTED = [
    pytest.param("report.pdf", PDF, "application/pdf", id="pdf"),
    pytest.param("chart.png", PNG, "image/png", id="png"),
    pytest.param("photo.jpeg", JPEG, "image/jpeg", id="jpeg-as-jpeg"),
    pytest.param("photo.jpg", JPEG, "image/jpeg", id="jpeg-as-jpg"),
    pytest.param(
        "NOTES.MD", "# Résumé\n\n- naïve café — ✓ 🙂\n".encode(), "text/plain", id="utf8-markdown"
    ),  # fmt: skip
    pytest.param("data.csv", b"a,b\n1,2\n", "text/plain", id="csv"),
    # HTML in a .txt is just text: stored and served as text/plain, as an attachment, with
    # nosniff and a sandbox CSP, so a browser never renders it
    pytest.param("page.txt", HTML, "text/plain", id="html-named-txt-is-text"),
]


@pytest.mark.parametrize(("name", "content", "content_type"), ACCEPTED)
def test_accepted_types(api, org, items, name, content, content_type):
    client = _client(api, org.engineer)

    response = _upload(client, items["shared"], name, content)

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == name
    assert body["size"] == len(content)
    assert body["content_type"] == content_type
    download = client.get(body["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == content
    assert download["Content-Type"].startswith(content_type)
    assert download["Content-Disposition"].startswith("attachment")
    assert download["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in download["Content-Security-Policy"]


def test_utf8_split_across_upload_chunks_is_still_text(api, org, items, settings):
    """A multibyte character cut by a chunk boundary is not mistaken for bad bytes."""
    settings.EVIDENCE_MAX_UPLOAD_BYTES = 1024 * 1024
    content = b"a" + "é".encode() * 100_000  # 64 KiB chunks land mid-character

    response = _upload(_client(api, org.engineer), items["shared"], "long.txt", content)

    assert response.status_code == 201, response.json()
    assert response.json()["size"] == len(content)


# --- storage -----------------------------------------------------------------------------


def test_stored_under_media_root_with_a_random_name(api, org, items, media):
    response = _upload(
        _client(api, org.engineer), items["shared"], "../../templates/base.html.txt", b"hello\n"
    )

    assert response.status_code == 201, response.json()
    attachment = Attachment.objects.get(pk=response.json()["id"])
    path = Path(attachment.file.path).resolve()
    assert path.is_file()
    assert path.read_bytes() == b"hello\n"
    assert path.is_relative_to(media.resolve())
    assert path.is_relative_to(media.resolve() / "evidence" / str(org.engineer.pk))
    assert "base.html" not in path.name and ".." not in attachment.file.name
    assert path.name != attachment.name
    assert "/" not in attachment.name  # the display name cannot point anywhere either
    assert attachment.sha256 and len(attachment.sha256) == 64
    # nothing serves MEDIA_URL directly: the file is only reachable through the checked view
    direct = api.get("/" + django_settings.MEDIA_URL.strip("/") + "/" + attachment.file.name)
    assert direct.status_code == 404


def test_media_root_is_outside_static_and_templates():
    media = Path(django_settings.MEDIA_ROOT).resolve()
    static = Path(django_settings.STATIC_ROOT).resolve()
    public = [static, *(Path(p).resolve() for p in django_settings.STATICFILES_DIRS)]
    templates = [Path(d).resolve() for t in django_settings.TEMPLATES for d in t.get("DIRS", [])]
    for root in public + templates:
        assert not media.is_relative_to(root), root
        assert not root.is_relative_to(media), root


# --- downloads: who may ------------------------------------------------------------------


@pytest.fixture
def shared_attachment(org, items):
    return services.attachment_add(
        evidence=items["shared"], actor=org.engineer.user,
        upload=SimpleUploadedFile("shared.txt", b"shared notes\n"),
    )  # fmt: skip


@pytest.fixture
def private_attachment(org, items):
    return services.attachment_add(
        evidence=items["private"], actor=org.engineer.user,
        upload=SimpleUploadedFile("private.txt", b"my notes\n"),
    )  # fmt: skip


def _url(attachment):
    return reverse(
        "evidence-attachment-detail",
        kwargs={"pk": attachment.evidence_id, "attachment_id": attachment.pk},
    )


def test_owner_downloads_the_exact_bytes(api, org, shared_attachment):
    response = _client(api, org.engineer).get(_url(shared_attachment))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"shared notes\n"
    assert response["Content-Disposition"] == 'attachment; filename="shared.txt"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"].startswith("text/plain")


def test_manager_downloads_a_reports_shared_attachment(api, org, shared_attachment):
    response = _client(api, org.manager).get(_url(shared_attachment))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"shared notes\n"


def test_manager_cannot_download_a_private_items_attachment(api, org, private_attachment):
    assert _client(api, org.manager).get(_url(private_attachment)).status_code == 404


def test_peer_gets_404_and_anonymous_401(api, org, shared_attachment, private_attachment):
    assert api.get(_url(shared_attachment)).status_code == 401
    assert api.get(_url(private_attachment)).status_code == 401
    peer = _client(api, org.peer)
    assert peer.get(_url(shared_attachment)).status_code == 404
    assert peer.get(_url(private_attachment)).status_code == 404


def test_attachment_id_must_belong_to_the_evidence_in_the_path(api, org, items, private_attachment):
    """A manager cannot reach a private file by pairing its id with a shared item."""
    url = reverse(
        "evidence-attachment-detail",
        kwargs={"pk": items["shared"].pk, "attachment_id": private_attachment.pk},
    )

    assert _client(api, org.manager).get(url).status_code == 404
    assert _client(api, org.engineer).get(url).status_code == 404


def test_deleted_evidence_hides_its_attachments(api, org, items, shared_attachment):
    services.evidence_delete(evidence=items["shared"], actor=org.engineer.user)

    assert _client(api, org.manager).get(_url(shared_attachment)).status_code == 404
    assert _client(api, org.engineer).get(_url(shared_attachment)).status_code == 404


def test_a_file_missing_from_storage_is_a_404_not_a_500(api, org, shared_attachment):
    os.remove(shared_attachment.file.path)

    response = _client(api, org.engineer).get(_url(shared_attachment))

    assert response.status_code == 404
    assert response.json()["error"]


def test_content_disposition_survives_an_odd_file_name(api, org, items):
    client = _client(api, org.engineer)
    name = 'résumé "final"; x=1.txt'

    created = _upload(client, items["shared"], name, b"text\n")
    download = client.get(created.json()["url"])

    assert created.status_code == 201
    disposition = download["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "\n" not in disposition and "\r" not in disposition
    assert "filename*=utf-8''" in disposition


# --- delete --------------------------------------------------------------------------------


def test_deleting_an_attachment_removes_the_file_after_commit(
    api, org, items, shared_attachment, django_capture_on_commit_callbacks
):
    path = Path(shared_attachment.file.path)
    assert path.is_file()
    client = _client(api, org.engineer)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.delete(_url(shared_attachment))
        assert response.status_code == 204
        assert path.is_file(), "the file goes only once the row is gone for good"

    assert len(callbacks) == 1
    assert not path.exists()
    assert not Attachment.objects.filter(pk=shared_attachment.pk).exists()
    assert client.get(_url(shared_attachment)).status_code == 404
    detached = EvidenceEvent.objects.filter(evidence=items["shared"], action="detached").get()
    assert detached.actor == org.engineer.user
    assert detached.changes == {"attachment": ["shared.txt", None]}


def test_a_refused_delete_keeps_the_file(
    api, org, shared_attachment, django_capture_on_commit_callbacks
):
    path = Path(shared_attachment.file.path)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        manager = _client(api, org.manager).delete(_url(shared_attachment))
        peer = _client(api, org.peer).delete(_url(shared_attachment))

    assert (manager.status_code, peer.status_code) == (403, 404)
    assert callbacks == []
    assert path.is_file()
    assert Attachment.objects.filter(pk=shared_attachment.pk).exists()


def test_upload_records_history_and_shows_on_the_item(api, org, items):
    client = _client(api, org.engineer)

    created = _upload(client, items["shared"], "notes.md", b"# notes\n").json()
    item = client.get(reverse("evidence-detail", args=[items["shared"].pk])).json()

    assert [a["id"] for a in item["attachments"]] == [created["id"]]
    assert set(item["attachments"][0]) >= {"id", "name", "size", "url"}
    attached = EvidenceEvent.objects.get(evidence=items["shared"], action="attached")
    assert attached.actor == org.engineer.user


@pytest.mark.parametrize("declared", ["abc", "-1", "1e9"])
def test_a_malformed_content_length_is_a_400_not_a_500(api, org, items, declared):
    response = _upload(
        _client(api, org.engineer), items["shared"], "a.txt", b"hi\n", CONTENT_LENGTH=declared
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert not Attachment.objects.exists()
