"""API-wide pieces: JSON errors everywhere under /api/, and the error body shape.

Every API error is `{"error": {"code", "message", "detail"}}` with a 4xx status; DRF's own
field errors stay under `detail` so clients can point at the field. The services' error
family (ladder_tracker.errors) and Django's ValidationError are mapped here, once: views
let them through.
"""

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from .errors import ApplicationError, error_body


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True, help_text="e.g. conflict, invalid, not_found")
    message = serializers.CharField(read_only=True, help_text="One line for people.")
    detail = serializers.JSONField(
        read_only=True, help_text="DRF's detail: a string, or field errors by field name."
    )


# The error body that exception_handler writes, for the OpenAPI schema only (documented
# responses such as 409 point at it; nothing is serialized through it).
class ErrorSerializer(serializers.Serializer):
    """The body of every API error."""

    error = ErrorDetailSerializer(read_only=True)


def conflict_response(description: str) -> OpenApiResponse:
    """A documented 409: the request is valid but the resource's state does not allow it."""
    return OpenApiResponse(ErrorSerializer, description=description)


def forbidden_response(description: str) -> OpenApiResponse:
    """A documented 403 on a read the schema cannot see refusing (a rule in the view or
    service, not a permission class: ladder_tracker.schema adds those by itself)."""
    return OpenApiResponse(ErrorSerializer, description=description)


def _message(detail) -> str:
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = _message(value)
            return inner if key in ("detail", "non_field_errors") else f"{key}: {inner}"
        return "Invalid request."
    if isinstance(detail, list):
        return _message(detail[0]) if detail else "Invalid request."
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        # through DRF's own conversion, so the body is what DRF's errors look like (every
        # leaf a string): clients see one shape whichever layer refused
        detail = exceptions.ValidationError(exc.api_detail()).detail
        set_rollback()  # as DRF does for its own errors
        return Response(error_body(exc.code, _message(detail), detail), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):  # a service's field errors
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real bug: let Django log it and answer 500
    detail = response.data
    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    body = error_body(code, _message(detail), detail)
    return Response(body, status=response.status_code, headers=_passthrough(response))


def _passthrough(response) -> dict[str, str]:
    return {k: v for k, v in response.items() if k in ("WWW-Authenticate", "Retry-After")}


class DiffQuerySerializer(serializers.Serializer):
    """`?from=N&to=M` for the diffs (ladder versions, packet snapshots); `from` is a keyword
    in Python, hence the rename."""

    from_ = serializers.IntegerField(min_value=1)
    to = serializers.IntegerField(min_value=1)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields
