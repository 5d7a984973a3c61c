"""Single sign-on with OpenID Connect, on mozilla-django-oidc (README "SSO").

The library runs the authorization code flow (state, nonce, PKCE) and logs the user in
with `django.contrib.auth.login`, so the standard auth signals fire. This module adds what
it leaves to the project:

- the provider's endpoints, read from the issuer's discovery document
  (`<OIDC_ISSUER>/.well-known/openid-configuration`) on first use and cached, never at
  start-up (a provider that is down must not stop `manage.py migrate`); each endpoint may
  be pinned from the environment instead;
- the checks the library skips on the ID token (issuer, audience) and on userinfo (same
  subject as the ID token);
- who the person is: `apps.people.services.person_sign_in_sso` (verified email only,
  matched case-insensitively; unknown people refused unless OIDC_CREATE_USERS);
- a page saying why a sign-in was refused, instead of a bare redirect;
- sign-out at the provider too (RP-initiated logout with `id_token_hint`), when the
  provider announces an `end_session_endpoint`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import SuspiciousOperation
from django.http import Http404
from django.shortcuts import render, resolve_url
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from .services import SignInRefused, person_sign_in_sso

logger = logging.getLogger(__name__)

# How long a discovery document is trusted before it is read again. Providers rotate keys
# through the JWKS (read at every sign-in by the library), not through discovery, so an hour
# only delays noticing a moved endpoint.
DISCOVERY_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    end_session_endpoint: str  # "" when the provider offers no RP-initiated logout


class ProviderUnavailable(Exception):
    """Discovery failed: the provider is down, or says it is someone else."""


def sso_enabled() -> bool:
    """SSO is on when an issuer and a client id are configured."""
    return bool(settings.OIDC_ISSUER and settings.OIDC_RP_CLIENT_ID)


_discovered: dict[str, tuple[float, dict]] = {}
_discovered_lock = threading.Lock()


def sso_discovery_clear() -> None:
    """Forget cached discovery documents (tests, or after changing the issuer)."""
    with _discovered_lock:
        _discovered.clear()


def _discover(issuer: str) -> dict:
    now = time.monotonic()
    with _discovered_lock:
        found = _discovered.get(issuer)
    if found and now - found[0] < DISCOVERY_TTL_SECONDS:
        return found[1]
    url = f"{issuer}/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"discovery at {url} failed: {type(exc).__name__}") from exc
    # OpenID Connect Discovery 1.0 §4.3: the issuer in the document must be the one asked.
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ProviderUnavailable(
            f"discovery at {url} names issuer {document.get('issuer')!r}, not {issuer!r}"
        )
    with _discovered_lock:
        _discovered[issuer] = (now, document)
    return document


def sso_provider() -> Provider:
    """The configured provider's endpoints: pinned ones from the settings, the rest from
    discovery (not read at all when every endpoint is pinned)."""
    issuer = settings.OIDC_ISSUER.rstrip("/")
    pinned = {
        "authorization_endpoint": settings.OIDC_OP_AUTHORIZATION_ENDPOINT,
        "token_endpoint": settings.OIDC_OP_TOKEN_ENDPOINT,
        "userinfo_endpoint": settings.OIDC_OP_USER_ENDPOINT,
        "jwks_uri": settings.OIDC_OP_JWKS_ENDPOINT,
        "end_session_endpoint": settings.OIDC_OP_END_SESSION_ENDPOINT,
    }
    required = ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")
    document = {} if all(pinned[k] for k in required) else _discover(issuer)
    values = {k: pinned[k] or str(document.get(k) or "") for k in pinned}
    missing = [k for k in required if not values[k]]
    if missing:
        raise ProviderUnavailable(f"the provider announces no {', '.join(missing)}")
    return Provider(issuer=issuer, **values)


def _refused_page(request, refusal: SignInRefused, status: int = 403):
    return render(
        request,
        "registration/sso_refused.html",
        {"refusal": refusal, "password_login": settings.PASSWORD_LOGIN},
        status=status,
    )


def _unavailable(exc: ProviderUnavailable) -> SignInRefused:
    logger.warning("SSO provider unavailable: %s", exc)
    return SignInRefused(
        "The identity provider cannot be reached right now. Try again in a few minutes.",
        reason="provider_unavailable",
    )


class SSOAuthenticateView(OIDCAuthenticationRequestView):
    """`Sign in with SSO`: redirect to the provider's authorization endpoint."""

    def __init__(self, *args, **kwargs):
        # The library reads the endpoint from the settings here; ours comes from discovery,
        # in get(), so that building the view never touches the network.
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)

    def get(self, request):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            provider = sso_provider()
        except ProviderUnavailable as exc:
            return _refused_page(request, _unavailable(exc), status=503)
        self.OIDC_OP_AUTH_ENDPOINT = provider.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        return super().get(request)


