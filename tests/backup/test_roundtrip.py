"""Backup you can prove: packets with attachments survive `manage.py backup`, the loss of the
database and the files, and `manage.py restore --noinput`: every snapshot hash matches and
every attachment is served again. Runs on the suite's engine: the embedded SQLite in the
first CI pass, PostgreSQL (pg_dump / pg_restore) in the second."""

import hashlib
import io
import shutil

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client

from apps.backup.services import backup_inspect
from apps.evidence.models import Attachment
from apps.evidence.services import attachment_add
from apps.packets.models import PacketSnapshot
from apps.people.models import Person
from ladder_tracker.canonical import canonical_sha256 as packet_snapshot_sha256  # the app's hash
from tests.factories import EvidenceFactory, PacketFactory, canonical_sha256

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def database_drop() -> None:
    """Lose the database: every table gone, as on a new server."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
    else:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_keys = OFF")
            for table in connection.introspection.table_names(cursor):
                cursor.execute(f'DROP TABLE "{table}"')
            cursor.execute("PRAGMA foreign_keys = ON")
    assert connection.introspection.table_names() == []


@pytest.fixture
def world(org, ladder_version, media):
    """Packets in several states (each submitted one with its snapshot) and attachments on
    the evidence they hold."""
    packets, files = [], {}
    for person, state in [
        (org.engineer, "submitted"),
        (org.peer, "endorsed"),
        (org.other_engineer, "changes_requested"),
    ]:
        evidence = [EvidenceFactory(person=person, title=f"{person.name} work {i}") for i in (1, 2)]
        for i, item in enumerate(evidence):
            body = f"{person.name} notes {i}\n".encode() if i == 0 else PDF
            name = "notes.txt" if i == 0 else "design.pdf"
            attachment = attachment_add(
                evidence=item, actor=person.user, upload=SimpleUploadedFile(name, body)
            )
            files[attachment.pk] = (person, item.pk, body)
        reviewer = person.manager
        packets.append(
            PacketFactory(person=person, state=state, evidence=evidence, reviewer=reviewer)
        )
    return packets, files


def snapshot_hashes() -> dict[int, str]:
    return dict(PacketSnapshot.objects.values_list("pk", "sha256"))


def test_backup_drop_restore_verify(world, tmp_path, media, org):
    packets, files = world
    hashes = snapshot_hashes()
    assert len(hashes) == 3 and len(files) == 6
    people = Person.objects.count()
    history = Person.history.count()

    archive = tmp_path / "backup.tar.gz"
    call_command("backup", str(archive))
    manifest = backup_inspect(path=archive)
    assert manifest["engine"] == connection.vendor
    assert manifest["format"] == 1
    assert manifest["counts"]["packets.packetsnapshot"] == 3
    assert manifest["counts"]["evidence.attachment"] == 6
    assert manifest["counts"]["media_files"] == 6

    database_drop()
    shutil.rmtree(media)
    assert not media.exists()

    call_command("restore", str(archive), "--noinput")

    # every snapshot hash matches, recomputed by the packets' own code from the data
    assert snapshot_hashes() == hashes
    for snap in PacketSnapshot.objects.all():
        assert packet_snapshot_sha256(snap.data) == snap.sha256
        assert canonical_sha256(snap.data) == snap.sha256
    # and the app's own check agrees: it raises (exit 1) on any mismatch
    out = io.StringIO()
    call_command("verify_snapshots", stdout=out)
    assert "MISMATCH" not in out.getvalue()
    assert Person.objects.count() == people
    assert Person.history.count() == history  # the audit history comes back too

    # every attachment is served again, byte for byte, to the person who may see it
    assert Attachment.objects.count() == 6
    for attachment_id, (person, evidence_id, body) in files.items():
        client = Client()
        client.force_login(person.user)
        response = client.get(f"/evidence/{evidence_id}/attachments/{attachment_id}/")
        assert response.status_code == 200, (attachment_id, response.status_code)
        served = b"".join(response.streaming_content) if response.streaming else response.content
        assert served == body
        stored = Attachment.objects.get(pk=attachment_id)
        assert hashlib.sha256(served).hexdigest() == stored.sha256

    # and the packets' pages read the restored snapshots
    client = Client()
    client.force_login(org.manager.user)
    page = client.get(f"/packets/{packets[0].pk}/")
    assert page.status_code == 200
    assert hashes[PacketSnapshot.objects.get(packet=packets[0]).pk][:12] in page.content.decode()
