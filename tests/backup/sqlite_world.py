"""Run as a separate process against a file-based SQLite database (tests/backup/test_cli.py):
`build` makes a small world (packets with snapshots, attachments) and prints what it made;
`verify` prints what the database and the download view hold now. JSON on stdout."""

import hashlib
import json
import sys

import django


def build() -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.evidence.services import attachment_add
    from apps.ladders.services import ladder_load_file
    from tests.conftest import LADDER_FILE
    from tests.factories import EvidenceFactory, PacketFactory, org_build

    ladder = ladder_load_file(path=LADDER_FILE, publish=True).version.ladder
    org = org_build(ladder=ladder)
    for person, state in [(org.engineer, "submitted"), (org.peer, "endorsed")]:
        evidence = [EvidenceFactory(person=person, title=f"{person.name} {i}") for i in (1, 2)]
        for i, item in enumerate(evidence):
            attachment_add(
                evidence=item,
                actor=person.user,
                upload=SimpleUploadedFile(f"n{i}.txt", f"{person.name} {i}\n".encode()),
            )
        PacketFactory(person=person, state=state, evidence=evidence, reviewer=person.manager)
    return verify()


def verify() -> dict:
    from django.test import Client

    from apps.evidence.models import Attachment
    from apps.packets.models import PacketSnapshot
    from ladder_tracker.canonical import canonical_sha256 as _sha256

    snapshots = {
        str(s.pk): {"stored": s.sha256, "recomputed": _sha256(s.data)}
        for s in PacketSnapshot.objects.order_by("pk")
    }
    served = {}
    for attachment in Attachment.objects.select_related("evidence__person__user"):
        client = Client()
        client.force_login(attachment.evidence.person.user)
        response = client.get(f"/evidence/{attachment.evidence_id}/attachments/{attachment.pk}/")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        served[str(attachment.pk)] = {
            "status": response.status_code,
            "sha256": hashlib.sha256(body).hexdigest(),
            "stored": attachment.sha256,
        }
    return {"snapshots": snapshots, "attachments": served}


if __name__ == "__main__":
    django.setup()
    print(json.dumps({"build": build, "verify": verify}[sys.argv[1]]()))