class SSOCallbackView(OIDCAuthenticationCallbackView):
    """The provider's redirect back: the library exchanges the code and logs in; a failure
    shows why (a 403 page) rather than sending the person back to the login page."""

    def get(self, request):
        if not sso_enabled():
            raise Http404("Single sign-on is not configured.")
        try:
            return super().get(request)
        except SuspiciousOperation as exc:
            # a state this browser never asked for: a replayed or injected callback
            logger.warning("SSO callback refused: %s", exc)
            request.sso_refusal = SignInRefused(
                "This sign-in did not start in this browser, or was already used. Start "
                "again from the sign-in page.",
                reason="state_mismatch",
            )
            return self.login_failure()

    def login_failure(self):
        refusal = getattr(self.request, "sso_refusal", None)
        if refusal is None:
            error = self.request.GET.get("error_description") or self.request.GET.get("error")
            refusal = SignInRefused(
                f"The identity provider did not sign you in ({error})."
                if error
                else "The sign-in with your identity provider did not complete. Try again.",
                reason="provider_error",
            )
        return _refused_page(self.request, refusal)


class SSOBackend(OIDCAuthenticationBackend):
    """Authenticates the provider's callback, and nothing else: any other `authenticate()`
    call (a password form, another backend's credentials) gets None, so the order of
    AUTHENTICATION_BACKENDS does not matter, django-axes' backend first included.

    A refusal is left on the request (`request.sso_refusal`, a SignInRefused with `reason`
    and `email`) for the refusal page and for user_login_failed receivers, which Django
    calls with that request when every backend returned None."""

    def __init__(self, *args, **kwargs):
        # Endpoints and keys are resolved per sign-in in authenticate() (discovery); the
        # library's __init__ would demand them from the settings.
        self.UserModel = get_user_model()

    def authenticate(self, request, **kwargs):
        if request is None or not sso_enabled():
            return None
        if request.path != reverse("oidc_authentication_callback"):
            return None
        self.request = request
        try:
            self.configure(sso_provider())
        except ProviderUnavailable as exc:
            request.sso_refusal = _unavailable(exc)
            return None
        try:
            return super().authenticate(request, **kwargs)
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError) as exc:
            # the code exchange failed, or the ID token did not check out
            logger.warning("SSO callback failed: %s: %s", type(exc).__name__, exc)
            request.sso_refusal = SignInRefused(
                "The sign-in with your identity provider did not complete. Try again; if it "
                "keeps failing, tell your administrator.",
                reason="provider_error",
            )
            return None

    def configure(self, provider: Provider) -> None:
        """What the library's __init__ reads from the settings, from `provider` instead."""
        self.provider = provider
        self.OIDC_OP_TOKEN_ENDPOINT = provider.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = provider.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = provider.jwks_uri
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.OIDC_RP_SIGN_ALGO = settings.OIDC_RP_SIGN_ALGO
        self.OIDC_RP_IDP_SIGN_KEY = None

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        # OpenID Connect Core §3.1.3.7: the issuer must match and the audience must
        # contain our client id; the library checks neither.
        if str(payload.get("iss", "")).rstrip("/") != self.provider.issuer:
            raise SuspiciousOperation("ID token issuer does not match OIDC_ISSUER")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token audience does not contain our client id")
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        # OpenID Connect Core §5.3.2: userinfo is about the ID token's subject, or ignored.
        if userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("userinfo subject differs from the ID token's")
        claims = {**payload, **userinfo}
        try:
            return person_sign_in_sso(
                email=claims.get("email", ""),
                email_verified=claims.get("email_verified"),
                name=claims.get("name", ""),
                create=settings.OIDC_CREATE_USER,
            )
        except SignInRefused as exc:
            logger.info("SSO sign-in refused (%s) for %s", exc.reason, exc.email or "no email")
            self.request.sso_refusal = exc
            return None

    def get_user(self, user_id):
        # The library's get_user ignores is_active; a deactivated login must lose its session
        # as it would with a password.
        return ModelBackend.get_user(self, user_id)


def provider_logout_url(request) -> str:
    """Where signing out sends the browser (OIDC_OP_LOGOUT_URL_METHOD): the provider's
    end_session_endpoint with id_token_hint, back to our login page afterwards, when the
    person came in through SSO and the provider offers it; our login page otherwise."""
    local = resolve_url(settings.LOGOUT_REDIRECT_URL)
    id_token = request.session.get("oidc_id_token")
    if not (id_token and sso_enabled()):
        return local
    try:
        provider = sso_provider()
    except ProviderUnavailable as exc:
        logger.warning("SSO sign-out stays local: %s", exc)
        return local
    if not provider.end_session_endpoint:
        return local
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(local),
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{provider.end_session_endpoint}?{query}"


def sso_form_action_origins() -> list[str]:
    """Origins a sign-out form may be redirected to: the provider's (the issuer's, and a
    pinned end-session endpoint's). Empty when SSO is off."""
    if not sso_enabled():
        return []
    origins = []
    for url in (settings.OIDC_ISSUER, settings.OIDC_OP_END_SESSION_ENDPOINT):
        parts = urlsplit(url or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in origins:
                origins.append(origin)
    return origins


class SSOFormActionMiddleware:
    """The CSP's form-action covers redirects after a form is sent (CSP 3): Sign out posts to
    /logout/, which sends an SSO session on to the provider's end-session endpoint. Every
    page carries that form, so every response lets the provider's origin in (nothing else).
    Sits after csp.middleware.CSPMiddleware, so its response hook runs first."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        origins = sso_form_action_origins()
        if origins:
            update = dict(getattr(response, "_csp_update", None) or {})
            update["form-action"] = [*update.get("form-action", []), *origins]
            response._csp_update = update
        return response
