"""Permission matrix: every people and evidence API endpoint, for every role, exact status.

DESIGN.md "Who sees what": anonymous → 401 everywhere under /api/; a record outside your
scope → 404 (never 403, which would leak its existence); a record you can see but not change
(a manager reading a report's item, an admin) → 403 on writes; private evidence is invisible
to managers at any depth and visible to admins; people writes are admin-only.

The org is the `org` fixture (tests/factories.py `Org`): director → manager → {engineer,
peer}; other_manager → other_engineer; committee and admin outside the chain. The engineer
owns the records under test.
"""

from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.evidence.models import Attachment, Evidence, EvidenceEvent
from apps.evidence.services import attachment_add, evidence_delete
from apps.people.models import LevelChange, Person
from tests.factories import EvidenceFactory, Org

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "engineer",
    "peer",
    "manager",
    "other_manager",
    "director",
    "committee",
    "admin",
)

# fmt: off
# One row per endpoint, one column per role, in this order:
#   anonymous  engineer  peer  manager  other_manager  director  committee  admin
EXPECTED = {
    # --- people -----------------------------------------------------------------------
    "GET-people-list":                    (401, 200, 200, 200, 200, 200, 200, 200),
    "GET-people-detail":                  (401, 200, 404, 200, 404, 200, 404, 200),
    "GET-people-me":                      (401, 200, 200, 200, 200, 200, 200, 200),
    "GET-people-level-history":           (401, 200, 404, 200, 404, 200, 404, 200),
    "POST-people-create":                 (401, 403, 403, 403, 403, 403, 403, 201),
    "PATCH-people-detail":                (401, 403, 403, 403, 403, 403, 403, 200),
    "POST-people-import":                 (401, 403, 403, 403, 403, 403, 403, 200),
    # --- evidence: collection ---------------------------------------------------------
    "GET-evidence-list":                  (401, 200, 200, 200, 200, 200, 200, 200),
    "POST-evidence-create":               (401, 201, 201, 201, 201, 201, 201, 201),
    "POST-evidence-bulk":                 (401, 200, 400, 400, 400, 400, 400, 400),
    # --- evidence: an item the owner shares with managers ----------------------------
    "GET-evidence-detail-manager":        (401, 200, 404, 200, 404, 200, 404, 200),
    "PATCH-evidence-detail-manager":      (401, 200, 404, 403, 404, 403, 404, 403),
    "PUT-evidence-detail-manager":        (401, 200, 404, 403, 404, 403, 404, 403),
    "DELETE-evidence-detail-manager":     (401, 204, 404, 403, 404, 403, 404, 403),
    "POST-evidence-accept":               (401, 200, 404, 403, 404, 403, 404, 403),
    "POST-evidence-dismiss":              (401, 200, 404, 403, 404, 403, 404, 403),
    "GET-evidence-history-manager":       (401, 200, 404, 200, 404, 200, 404, 200),
    "POST-evidence-attachments":          (401, 201, 404, 403, 404, 403, 404, 403),
    "GET-evidence-attachment-manager":    (401, 200, 404, 200, 404, 200, 404, 200),
    "DELETE-evidence-attachment":         (401, 204, 404, 403, 404, 403, 404, 403),
    # --- evidence: a private item (managers never see it; admins do) -----------------
    "GET-evidence-detail-private":        (401, 200, 404, 404, 404, 404, 404, 200),
    "PATCH-evidence-detail-private":      (401, 200, 404, 404, 404, 404, 404, 403),
    "PUT-evidence-detail-private":        (401, 200, 404, 404, 404, 404, 404, 403),
    "DELETE-evidence-detail-private":     (401, 204, 404, 404, 404, 404, 404, 403),
    "GET-evidence-history-private":       (401, 200, 404, 404, 404, 404, 404, 200),
    "GET-evidence-attachment-private":    (401, 200, 404, 404, 404, 404, 404, 200),
    # --- evidence: a soft-deleted item (only its owner's trash holds it) --------------
    "POST-evidence-restore-deleted":      (401, 200, 404, 404, 404, 404, 404, 404),
}
# fmt: on


def _ev(org, key):
    return org.evidence[key].pk


def _att(org, key):
    attachment = org.attachments[key]
    return reverse(
        "evidence-attachment-detail",
        kwargs={"pk": attachment.evidence_id, "attachment_id": attachment.pk},
    )


