"""A restore refuses, with a clear error and exit code, an archive it cannot trust or that
was not confirmed, and then the current database and files are exactly as they were."""

import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.backup.services import backup_create
from apps.evidence.services import attachment_add
from apps.people.models import Person
from tests.factories import EvidenceFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def archive(org, media, tmp_path):
    """A good backup of erin's world; afterwards the live data moves on (Zoe arrives, a new
    file), so a restore that went ahead would show."""
    item = EvidenceFactory(person=org.engineer)
    attachment_add(
        evidence=item, actor=org.engineer.user, upload=SimpleUploadedFile("a.txt", b"before\n")
    )
    path = tmp_path / "good.tar.gz"
    backup_create(path=path)
    Person.objects.create(name="Zoe", email="zoe@example.com")
    (media / "later.txt").write_text("after the backup")
    return path


def state(media) -> tuple:
    files = sorted((p.relative_to(media).as_posix(), p.read_bytes()) for p in media.rglob("*")
                   if p.is_file())  # fmt: skip
    return sorted(Person.objects.values_list("name", flat=True)), files


def rewrite(source, target, *, manifest=None, member=None):
    """Copy the archive, changing its manifest or the bytes of one member."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for info in old.getmembers():
            data = old.extractfile(info).read() if info.isfile() else None
            if info.name == "manifest.json" and manifest is not None:
                data = json.dumps(manifest(json.loads(data))).encode()
            elif member is not None and info.name == member[0]:
                data = member[1](data)
            info.size = len(data) if data is not None else 0
            new.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def refused(path, *args) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command("restore", str(path), *args)
    return caught.value


def test_without_noinput_and_no_answer_it_refuses(archive, media, monkeypatch):
    before = state(media)

    def no_terminal(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", no_terminal)
    error = refused(archive)
    assert error.returncode == 1
    assert "nothing was changed" in str(error)
    assert state(media) == before


def test_an_answer_other_than_yes_refuses(archive, media, monkeypatch):
    before = state(media)
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert refused(archive).returncode == 1
    assert state(media) == before


def test_yes_restores(archive, media, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    call_command("restore", str(archive))
    names, files = state(media)
    assert "Zoe" not in names
    assert [body for _, body in files] == [b"before\n"]
    assert "later.txt" not in [name for name, _ in files]


def test_an_archive_of_the_other_engine_is_refused(archive, media, tmp_path):
    before = state(media)
    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    wrong = rewrite(archive, tmp_path / "wrong.tar.gz", manifest=lambda m: m | {"engine": other})
    error = refused(wrong, "--noinput")
    assert error.returncode == 2
    assert f"is a {other} backup; the configured database is {connection.vendor}" in str(error)
    assert state(media) == before


def test_a_truncated_archive_is_refused(archive, media, tmp_path):
    before = state(media)
    broken = tmp_path / "broken.tar.gz"
    data = archive.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    error = refused(broken, "--noinput")
    assert error.returncode == 2
    assert "not a readable backup archive" in str(error)
    assert state(media) == before


def test_a_damaged_database_copy_is_refused(archive, media, tmp_path):
    before = state(media)
    member = "database.sqlite3" if connection.vendor == "sqlite" else "database.dump"

    def flip(data: bytes) -> bytes:
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]

    damaged = rewrite(archive, tmp_path / "damaged.tar.gz", member=(member, flip))
    error = refused(damaged, "--noinput")
    assert error.returncode == 2
    assert f"{member} is damaged (sha256 mismatch)" in str(error)
    assert state(media) == before


def test_a_tar_that_is_no_backup_is_refused(media, tmp_path, org):
    before = state(media)
    other = tmp_path / "other.tar.gz"
    with tarfile.open(other, "w:gz") as tar:
        info = tarfile.TarInfo("manifest.json")
        body = b'{"hello": "world"}'
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    error = refused(other, "--noinput")
    assert error.returncode == 2 and "not a ladder_tracker backup" in str(error)
    assert "no such file" in str(refused(tmp_path / "missing.tar.gz", "--noinput"))
    assert state(media) == before


def test_a_newer_archive_format_is_refused(archive, media, tmp_path):
    future = rewrite(archive, tmp_path / "future.tar.gz", manifest=lambda m: m | {"format": 2})
    error = refused(future, "--noinput")
    assert error.returncode == 2 and "archive format 2" in str(error)


def test_a_database_copy_that_is_no_database_is_refused(archive, media, tmp_path):
    """Its sha256 agrees with the manifest (written that way), but the engine cannot read
    it: pg_restore --list or SQLite's integrity check says no before anything is replaced."""
    import hashlib

    before = state(media)
    member = "database.sqlite3" if connection.vendor == "sqlite" else "database.dump"
    junk = b"this is not a database\n" * 100
    fake = rewrite(
        archive,
        tmp_path / "fake.tar.gz",
        member=(member, lambda data: junk),
        manifest=lambda m: m | {"files": m["files"] | {member: hashlib.sha256(junk).hexdigest()}},
    )
    error = refused(fake, "--noinput")
    assert error.returncode == 2
    assert "unreadable" in str(error) or "damaged or not ours" in str(error)
    assert state(media) == before
