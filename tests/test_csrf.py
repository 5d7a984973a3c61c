"""CSRF on every state-changing page: a POST without the token is refused (403) and changes
nothing; the same POST with the page's token passes the CSRF check and reaches the view,
which answers as it would for any client (the expected status of each row)."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from apps.evidence.models import Attachment, Evidence
from apps.evidence.services import attachment_add, evidence_delete
from apps.packets.models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketSnapshot,
    PromotionCycle,
)
from apps.people.models import Person
from tests.factories import (
    PASSWORD,
    AdminUserFactory,
    EvidenceFactory,
    PacketFactory,
    PersonFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(org, ladder, ladder_version, cycle, media):
    erin = org.engineer
    # a third report of omar's, whose packet is endorsed (so cora may decide it)
    ivy = PersonFactory(user__username="ivy", ladder=ladder, level=2, manager=org.manager)
    item = EvidenceFactory(person=erin, title="Mine")
    attachment = attachment_add(
        evidence=item, actor=erin.user, upload=SimpleUploadedFile("notes.txt", b"hello\n")
    )
    trashed = EvidenceFactory(person=erin, title="Binned")
    evidence_delete(evidence=trashed, actor=erin.user)
    AdminUserFactory(username="root")

    def packet(person, state):
        return PacketFactory(
            person=person,
            cycle=cycle,
            ladder_version=ladder_version,
            state=state,
            evidence=[EvidenceFactory(person=person, title=f"{person} work")],
            reviewer=org.manager,
            decider=org.committee,
        )

    today = timezone.localdate()
    return {
        "item": item.pk,
        "attachment": attachment.pk,
        "trashed": trashed.pk,
        "draft": packet(erin, "draft").pk,  # erin's own: save, submit, withdraw
        "submitted": packet(org.peer, "submitted").pk,  # omar reviews it
        "endorsed": packet(ivy, "endorsed").pk,  # cora decides it
        "cycle": cycle.pk,
        "opens_on": (today - timedelta(days=5)).isoformat(),
        "deadline": (timezone.now() + timedelta(days=12)).strftime("%Y-%m-%dT%H:%M"),
        "decision_on": (today + timedelta(days=25)).isoformat(),
    }


EVIDENCE_FORM = {"title": "X", "occurred_on": "2026-01-01", "visibility": "manager"}
CYCLE_FORM = {"name": "H2 moved", "opens_on": "{opens_on}", "submission_deadline": "{deadline}",
              "decision_on": "{decision_on}", "min_coverage": "0.5"}  # fmt: skip

POSTS = [
    # (user, path template, form data, what the view answers once CSRF lets the POST
    #  through: its status and, for a redirect, where to — a pattern, never the login page)
    ("erin", "/evidence/new/", EVIDENCE_FORM, (302, r"/evidence/\d+/")),
    ("erin", "/evidence/{item}/edit/", {**EVIDENCE_FORM, "title": "Y"}, (302, "/evidence/{item}/")),
    ("erin", "/evidence/{item}/delete/", {}, (302, "/evidence/")),
    ("erin", "/evidence/{trashed}/restore/", {}, (302, "/evidence/{trashed}/")),
    ("erin", "/evidence/{item}/accept/", {}, (302, "/evidence/inbox/")),
    ("erin", "/evidence/{item}/dismiss/", {}, (302, "/evidence/inbox/")),
    ("erin", "/evidence/{item}/attachments/{attachment}/remove/", {},
     (302, "/evidence/{item}/")),
    ("erin", "/evidence/inbox/bulk/", {"ids": ["{item}"], "action": "dismiss"},
     (302, "/evidence/inbox/")),
    ("erin", "/packets/new/", {}, (400, None)),  # the form's own errors
    ("erin", "/packets/{draft}/save/", {}, (302, "/packets/{draft}/")),
    ("erin", "/packets/{draft}/submit/", {}, (302, "/packets/{draft}/")),
    ("erin", "/packets/{draft}/withdraw/", {}, (302, "/packets/{draft}/")),
    ("omar", "/packets/{submitted}/review/", {"action": "assess"},
     (302, "/packets/{submitted}/review/")),
    ("cora", "/packets/{endorsed}/decide/", {"outcome": "promoted", "rationale": "Ready"},
     (302, r"/packets/committee/\?cycle={cycle}")),
    ("root", "/people/import/", {}, (400, None)),  # no file: the form's own error
    ("root", "/packets/cycles/new/", {}, (400, None)),
    ("root", "/packets/cycles/{cycle}/edit/", CYCLE_FORM, (302, "/packets/cycles/")),
    ("erin", "/logout/", {}, (302, "/login/")),
]  # fmt: skip
IDS = [p[1] for p in POSTS]
CSRF_REFUSED = b"CSRF verification failed"  # Django's CSRF failure page


def _fill(value, ids: dict):
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value.format(**ids) if isinstance(value, str) else value


def _state():
    """Everything these POSTs could change."""
    return (
        list(Evidence.objects.order_by("pk").values_list("id", "title", "status", "deleted_at")),
        list(Attachment.objects.order_by("pk").values_list("id", "evidence_id")),
        list(Packet.objects.order_by("pk").values_list("id", "state", "narratives")),
        list(PacketSnapshot.objects.order_by("pk").values_list("id", "packet_id")),
        list(PacketEvent.objects.order_by("pk").values_list("id", "action")),
        list(Assessment.objects.order_by("pk").values_list("id", "rating")),
        list(Decision.objects.order_by("pk").values_list("id", "outcome")),
        list(PromotionCycle.objects.order_by("pk").values_list(
            "id", "name", "opens_on", "submission_deadline", "decision_on", "min_coverage"
        )),
        list(Person.objects.order_by("pk").values_list("id", "name", "manager_id")),
    )  # fmt: skip


@pytest.mark.parametrize(("user", "path", "data", "expected"), POSTS, ids=IDS)
def test_post_without_token_is_refused(world, user, path, data, expected):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user, password=PASSWORD)
    before = _state()

    response = client.post(_fill(path, world), _fill(data, world))

    assert response.status_code == 403
    assert CSRF_REFUSED in response.content
    assert _state() == before


@pytest.mark.parametrize(("user", "path", "data", "expected"), POSTS, ids=IDS)
def test_post_with_the_pages_token_gets_through(world, user, path, data, expected):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user, password=PASSWORD)
    client.get("/ladders/" if user == "root" else "/evidence/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value

    response = client.post(_fill(path, world), {**_fill(data, world), "csrfmiddlewaretoken": token})

    status, location = expected
    assert CSRF_REFUSED not in response.content
    assert response.status_code == status, response.content[:500]
    if location is None:
        assert not response.has_header("Location")
    else:
        assert re.fullmatch(_fill(location, world), response["Location"])