def _csv(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv")


CALLS = {
    "GET-people-list": lambda c, o: c.get(reverse("person-list")),
    "GET-people-detail": lambda c, o: c.get(reverse("person-detail", args=[o.owner.pk])),
    "GET-people-me": lambda c, o: c.get(reverse("person-me")),
    "GET-people-level-history": lambda c, o: c.get(
        reverse("person-level-history", args=[o.owner.pk])
    ),
    "POST-people-create": lambda c, o: c.post(
        reverse("person-list"),
        {
            "username": "newbie",
            "email": "newbie@example.com",
            "name": "Newbie",
            "manager": o.owner.pk,
        },
        format="json",
    ),
    "PATCH-people-detail": lambda c, o: c.patch(
        reverse("person-detail", args=[o.owner.pk]), {"title": "Staff"}, format="json"
    ),
    "POST-people-import": lambda c, o: c.post(
        reverse("person-import-csv"),
        {"file": _csv("username,email,name\nnew1,new1@example.com,New One\n"), "dry_run": "true"},
        format="multipart",
    ),
    "GET-evidence-list": lambda c, o: c.get(reverse("evidence-list")),
    "POST-evidence-create": lambda c, o: c.post(
        reverse("evidence-list"), {"title": "A new thing"}, format="json"
    ),
    "POST-evidence-bulk": lambda c, o: c.post(
        reverse("evidence-bulk"),
        {"ids": [_ev(o, "owner_manager")], "action": "dismiss"},
        format="json",
    ),
    "GET-evidence-detail-manager": lambda c, o: c.get(
        reverse("evidence-detail", args=[_ev(o, "owner_manager")])
    ),
    "PATCH-evidence-detail-manager": lambda c, o: c.patch(
        reverse("evidence-detail", args=[_ev(o, "owner_manager")]), {"title": "x"}, format="json"
    ),
    "PUT-evidence-detail-manager": lambda c, o: c.put(
        reverse("evidence-detail", args=[_ev(o, "owner_manager")]),
        {"title": "Replaced", "description": "all of it"},
        format="json",
    ),
    "DELETE-evidence-detail-manager": lambda c, o: c.delete(
        reverse("evidence-detail", args=[_ev(o, "owner_manager")])
    ),
    "POST-evidence-accept": lambda c, o: c.post(
        reverse("evidence-accept", args=[_ev(o, "owner_manager")]), {}, format="json"
    ),
    "POST-evidence-dismiss": lambda c, o: c.post(
        reverse("evidence-dismiss", args=[_ev(o, "owner_manager")])
    ),
    "GET-evidence-history-manager": lambda c, o: c.get(
        reverse("evidence-history", args=[_ev(o, "owner_manager")])
    ),
    "POST-evidence-attachments": lambda c, o: c.post(
        reverse("evidence-attachments", args=[_ev(o, "owner_manager")]),
        {"file": SimpleUploadedFile("more.txt", b"more notes\n")},
        format="multipart",
    ),
    "GET-evidence-attachment-manager": lambda c, o: c.get(_att(o, "manager")),
    "DELETE-evidence-attachment": lambda c, o: c.delete(_att(o, "manager")),
    "GET-evidence-detail-private": lambda c, o: c.get(
        reverse("evidence-detail", args=[_ev(o, "owner_private")])
    ),
    "PATCH-evidence-detail-private": lambda c, o: c.patch(
        reverse("evidence-detail", args=[_ev(o, "owner_private")]), {"title": "x"}, format="json"
    ),
    "PUT-evidence-detail-private": lambda c, o: c.put(
        reverse("evidence-detail", args=[_ev(o, "owner_private")]),
        {"title": "Replaced", "description": "all of it"},
        format="json",
    ),
    "DELETE-evidence-detail-private": lambda c, o: c.delete(
        reverse("evidence-detail", args=[_ev(o, "owner_private")])
    ),
    "GET-evidence-history-private": lambda c, o: c.get(
        reverse("evidence-history", args=[_ev(o, "owner_private")])
    ),
    "GET-evidence-attachment-private": lambda c, o: c.get(_att(o, "private")),
    "POST-evidence-restore-deleted": lambda c, o: c.post(
        reverse("evidence-restore", args=[_ev(o, "owner_deleted")])
    ),
}

CASES = [
    pytest.param(role, endpoint, codes[i], id=f"{role}-{endpoint}")
    for endpoint, codes in EXPECTED.items()
    for i, role in enumerate(ROLES)
]


def test_the_matrix_covers_every_endpoint_and_role():
    assert set(CALLS) == set(EXPECTED)
    assert all(len(codes) == len(ROLES) for codes in EXPECTED.values())
    assert len(CASES) == len(ROLES) * len(EXPECTED)


@dataclass
class Records:
    """The org and its evidence under test: named items ("owner_manager", "owner_private",
    "peer_manager", ...) and two attachments of the engineer's."""

    org: Org
    evidence: dict[str, Evidence]
    attachments: dict[str, Attachment]

    @property
    def owner(self):
        return self.org.engineer

    def client(self, role: str):
        return self.org.client(role)


def _upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


@pytest.fixture
def records(org, media) -> Records:
    evidence = {}

    def ev(key, owner, visibility=Evidence.Visibility.MANAGER):
        evidence[key] = EvidenceFactory(person=owner, title=key, visibility=visibility)
        return evidence[key]

    manager_item = ev("owner_manager", org.engineer)
    Evidence.objects.filter(pk=manager_item.pk).update(
        status=Evidence.Status.CANDIDATE
    )  # something to accept or dismiss
    private_item = ev("owner_private", org.engineer, Evidence.Visibility.PRIVATE)
    deleted = ev("owner_deleted", org.engineer)
    evidence_delete(evidence=deleted, actor=org.engineer.user)
    ev("peer_manager", org.peer)
    ev("peer_private", org.peer, Evidence.Visibility.PRIVATE)
    ev("manager_own", org.manager)
    ev("director_own", org.director)
    ev("other_manager_own", org.other_manager)
    ev("other_engineer_manager", org.other_engineer)
    ev("committee_own", org.committee)
    ev("admin_own", org.admin)
    for item in evidence.values():
        item.refresh_from_db()
    attachments = {
        "manager": attachment_add(
            evidence=manager_item,
            actor=org.engineer.user,
            upload=_upload("manager.txt", b"for managers\n"),
        ),
        "private": attachment_add(
            evidence=private_item,
            actor=org.engineer.user,
            upload=_upload("private.txt", b"just me\n"),
        ),
    }
    return Records(org=org, evidence=evidence, attachments=attachments)


def _state():
    """Everything a refused request must leave alone."""
    return (
        list(Evidence.objects.order_by("pk").values_list(
            "pk", "title", "description", "status", "visibility", "deleted_at", "updated_at"
        )),
        list(EvidenceEvent.objects.order_by("pk").values_list("pk", flat=True)),
        list(Attachment.objects.order_by("pk").values_list("pk", "file")),
        list(Person.objects.order_by("pk").values_list(
            "pk", "name", "title", "email", "level", "manager_id", "is_committee"
        )),
        LevelChange.objects.count(),
    )  # fmt: skip


@pytest.mark.parametrize(("role", "endpoint", "expected"), CASES)
def test_status(records, role, endpoint, expected):
    before = _state()

    response = CALLS[endpoint](records.client(role), records)

    assert response.status_code == expected, getattr(response, "data", None)
    if expected >= 400:
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()["error"]) >= {"code", "message"}
        assert _state() == before, "a refused request changed something"
    if expected == 401:
        assert response["WWW-Authenticate"].startswith("Token")
    if endpoint.startswith("GET-evidence-attachment-") and expected == 200:
        key = endpoint.rsplit("-", 1)[1]
        assert b"".join(response.streaming_content) == records.attachments[key].file.open().read()


