"""Single sign-on in the browser: Chromium goes from the "Sign in with SSO" button to the
real OpenID provider's login form (django-oauth-toolkit in its own process,
tests/oidc_provider) and back to the engineer's evidence page; sign-out ends both
sessions; an unverified email and an unknown person are refused (or the latter created,
when OIDC_CREATE_USERS is on)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from apps.people.models import Person
from tests.factories import EvidenceFactory
from tests.oidc_provider.provider import PROVIDER_PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def sso_live(sso, live_server):
    """The live server as the provider's relying party (its client accepts
    http://localhost on any port)."""
    assert live_server.url.startswith("http://localhost:")
    return sso


def at_provider_sign_in(page, username: str) -> None:
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("Provider username").fill(username)
    page.get_by_label("Provider password").fill(PROVIDER_PASSWORD)
    page.get_by_role("button", name="Continue").click()


def test_engineer_signs_in_with_sso_and_out_again(page, live_server, org, sso_live):
    EvidenceFactory(person=org.engineer, title="Cut p95 latency by 40%")

    page.goto(f"{live_server.url}/evidence/")
    page.wait_for_url(re.compile(r".*/login/\?next=/evidence/$"))
    page.get_by_role("link", name="Sign in with SSO").click()
    at_provider_sign_in(page, "erin.idp")

    page.wait_for_url(f"{live_server.url}/evidence/")
    expect(page.get_by_role("heading", name="My evidence")).to_be_visible()
    expect(page.get_by_text("Cut p95 latency by 40%")).to_be_visible()
    expect(page.locator(".who")).to_contain_text(org.engineer.name)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{live_server.url}/login/")
    # signed out at the provider too: SSO asks for the provider password again
    page.get_by_role("link", name="Sign in with SSO").click()
    expect(page.get_by_label("Provider password")).to_be_visible()


def test_an_unverified_email_is_refused(page, live_server, org, sso_live):
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with SSO").click()
    at_provider_sign_in(page, "pete.idp")

    expect(page.get_by_role("heading", name="We could not sign you in")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(
        "has not verified the email address pete@example.com"
    )
    page.goto(f"{live_server.url}/evidence/")
    page.wait_for_url(re.compile(r".*/login/\?next=/evidence/$"))


def test_an_unknown_person_is_refused_then_created_when_allowed(
    page, live_server, org, sso_live, settings
):
    settings.OIDC_CREATE_USER = False
    page.goto(f"{live_server.url}/login/")
    page.get_by_role("link", name="Sign in with SSO").click()
    at_provider_sign_in(page, "newhire.idp")

    expect(page.get_by_role("alert")).to_contain_text(
        "new.hire@example.com is not known to ladder_tracker"
    )
    assert not Person.objects.filter(email="new.hire@example.com").exists()

    settings.OIDC_CREATE_USER = True
    page.get_by_role("link", name="Back to sign-in").click()
    # still signed in at the provider: straight back, and in
    page.get_by_role("link", name="Sign in with SSO").click()
    expect(page.locator(".who")).to_contain_text("Nell Hire")
    assert Person.objects.get(email="new.hire@example.com").user.username == "new.hire"
