"""Sign-in signals into the audit trail.

Django's auth signals fire for every backend (passwords, the admin, an SSO backend) and
axes' `user_locked_out` for every lock-out, so recording here covers them all. The
receivers only hand the facts to security_event_record.
"""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from .middleware import request_address
from .models import SecurityEvent
from .services import security_event_record


def _backend(request) -> str:
    return "token" if getattr(request, "security_token_attempt", False) else "password"


@receiver(user_logged_in, dispatch_uid="security.user_logged_in")
def on_user_logged_in(sender, request, user, **kwargs):
    security_event_record(
        kind=SecurityEvent.Kind.LOGIN,
        actor=user,
        ip_address=request_address(request),
        detail={"backend": getattr(user, "backend", "")},
    )


@receiver(user_login_failed, dispatch_uid="security.user_login_failed")
def on_user_login_failed(sender, credentials, request=None, **kwargs):
    # Django has already masked secrets in `credentials`; only the name is kept.
    security_event_record(
        kind=SecurityEvent.Kind.LOGIN_FAILED,
        username=str(credentials.get("username") or ""),
        ip_address=request_address(request),
        detail={"method": _backend(request), "path": getattr(request, "path", "")},
    )


@receiver(user_locked_out, dispatch_uid="security.user_locked_out")
def on_user_locked_out(sender, request, username, ip_address, **kwargs):
    security_event_record(
        kind=SecurityEvent.Kind.LOCKOUT,
        username=str(username or ""),
        ip_address=ip_address or request_address(request),
        detail={"method": _backend(request), "path": getattr(request, "path", "")},
    )
