"""The client address of the current request, for audit lines written deep in services.

Services take the actor, not the request; the address they record comes from here. It is
resolved the way django-axes resolves it (settings AXES_IPWARE_*), so a lock-out and the
audit trail name the same address.
"""

import contextvars

from axes.helpers import get_client_ip_address
from django.core.signals import request_finished

client_address: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_address", default=None
)


def request_address(request) -> str | None:
    if request is None:
        return None
    request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    return get_client_ip_address(request) or None


class ClientAddressMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        client_address.set(request_address(request))
        return self.get_response(request)


def _clear(**_kwargs) -> None:
    client_address.set(None)


request_finished.connect(_clear, dispatch_uid="apps.security.clear_client_address")
