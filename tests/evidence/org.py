"""Shared builders for the evidence API tests: a small org chart and uploads.

skip_level (sam)
  └─ manager_of (maya)
       ├─ self (owen)      ← the owner of the records under test
       └─ peer (pia)
manager_not_of (nora)
  └─ otto
committee (cora, is_committee, reports to nobody)
admin (ada, is_staff, a person too)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from apps.evidence import services
from apps.evidence.models import Evidence
from apps.people.models import Person
from tests.factories import AdminUserFactory, PersonFactory

ROLES = (
    "anonymous", "self", "peer", "manager_of", "manager_not_of", "skip_level", "committee",
    "admin",
)  # fmt: skip


@dataclass
class Org:
    people: dict[str, Person]
    # named evidence items, e.g. "owner_manager", "owner_private", "peer_manager", ...
    evidence: dict[str, Evidence] = field(default_factory=dict)
    attachments: dict[str, object] = field(default_factory=dict)

    def client(self, role: str) -> APIClient:
        client = APIClient()
        if role != "anonymous":
            client.force_authenticate(self.people[role].user)
        return client

    @property
    def owner(self) -> Person:
        return self.people["self"]


def upload(name: str = "notes.txt", content: bytes = b"hello, evidence\n") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def build_org(ladder=None) -> Org:
    def person(username, **kw):
        return PersonFactory(user__username=username, name=username.title(), ladder=ladder, **kw)

    sam = person("sam")
    maya = person("maya", manager=sam)
    owen = person("owen", manager=maya)
    pia = person("pia", manager=maya)
    nora = person("nora")
    otto = person("otto", manager=nora)
    cora = person("cora", is_committee=True)
    ada = PersonFactory(user=AdminUserFactory(username="ada"), name="Ada", ladder=ladder)
    org = Org(people={
        "self": owen, "peer": pia, "manager_of": maya, "manager_not_of": nora,
        "skip_level": sam, "committee": cora, "admin": ada, "otto": otto,
    })  # fmt: skip

    def ev(key, owner, visibility=Evidence.Visibility.MANAGER, **kw):
        item = services.evidence_create(
            person=owner, actor=owner.user, title=key, visibility=visibility, **kw
        )
        org.evidence[key] = item
        return item

    manager_item = ev("owner_manager", owen)
    Evidence.objects.filter(pk=manager_item.pk).update(
        status=Evidence.Status.CANDIDATE
    )  # something to accept or dismiss
    private_item = ev("owner_private", owen, Evidence.Visibility.PRIVATE)
    deleted = ev("owner_deleted", owen)
    services.evidence_delete(evidence=deleted, actor=owen.user)
    ev("peer_manager", pia)
    ev("peer_private", pia, Evidence.Visibility.PRIVATE)
    ev("manager_own", maya)
    ev("skip_own", sam)
    ev("nora_own", nora)
    ev("otto_manager", otto)
    ev("committee_own", cora)
    ev("admin_own", ada)
    for key in org.evidence:
        org.evidence[key].refresh_from_db()
    org.attachments["manager"] = services.attachment_add(
        evidence=manager_item, actor=owen.user, upload=upload("manager.txt", b"for managers\n")
    )
    org.attachments["private"] = services.attachment_add(
        evidence=private_item, actor=owen.user, upload=upload("private.txt", b"just me\n")
    )
    return org
