"""OpenID Connect sign-in against a real provider (django-oauth-toolkit in its own process,
tests/oidc_provider): Django's test client is the relying party's browser, a requests
session is the browser at the provider. Code exchange, ID token signature (RS256 from the
JWKS), userinfo and RP-initiated logout all go over HTTP to the provider."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from django.contrib.auth import get_user_model, user_logged_in, user_login_failed
from django.core.exceptions import SuspiciousOperation
from django.test import Client
from jwcrypto import jwk

from apps.people.models import Person
from apps.people.sso import ProviderUnavailable, SSOBackend, sso_discovery_clear, sso_provider
from tests.factories import PersonFactory, UserFactory

pytestmark = pytest.mark.django_db


def sso_sign_in(client, provider, username: str, *, next_url: str = "", browser=None):
    """Click "Sign in with SSO", sign in at the provider, come back: the callback's answer."""
    start = client.get("/oidc/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302
    assert start["Location"].startswith(f"{provider.issuer}/authorize/?")
    callback = provider.sign_in(start["Location"], username, browser=browser)
    assert callback.startswith("http://testserver/oidc/callback/?")
    return client.get(callback.removeprefix("http://testserver"))


@pytest.fixture
def signals():
    """user_logged_in / user_login_failed as they fire: [(signal name, kwargs)]."""
    fired = []

    def logged_in(sender, request, user, **kwargs):
        fired.append(("user_logged_in", {"user": user}))

    def login_failed(sender, credentials, request=None, **kwargs):
        fired.append(("user_login_failed", {"request": request, "credentials": credentials}))

    user_logged_in.connect(logged_in)
    user_login_failed.connect(login_failed)
    yield fired
    user_logged_in.disconnect(logged_in)
    user_login_failed.disconnect(login_failed)


def refusal_reason(response) -> str:
    assert response.status_code == 403
    body = response.content.decode()
    assert "We could not sign you in" in body
    return response.context["refusal"].reason


# --- the login page --------------------------------------------------------------------------


def test_login_page_offers_sso_only_when_configured(client, settings):
    settings.OIDC_ISSUER = ""
    without = client.get("/login/?next=/evidence/").content.decode()
    settings.OIDC_ISSUER = "https://idp.example.com"
    settings.OIDC_RP_CLIENT_ID = "ladder"
    with_sso = client.get("/login/?next=/evidence/").content.decode()

    assert "Sign in with SSO" not in without
    assert 'href="/oidc/authenticate/?next=/evidence/"' in with_sso
    assert 'name="password"' in with_sso  # password sign-in stays on by default
    assert client.get("/admin/login/").content.decode().count("Sign in with SSO") == 1


def test_sso_urls_are_404_when_not_configured(client, settings):
    settings.OIDC_ISSUER = ""

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


# --- who gets in ------------------------------------------------------------------------------


def test_a_person_signs_in_by_verified_email_in_any_case(client, org, sso, signals):
    response = sso_sign_in(client, sso, "erin.idp", next_url="/evidence/")

    assert response.status_code == 302
    assert response["Location"] == "/evidence/"
    assert client.get("/evidence/").context["user"] == org.engineer.user
    # the provider said Erin@Example.COM; she is erin@example.com here
    assert signals == [("user_logged_in", {"user": org.engineer.user})]
    assert client.session["oidc_id_token"].count(".") == 2  # kept for id_token_hint


def test_an_unverified_email_is_refused(client, org, sso, signals):
    response = sso_sign_in(client, sso, "pete.idp")

    assert refusal_reason(response) == "email_unverified"
    assert "has not verified the email address pete@example.com" in response.content.decode()
    assert client.get("/evidence/").status_code == 302  # not signed in
    assert [name for name, _ in signals] == ["user_login_failed"]
    # receivers (the audit trail) find why on the request
    refusal = signals[0][1]["request"].sso_refusal
    assert (refusal.reason, refusal.email) == ("email_unverified", "pete@example.com")


def test_an_unknown_person_is_refused_when_creation_is_off(client, org, sso, settings):
    settings.OIDC_CREATE_USER = False
    users = get_user_model().objects.count()

    response = sso_sign_in(client, sso, "newhire.idp")

    assert refusal_reason(response) == "unknown"
    assert "new.hire@example.com is not known to ladder_tracker" in response.content.decode()
    assert get_user_model().objects.count() == users
    assert not Person.objects.filter(email__iexact="new.hire@example.com").exists()


def test_an_unknown_person_is_created_when_creation_is_on(client, org, sso, settings):
    settings.OIDC_CREATE_USER = True

    response = sso_sign_in(client, sso, "newhire.idp")

    assert response.status_code == 302
    person = Person.objects.select_related("user").get(email="new.hire@example.com")
    assert (person.name, person.user.username, person.user.has_usable_password()) == (
        "Nell Hire",
        "new.hire",
        False,
    )
    assert client.get("/ladders/").context["user"] == person.user


def test_a_person_from_servicenow_gets_a_login_at_first_sign_in(client, org, sso):
    # a users sync leaves people without a login (Person.user is null)
    sam = PersonFactory(user=None, email="sam.snow@example.com", name="Sam Snow")
    UserFactory(username="sam.snow", email="samuel@example.com")  # the obvious name is taken

    response = sso_sign_in(client, sso, "sam.idp")
    again = client.get("/ladders/")

    sam.refresh_from_db()
    assert response.status_code == 302
    assert sam.user is not None
    assert (sam.user.username, sam.user.email) == ("sam.snow-2", "sam.snow@example.com")
    assert again.context["user"] == sam.user


def test_an_admin_with_a_profile_signs_in_and_keeps_admin_rights(client, org, sso):
    response = sso_sign_in(client, sso, "ada.idp", next_url="/admin/")

    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_an_inactive_person_is_refused(client, org, sso):
    Person.objects.filter(pk=org.engineer.pk).update(is_active=False)

    assert refusal_reason(sso_sign_in(client, sso, "erin.idp")) == "inactive"


def test_a_provider_error_shows_the_refusal_page(client, sso):
    response = client.get("/oidc/callback/?error=access_denied&state=nope")

    assert refusal_reason(response) == "provider_error"
    assert "access_denied" in response.content.decode()


def test_a_callback_from_someone_elses_sign_in_is_refused(client, org, sso):
    """Login CSRF / code injection: erin's callback URL played in another browser that has
    started a sign-in of its own."""
    start = client.get("/oidc/authenticate/")
    callback = sso.sign_in(start["Location"], "erin.idp")
    other = Client()
    other.get("/oidc/authenticate/")

    response = other.get(callback.removeprefix("http://testserver"))

    assert refusal_reason(response) == "state_mismatch"
    assert other.get("/evidence/").status_code == 302


def test_a_failed_code_exchange_shows_the_refusal_page(client, org, sso, settings, signals):
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token/"  # the rest from discovery

    response = sso_sign_in(client, sso, "erin.idp")

    assert refusal_reason(response) == "provider_error"
    assert [name for name, _ in signals] == ["user_login_failed"]


@pytest.mark.parametrize("order", ["password_first", "sso_first"])
def test_backend_order_does_not_matter(client, org, sso, settings, order):
    """Neither backend answers the other's credentials, so a throttling backend (axes) or a
    reordering in front of them changes nothing."""
    backends = ["apps.people.auth.PasswordBackend", "apps.people.sso.SSOBackend"]
    settings.AUTHENTICATION_BACKENDS = backends if order == "password_first" else backends[::-1]

    assert sso_sign_in(client, sso, "erin.idp").status_code == 302
    client.logout()
    assert client.login(username="omar", password="test-pass-123")
    assert client.session["_auth_user_backend"] == "apps.people.auth.PasswordBackend"


# --- sign-out ---------------------------------------------------------------------------------


def test_sign_out_ends_the_provider_session_too(client, org, sso):
    browser = requests.Session()  # the browser at the provider, keeping its session
    sso_sign_in(client, sso, "erin.idp", browser=browser)
    id_token = client.session["oidc_id_token"]

    out = client.post("/logout/")

    location = urlsplit(out["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{sso.issuer}/logout/"
    assert query["id_token_hint"] == [id_token]
    assert query["post_logout_redirect_uri"] == ["http://testserver/login/"]
    assert client.get("/evidence/").status_code == 302  # signed out here
    at_provider = browser.get(out["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302
    assert at_provider.headers["Location"] == "http://testserver/login/"
    # and there: a new sign-in asks for the provider password again
    again = client.get("/oidc/authenticate/")
    form = browser.get(again["Location"], timeout=10)
    assert "Provider password" in form.text


def test_a_password_session_signs_out_locally(engineer_client, sso):
    out = engineer_client.post("/logout/")

    assert out["Location"] == "/login/"


# --- discovery --------------------------------------------------------------------------------


def test_a_wrong_issuer_is_a_clear_503(client, sso, settings):
    settings.OIDC_ISSUER = sso.url  # no discovery document there (it lives under /o)
    sso_discovery_clear()

    response = client.get("/oidc/authenticate/")

    assert response.status_code == 503
    assert response.context["refusal"].reason == "provider_unavailable"
    with pytest.raises(ProviderUnavailable, match="discovery at"):
        sso_provider()


def test_pinned_endpoints_need_no_discovery(settings):
    sso_discovery_clear()
    settings.OIDC_ISSUER = "http://127.0.0.1:9"  # nothing listens there
    settings.OIDC_RP_CLIENT_ID = "ladder"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "https://idp.example.com/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://idp.example.com/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example.com/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = "https://idp.example.com/jwks"

    provider = sso_provider()

    assert (provider.token_endpoint, provider.end_session_endpoint) == (
        "https://idp.example.com/token",
        "",
    )


# --- the ID token checks the library leaves out -------------------------------------------------


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        pytest.param({}, None, id="as-issued"),
        pytest.param({"aud": "another-client"}, "audience", id="another-audience"),
        pytest.param({"iss": "https://idp.evil.example"}, "issuer", id="another-issuer"),
    ],
)
def test_id_token_issuer_and_audience_are_checked(sso, change, refused):
    """Tokens signed with the provider's own key (its JWKS is fetched over HTTP): only the
    claims differ."""
    key = jwk.JWK.from_pem((sso.workdir / "signing-key.pem").read_bytes())
    now = int(time.time())
    claims = {
        "iss": sso.issuer,
        "aud": sso.client_id,
        "sub": "1",
        "iat": now,
        "exp": now + 60,
        "nonce": "n0",
        **change,
    }
    token = jwt.encode(
        claims,
        key.export_to_pem(private_key=True, password=None),
        algorithm="RS256",
        headers={"kid": key.thumbprint()},
    )
    backend = SSOBackend()
    backend.configure(sso_provider())

    if refused is None:
        assert backend.verify_token(token, nonce="n0")["sub"] == "1"
    else:
        with pytest.raises(SuspiciousOperation, match=refused):
            backend.verify_token(token, nonce="n0")


def test_an_outside_next_is_dropped(client, org, sso):
    response = sso_sign_in(client, sso, "erin.idp", next_url="https://evil.example/")

    assert response["Location"] == "/"
