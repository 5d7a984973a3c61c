"""The OpenAPI schema tells the truth about errors.

drf-spectacular documents the success answer of each operation; this AutoSchema adds the
error answers an operation can give, each with the error envelope of
ladder_tracker.api.exception_handler (`{"error": {"code", "message", "detail"}}`, the `Error`
component), where it applies:

| status | declared when |
|---|---|
- 400: the operation takes a body or query parameters (field errors, InvalidError);
- 401: the view requires authentication (no credentials, or a bad token);
- 403: the view has a permission beyond "authenticated" (admin only...), or it writes
  (services refuse with ForbiddenError; CSRF for a session);
- 404: the path names a record (outside your scope, or gone), or the list is paginated
  (`?page=` past the end);
- 409: declared by the view (`ladder_tracker.api.conflict_response`) where a state forbids it;
- 429: the view has throttles.

An answer a view documents itself (a 400 with another body, a 409 with its reason) is kept.
"""

from __future__ import annotations

from types import SimpleNamespace

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated

from .api import ErrorSerializer

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
DESCRIPTIONS = {
    "400": "Invalid request: `error.detail` names the field or the rule.",
    "401": "Not authenticated: no credentials, or bad ones.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found, or outside what you may see.",
    "429": "Too many requests; `Retry-After` says when to try again.",
}


class AutoSchema(SpectacularAutoSchema):
    def map_parsers(self):
        """Request bodies are JSON, except where a view takes files (its parsers lead with
        multipart: attachments, the people import). Form encodings cannot carry the nested
        bodies (links, assessments, items) that most operations take, so the schema offers
        only what works; DRF still parses a form a browser posts."""
        parsers = self.view.get_parsers()
        if parsers and isinstance(parsers[0], MultiPartParser):
            return super().map_parsers()
        return ["application/json"]

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self.error_statuses(operation):
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = DESCRIPTIONS[code]
        return operation

    def error_statuses(self, operation: dict) -> list[str]:
        parameters = operation.get("parameters", [])
        permissions = self.view.get_permissions()
        codes = []
        if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
            codes.append("400")
        if not all(isinstance(p, AllowAny) for p in permissions):
            codes.append("401")
            if self.method in WRITES or not self._plain_user_passes(permissions):
                codes.append("403")
        paginated = self._is_list_view() and self._get_paginator() is not None
        if any(p["in"] == "path" for p in parameters) or paginated:
            codes.append("404")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _plain_user_passes(self, permissions) -> bool:
        """Whether a signed-in user with no special role passes every permission of the view
        for this method (then a read is never a 403: out of scope is a 404)."""
        user = SimpleNamespace(
            is_authenticated=True, is_active=True, is_staff=False, is_superuser=False, pk=None
        )
        request = SimpleNamespace(method=self.method, user=user, auth=None)
        for permission in permissions:
            if isinstance(permission, (IsAuthenticated, AllowAny)):  # noqa: UP038 (DRF overloads |)
                continue
            try:
                if not permission.has_permission(request, self.view):
                    return False
            except Exception:  # noqa: BLE001 - a permission that needs more: assume it refuses
                return False
        return True
