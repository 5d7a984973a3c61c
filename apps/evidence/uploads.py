"""Attachment checks: size limit and a type allow-list decided by the content, not the name."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import filetype
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat

from ladder_tracker.errors import InvalidError

# Detected type → extension we accept it under. Office formats are zip containers and are
# not accepted: a zip is too easy to disguise. Text is checked separately (no magic bytes).
ALLOWED_BINARY = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
}
TEXT_EXTENSIONS = {"txt", "md", "csv", "log", "json", "yaml", "yml"}
SNIFF_BYTES = 8192


class UploadRejected(InvalidError):
    """A file the attachment checks refuse: 400 naming the `file`, or 413 when too large."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message, {"file": [message]})
        self.too_large = too_large
        if too_large:
            self.status_code = 413
            self.code = "too_large"

    def api_detail(self):
        return {"detail": self.message} if self.too_large else self.detail


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    size: int
    content_type: str
    sha256: str


def max_upload_bytes() -> int:
    return settings.EVIDENCE_MAX_UPLOAD_BYTES


def human_size(size: int) -> str:
    """A size for people, in Django's binary units: 20971520 → "20 MB", 1536 → "1.5 KB"."""
    return filesizeformat(size).replace("\xa0", " ").replace(".0 ", " ")


def too_large_message(what: str, size: int) -> str:
    """ "big.pdf is 25 MB; the limit is 20 MB." — without the size when it reads the same as
    the limit (1 MB and a few bytes over)."""
    size_text, limit_text = human_size(size), human_size(max_upload_bytes())
    if size_text == limit_text:
        return f"{what} is over the limit of {limit_text}."
    return f"{what} is {size_text}; the limit is {limit_text}."


def upload_limit_text() -> str:
    """The limit as forms and errors state it, before and after an upload."""
    return f"up to {human_size(max_upload_bytes())} each"


def upload_check(upload: UploadedFile) -> CheckedUpload:
    limit = max_upload_bytes()
    if upload.size > limit:
        raise UploadRejected(too_large_message(upload.name, upload.size), too_large=True)
    if upload.size == 0:
        raise UploadRejected(f"{upload.name} is empty.")
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    kind = filetype.guess(head)
    name = (upload.name or "file").replace("/", "_").replace("\\", "_")[:255]
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if kind is not None:
        if kind.mime not in ALLOWED_BINARY:
            raise UploadRejected(f"{name}: {kind.mime} files are not accepted.")
        content_type = kind.mime
        if ext and ext not in (ALLOWED_BINARY[kind.mime], "jpeg"):
            raise UploadRejected(
                f"{name}: the content is {kind.mime} but the name says .{ext}; rename it."
            )
    else:
        if ext not in TEXT_EXTENSIONS or not _is_text(upload):
            raise UploadRejected(
                f"{name}: not an accepted type (PDF, PNG, JPEG, GIF, WebP, or UTF-8 text "
                f"as {', '.join(sorted(TEXT_EXTENSIONS))})."
            )
        content_type = "text/plain"
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return CheckedUpload(
        name=name, size=upload.size, content_type=content_type, sha256=digest.hexdigest()
    )


def _is_text(upload: UploadedFile) -> bool:
    upload.seek(0)
    decoder_tail = b""
    for chunk in upload.chunks():
        data = decoder_tail + chunk
        if b"\x00" in data:
            return False
        try:
            data.decode("utf-8")
            decoder_tail = b""
        except UnicodeDecodeError as exc:
            if exc.start < len(data) - 3:  # not just a character split across chunks
                return False
            decoder_tail = data[exc.start :]
    return not decoder_tail
