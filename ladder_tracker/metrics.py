"""GET /metrics: Prometheus metrics (prometheus-client's text format) for admins and scrapers.

Who may read them (settings METRICS_TOKEN, METRICS_ALLOW_LOOPBACK; README "Metrics"):
a signed-in admin; a request with `Authorization: Bearer <METRICS_TOKEN>` when the token
is set; a request from loopback when METRICS_ALLOW_LOOPBACK is on and it did not come
through a proxy. Anyone else gets a 401 (a 403 when signed in but not an admin), with the
JSON error body of the API.

The sync's metrics come from the database at scrape time (servicenow/metrics.py), so any
web process answers for every worker. A registry of our own, not prometheus-client's
global one: nothing else registers into it behind our back.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from servicenow.metrics import SyncCollector

from .errors import json_error

registry = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=registry)
PlatformCollector(registry=registry)
GCCollector(registry=registry)
registry.register(SyncCollector())

PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _bearer(request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _from_loopback(request) -> bool:
    if any(request.headers.get(h) for h in PROXY_HEADERS):
        return False  # a proxy on this host forwards other hosts' requests
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def metrics_refusal(request) -> JsonResponse | None:
    """Why this request may not read the metrics (None: it may)."""
    token = _bearer(request)
    if token is not None:
        expected = settings.METRICS_TOKEN
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return None
        return _refuse(401, "not_authenticated", "The metrics token is not valid.")
    user = request.user
    if user.is_authenticated and user.is_staff:
        return None
    if settings.METRICS_ALLOW_LOOPBACK and _from_loopback(request):
        return None
    if user.is_authenticated:
        return _refuse(403, "permission_denied", "Metrics are for admins.")
    return _refuse(
        401,
        "not_authenticated",
        "Sign in as an admin, or send Authorization: Bearer <METRICS_TOKEN>.",
    )


def _refuse(status: int, code: str, message: str) -> JsonResponse:
    response = json_error(status, code, message)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@never_cache
@require_GET
def metrics(request):
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
