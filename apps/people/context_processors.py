"""Who is looking: drives the role-aware navigation and the 'your next level' highlight."""

from functools import cached_property

from django.conf import settings

from .selectors import person_for_user, person_has_reports
from .sso import sso_enabled


class Viewer:
    """Lazy: a page that never asks costs no query."""

    def __init__(self, user):
        self.user = user

    @cached_property
    def person(self):
        return person_for_user(user=self.user)

    @cached_property
    def is_manager(self) -> bool:
        return bool(self.person and person_has_reports(person=self.person))

    @property
    def is_committee(self) -> bool:
        return bool(self.person and self.person.is_committee)

    @property
    def is_admin(self) -> bool:
        return self.user.is_staff


def request_viewer(request) -> Viewer | None:
    """The request's Viewer (None when nobody is signed in), made once per request so that
    other apps' context processors (the evidence Inbox badge) share its person read."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    found = getattr(request, "_viewer", None)
    if found is None or found.user is not user:
        found = request._viewer = Viewer(user)
    return found


def viewer(request):
    found = request_viewer(request)
    return {} if found is None else {"viewer": found}


def sign_in(request):
    """What the sign-in pages (ours and the admin's) offer: the SSO button, the password
    form. No query, no network."""
    return {"sso_enabled": sso_enabled(), "password_login": settings.PASSWORD_LOGIN}
