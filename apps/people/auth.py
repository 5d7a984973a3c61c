"""Who may sign in with a password.

With PASSWORD_LOGIN on (the default) everyone may. With it off, the organisation signs in
through its identity provider (apps/people/sso.py) and a password works only for the
break-glass accounts: superusers and the usernames in BREAK_GLASS_USERS, so an admin can
still get in when the provider is down. The rule lives in the authentication backend, so
the sign-in page, the Django admin's login and anything else calling
`django.contrib.auth.authenticate` obey it alike (and fire the same signals)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def password_login_allowed(user) -> bool:
    """May this user sign in with a password under the current settings?"""
    if settings.PASSWORD_LOGIN:
        return True
    return user.is_superuser or user.get_username() in settings.BREAK_GLASS_USERS


class PasswordBackend(ModelBackend):
    """Django's username + password backend, refusing what `password_login_allowed` refuses.

    Only `authenticate` changes: sessions (get_user) and permissions stay ModelBackend's, so
    turning PASSWORD_LOGIN off never signs out someone who came in through SSO. The password
    is checked first, so a refusal looks the same as a wrong password (the break-glass list
    is not revealed)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and not password_login_allowed(user):
            return None
        return user
