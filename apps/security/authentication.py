"""`Authorization: Token <secret>` for the API, against hashed, expiring ApiToken rows.

A wrong, expired or revoked token is a failed sign-in: it fires Django's user_login_failed
(so axes counts it against the address and the audit trail records it), and an address
locked out by axes gets 429 before its token is even looked up.
"""

from __future__ import annotations

import math

from axes.handlers.proxy import AxesProxyHandler
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .services import token_authenticate
from .throttling import lockout_message, lockout_wait

KEYWORD = "Token"
NO_CREDENTIALS: dict = {}  # a token names no account: axes counts the address only


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: use 'Authorization: Token <token>'."
            )
        try:
            plain = parts[1].decode()
        except UnicodeError:
            plain = ""
        django_request = request._request
        django_request.security_token_attempt = True
        if not AxesProxyHandler.is_allowed(django_request, NO_CREDENTIALS):
            user_locked_out.send(
                "axes",
                request=django_request,
                username=None,
                ip_address=django_request.axes_ip_address,
            )
            wait = lockout_wait(django_request, NO_CREDENTIALS)
            raise exceptions.Throttled(
                wait=math.ceil(wait.total_seconds()), detail=lockout_message(wait)
            )
        token = token_authenticate(plain) if plain else None
        if token is None:
            return self._fail(django_request, "Invalid token.")
        if token.revoked_at is not None:
            return self._fail(django_request, "Token revoked.")
        if token.is_expired():
            return self._fail(django_request, "Token expired; create a new one.")
        if not token.user.is_active:
            return self._fail(django_request, "User inactive or deleted.")
        return token.user, token

    def _fail(self, django_request, message: str):
        user_login_failed.send(sender=__name__, credentials=NO_CREDENTIALS, request=django_request)
        if getattr(django_request, "axes_locked_out", False):
            wait = lockout_wait(django_request, NO_CREDENTIALS)
            # the lock-out is answered by the API's handler, not axes' middleware
            django_request.axes_locked_out = False
            raise exceptions.Throttled(
                wait=math.ceil(wait.total_seconds()), detail=lockout_message(wait)
            )
        raise exceptions.AuthenticationFailed(message)

    def authenticate_header(self, request):
        return KEYWORD


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.security.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'API token from "API tokens" or POST /api/v1/tokens/, sent as '
            "`Token <token>`. Tokens expire (default 90 days).",
        }
