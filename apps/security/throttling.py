"""Stopping guessing: django-axes for sign-ins, DRF throttles for the API.

- Password sign-ins (/login/, /admin/login/, any backend going through authenticate()) are
  counted per account and per address by axes; at AXES_FAILURE_LIMIT failures within
  AXES_COOLOFF_TIME the account (or address) is locked for that long.
- Failed API tokens count against the address (there is no account to blame).
- The API is rate limited per address (anonymous) and per user (signed in); the rates are
  settings read on each request, so tests can change them.
"""

from __future__ import annotations

import math
from datetime import timedelta

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Max, Q
from django.forms.utils import ErrorDict
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from ladder_tracker.errors import error_body


def lockout_parameters(request, credentials=None) -> list:
    """Per account and per address. An attempt that names no account (a bad API token, an
    SSO callback) counts against its address only, never against one "no name" bucket
    shared by everyone."""
    if getattr(request, "security_token_attempt", False):
        return ["ip_address"]
    if not get_client_username(request, credentials):
        return ["ip_address"]
    return ["username", "ip_address"]


class LockoutBackend(AxesStandaloneBackend):
    """axes' check in front of the other backends. A call without a request (the test
    client's login(), a shell) has no address to count against and is let through to the
    next backend; every sign-in over HTTP passes its request."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_wait(request, credentials=None) -> timedelta:
    """How long until this request's account and address may try again."""
    cool_off = get_cool_off(request) or timedelta(0)
    username = get_client_username(request, credentials)
    address = getattr(request, "axes_ip_address", None)
    which = Q(ip_address=address) if address else Q()
    if username:
        which |= Q(username=username)
    last = AccessAttempt.objects.filter(which).aggregate(at=Max("attempt_time"))["at"]
    if last is None:
        return cool_off
    return max(last + cool_off - timezone.now(), timedelta(seconds=1))


def lockout_message(wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many sign-in attempts. Try again in {minutes} {unit}."


def lockout_response(request, original_response=None, credentials=None):
    """axes' AXES_LOCKOUT_CALLABLE: the login page (or the admin's) with the message, or
    the API's JSON error, as a 429 with Retry-After."""
    wait = lockout_wait(request, credentials)
    message = lockout_message(wait)
    retry_after = str(max(1, math.ceil(wait.total_seconds())))
    if request.path.startswith("/api/"):
        response = JsonResponse(error_body("throttled", message, message), status=429)
    else:
        # bound to what was typed, with the message as its only error: set directly, as
        # validating the form would authenticate (and count a failure) again
        form = AuthenticationForm(request, data={"username": request.POST.get("username", "")})
        form._errors = ErrorDict({NON_FIELD_ERRORS: form.error_class([message], "nonfield")})
        if request.path.startswith("/admin/"):
            context = {**admin.site.each_context(request), "form": form, "title": "Log in"}
            template = "admin/login.html"
        else:
            context = {"form": form, "lockout_message": message}
            template = "registration/login.html"
        context["next"] = request.POST.get("next", "") or request.GET.get("next", "")
        response = render(request, template, context, status=429)
    response["Retry-After"] = retry_after
    return response


class AnonThrottle(AnonRateThrottle):
    """Anonymous API calls, per address (settings.API_THROTTLE_ANON)."""

    # read per request (DRF reads its rates once, at import), so settings win
    def get_rate(self):
        return settings.API_THROTTLE_ANON


class UserThrottle(UserRateThrottle):
    """Signed-in API calls, per user (settings.API_THROTTLE_USER)."""

    def get_rate(self):
        return settings.API_THROTTLE_USER
