"""The error family (ladder_tracker/errors.py): each service error is answered once, by the
API's handler and by the page helpers, in the body shape clients already rely on."""

import pytest
from django import forms
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404

from apps.evidence.services import EvidenceForbidden
from apps.evidence.uploads import UploadRejected
from apps.ladders.services import LadderVersionImmutable
from apps.packets.services import PacketConflict, PacketForbidden, PacketInvalid
from ladder_tracker.api import exception_handler
from ladder_tracker.errors import (
    ApplicationError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    error_lines,
    form_error,
)
from servicenow.services import ConfigurationInUse, RunAlreadyActive, SourceDisabled


@pytest.mark.parametrize(
    ("cls", "family"),
    [
        (PacketConflict, ConflictError),
        (PacketForbidden, ForbiddenError),
        (PacketInvalid, InvalidError),
        (EvidenceForbidden, ForbiddenError),
        (UploadRejected, InvalidError),
        (LadderVersionImmutable, ConflictError),
        (RunAlreadyActive, ConflictError),
        (SourceDisabled, ConflictError),
        (ConfigurationInUse, ConflictError),
    ],
    ids=lambda c: c.__name__,
)
def test_app_errors_belong_to_the_family(cls, family):
    assert issubclass(cls, family) and issubclass(cls, ApplicationError)


def test_pages_answer_forbidden_and_not_found_like_django():
    assert issubclass(ForbiddenError, PermissionDenied)
    assert issubclass(NotFoundError, Http404)


def _body(exc):
    response = exception_handler(exc, {})
    return response.status_code, response.data


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (
            PacketConflict("Cannot submit a packet that is endorsed."),
            409,
            {
                "code": "conflict",
                "message": "Cannot submit a packet that is endorsed.",
                "detail": {"detail": "Cannot submit a packet that is endorsed."},
            },
        ),
        (
            PacketForbidden("Nobody reviews their own packet."),
            403,
            {
                "code": "permission_denied",
                "message": "Nobody reviews their own packet.",
                "detail": {"detail": "Nobody reviews their own packet."},
            },
        ),
        (
            PacketInvalid("Coverage is low.", {"gaps": ["TE-3.1"], "coverage": 0.4}),
            400,
            {
                "code": "invalid",
                "message": "Coverage is low.",
                "detail": {"detail": "Coverage is low.", "gaps": ["TE-3.1"], "coverage": "0.4"},
            },
        ),
        (
            NotFoundError("No such packet."),
            404,
            {
                "code": "not_found",
                "message": "No such packet.",
                "detail": {"detail": "No such packet."},
            },
        ),
        (
            UploadRejected("a.exe: not an accepted type."),
            400,
            {
                "code": "invalid",
                "message": "file: a.exe: not an accepted type.",
                "detail": {"file": ["a.exe: not an accepted type."]},
            },
        ),
        (
            UploadRejected("big.txt is 9 bytes; the limit is 8 bytes.", too_large=True),
            413,
            {
                "code": "too_large",
                "message": "big.txt is 9 bytes; the limit is 8 bytes.",
                "detail": {"detail": "big.txt is 9 bytes; the limit is 8 bytes."},
            },
        ),
        (
            DjangoValidationError({"decision_on": "Decisions come after the deadline."}),
            400,
            {
                "code": "invalid",
                "message": "decision_on: Decisions come after the deadline.",
                "detail": {"decision_on": ["Decisions come after the deadline."]},
            },
        ),
    ],
    ids=["conflict", "forbidden", "invalid", "not-found", "upload", "too-large", "django"],
)
def test_the_api_handler_maps_each_error_once(exc, status, error):
    assert _body(exc) == (status, {"error": error})


class _Form(forms.Form):
    target_level = forms.IntegerField(required=False)
    files = forms.CharField(required=False)


def test_form_error_puts_the_error_on_the_field_it_names():
    named, top, upload = _Form({}), _Form({}), _Form({})
    for form in (named, top, upload):
        form.is_valid()

    form_error(named, PacketInvalid("No level 9.", {"target_level": "no level 9"}))
    form_error(top, PacketConflict("You already have an open packet."))
    form_error(upload, UploadRejected("a.exe: refused."), field_map={"file": "files"})

    assert named.errors == {"target_level": ["No level 9."]}
    assert top.errors == {"__all__": ["You already have an open packet."]}
    assert upload.errors == {"files": ["a.exe: refused."]}


def test_error_lines_leave_out_what_the_page_shows_in_place():
    exc = PacketInvalid(
        "Some items cannot be used.", {"items": ["[0]: no"], "gaps": ["TE-3.1"], "missing": []}
    )

    assert error_lines(exc) == ["Some items cannot be used.", "items: [0]: no"]


# --- who may is decided before what was sent ----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [pytest.param({"title": ""}, id="invalid-body"), pytest.param({"title": "Mine"}, id="valid")],
)
def test_a_manager_changing_a_reports_evidence_is_refused_whatever_the_body(org, body):
    from tests.factories import EvidenceFactory

    item = EvidenceFactory(person=org.engineer, title="Work")
    response = org.client("manager").patch(f"/api/v1/evidence/{item.pk}/", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    item.refresh_from_db()
    assert item.title == "Work"


@pytest.mark.parametrize(
    "body",
    [pytest.param({"narratives": "not a dict"}, id="invalid-body"), pytest.param({}, id="empty")],
)
def test_a_manager_editing_a_reports_packet_is_refused_whatever_the_body(org, cycle, body):
    from tests.factories import PacketFactory

    packet = PacketFactory(person=org.engineer, cycle=cycle, state="draft")
    response = org.client("manager").patch(f"/api/v1/packets/{packet.pk}/", body, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


@pytest.mark.parametrize("path", ["save", "submit"])
def test_a_manager_posting_a_broken_builder_form_gets_403_and_sees_nothing(org, cycle, path):
    from django.test import Client

    from tests.factories import EvidenceFactory, PacketFactory

    EvidenceFactory(person=org.engineer, title="Secret private work", visibility="private")
    packet = PacketFactory(person=org.engineer, cycle=cycle, state="draft")
    client = Client()
    client.force_login(org.manager.user)
    response = client.post(f"/packets/{packet.pk}/{path}/", {"builder": "1", "pick": "X|bad"})
    assert response.status_code == 403
    assert b"Secret private work" not in response.content