# --- what the lists hold, per role -----------------------------------------------------

EVERY_LIVE_ITEM = {
    "owner_manager",
    "owner_private",
    "peer_manager",
    "peer_private",
    "manager_own",
    "director_own",
    "other_manager_own",
    "other_engineer_manager",
    "committee_own",
    "admin_own",
}

EVIDENCE_SEEN = {
    "engineer": {"owner_manager", "owner_private"},
    "peer": {"peer_manager", "peer_private"},
    "manager": {"manager_own", "owner_manager", "peer_manager"},
    "other_manager": {"other_manager_own", "other_engineer_manager"},
    "director": {"director_own", "manager_own", "owner_manager", "peer_manager"},
    "committee": {"committee_own"},
    "admin": EVERY_LIVE_ITEM,
}

PEOPLE_SEEN = {
    "engineer": {"erin"},
    "peer": {"pete"},
    "manager": {"omar", "erin", "pete"},
    "other_manager": {"nina", "otto"},
    "director": {"maria", "omar", "erin", "pete"},
    "committee": {"cora"},
    "admin": {"maria", "omar", "erin", "pete", "nina", "otto", "cora", "ada"},
}


def _names(records, ids):
    by_pk = {e.pk: key for key, e in records.evidence.items()}
    return {by_pk[i] for i in ids}


@pytest.mark.parametrize("role", list(EVIDENCE_SEEN))
def test_evidence_list_content(records, role):
    client = records.client(role)

    listed = client.get(reverse("evidence-list")).json()
    trash = client.get(reverse("evidence-list"), {"deleted": "true"}).json()

    assert _names(records, [e["id"] for e in listed["results"]]) == EVIDENCE_SEEN[role]
    assert listed["count"] == len(EVIDENCE_SEEN[role])
    # the trash is the owner's own deleted items, never anyone else's (not even an admin's)
    assert _names(records, [e["id"] for e in trash["results"]]) == (
        {"owner_deleted"} if role == "engineer" else set()
    )


@pytest.mark.parametrize("role", list(EVIDENCE_SEEN))
def test_evidence_list_person_filter_cannot_widen_the_scope(records, role):
    """?person= narrows within what you may see; it never reveals someone else's items."""
    response = records.client(role).get(reverse("evidence-list"), {"person": records.owner.pk})

    assert response.status_code == 200
    expected = {k for k in EVIDENCE_SEEN[role] if k.startswith("owner_")}
    assert _names(records, [e["id"] for e in response.json()["results"]]) == expected


@pytest.mark.parametrize("role", list(PEOPLE_SEEN))
def test_people_list_content(records, role):
    response = records.client(role).get(reverse("person-list"))

    assert {p["username"] for p in response.json()["results"]} == PEOPLE_SEEN[role]


def test_anonymous_list_bodies_are_errors_not_empty_lists(records):
    for name in ("person-list", "evidence-list"):
        response = records.client("anonymous").get(reverse(name))
        assert response.status_code == 401
        assert "results" not in response.json()
