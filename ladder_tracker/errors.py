"""Errors: the one family services raise, how pages show them, and the error pages.

Services refuse with a subclass of ApplicationError (or Django's ValidationError, for field
errors): InvalidError 400, ForbiddenError 403, NotFoundError 404, ConflictError 409. Each
exception carries its status and code, so it is mapped once for the API
(ladder_tracker.api.exception_handler) and once for pages (form_error, message_error,
error_lines) and no view translates. ForbiddenError is a Django PermissionDenied and
NotFoundError an Http404, so a page that does not catch them answers 403 / 404 like any
Django view.

The error pages (bad_request ... server_error) answer JSON under /api/ (clients never get
HTML there) and templates elsewhere.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults

# --- the family ---------------------------------------------------------------------------


class ApplicationError(Exception):
    """A service refusing a request. The message is one line for people; `detail` (a dict)
    names what is wrong, for clients (`error.detail` in the API) and for pages."""

    status_code = 400
    code = "error"
    # detail keys that pages show in place (e.g. against each expectation), not as lines
    detail_shown_apart: frozenset[str] = frozenset()

    def __init__(self, message: str, detail: dict | None = None):
        self.detail = detail or {}
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self)

    def api_detail(self):
        """What the API puts under `error.detail`: DRF's shape for an error that is not a
        field's (`{"detail": message}`), with what the detail names beside it."""
        return {"detail": self.message, **self.detail}


class InvalidError(ApplicationError):
    """The request breaks a rule (a deadline, a missing comment...): 400."""

    status_code = 400
    code = "invalid"


class ForbiddenError(ApplicationError, PermissionDenied):
    """The actor may see the record but may not do this to it: 403."""

    status_code = 403
    code = "permission_denied"


class NotFoundError(ApplicationError, Http404):
    """Outside the actor's scope, or gone: 404 (never a 403 that leaks its existence)."""

    status_code = 404
    code = "not_found"


class ConflictError(ApplicationError):
    """The record's state does not allow this (now): 409."""

    status_code = 409
    code = "conflict"


# --- pages --------------------------------------------------------------------------------


def error_lines(exc: ApplicationError | DjangoValidationError) -> list[str]:
    """A service error as lines to show: the message, then what its detail names."""
    if isinstance(exc, DjangoValidationError):
        return list(exc.messages)
    lines = [exc.message]
    for key, value in exc.detail.items():
        if key in exc.detail_shown_apart:
            continue
        values = value if isinstance(value, list) else [value]
        lines += [f"{key}: {v}" for v in values]
    return lines


def form_error(
    form, exc: ApplicationError | DjangoValidationError, *, field_map: dict | None = None
) -> None:
    """Put a service error on the form: on the field it names when the form has that field
    (`field_map` renames a service's key to the page's field), at the top otherwise."""
    field_map = field_map or {}

    def target(key):
        key = field_map.get(key, key)
        return key if key in form.fields else None

    if isinstance(exc, DjangoValidationError):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
        for key, lines in errors.items():
            form.add_error(target(key), lines)
        return
    named = [target(key) for key in exc.detail]
    form.add_error(next((key for key in named if key), None), exc.message)


def message_error(request, exc: ApplicationError | DjangoValidationError) -> None:
    """Put a service error into django messages, shown on the next page."""
    for line in error_lines(exc):
        messages.error(request, line)


# --- the API's error body, and the error pages --------------------------------------------


def error_body(code: str, message: str, detail) -> dict:
    """Every API error: `{"error": {"code", "message", "detail"}}`."""
    return {"error": {"code": code, "message": message, "detail": detail}}


def json_error(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message, message), status=status_code)


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if _is_api(request):
        return json_error(400, "bad_request", "Bad request.")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception=None):
    if _is_api(request):
        return json_error(403, "permission_denied", "You may not do that.")
    return defaults.permission_denied(request, exception)


def not_found(request, exception=None):
    if _is_api(request):
        return json_error(404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _is_api(request):
        return json_error(500, "server_error", "Internal error; it has been logged.")
    return defaults.server_error(request)
