"""View decorators shared by the apps' pages."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404


def admin_only(view):
    """Signed-in non-admins get a 404, as for anything outside their scope."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    """Signed-in non-admins get a 403: for admin tools whose existence says nothing about
    anyone's data (the ServiceNow setup pages)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
