"""PASSWORD_LOGIN off: a password works only for superusers and BREAK_GLASS_USERS, on the
sign-in page and the Django admin's login alike; a refusal looks like a wrong password."""

import pytest
from django.contrib.auth import user_login_failed

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def passwords_off(settings):
    settings.PASSWORD_LOGIN = False
    settings.BREAK_GLASS_USERS = ["omar"]


def sign_in(client, username, url="/login/"):
    return client.post(url, {"username": username, "password": PASSWORD, "next": "/ladders/"})


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        pytest.param("erin", False, id="engineer-refused"),
        pytest.param("omar", True, id="break-glass-user"),
        pytest.param("ada", True, id="superuser"),
    ],
)
def test_sign_in_page(client, org, passwords_off, username, allowed):
    response = sign_in(client, username)

    if allowed:
        assert (response.status_code, response["Location"]) == (302, "/ladders/")
    else:
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()
        assert "_auth_user_id" not in client.session


def test_refusal_fires_login_failed(client, org, passwords_off):
    fired = []

    def receiver(sender, credentials, **kwargs):
        fired.append(credentials["username"])

    user_login_failed.connect(receiver)
    try:
        sign_in(client, "erin")
    finally:
        user_login_failed.disconnect(receiver)

    assert fired == ["erin"]


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        pytest.param("staffer", False, id="staff-refused"),
        pytest.param("breakglass", True, id="staff-on-break-glass-list"),
        pytest.param("ada", True, id="superuser"),
    ],
)
def test_admin_login(client, org, settings, username, allowed):
    settings.PASSWORD_LOGIN = False
    settings.BREAK_GLASS_USERS = ["breakglass"]
    UserFactory(username="staffer", is_staff=True)
    UserFactory(username="breakglass", is_staff=True)

    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": PASSWORD, "next": "/admin/"},
    )

    if allowed:
        assert (response.status_code, response["Location"]) == (302, "/admin/")
    else:
        assert response.status_code == 200
        assert "Please enter the correct username and password" in response.content.decode()


def test_login_page_hides_the_form_behind_break_glass(client, passwords_off, settings):
    settings.OIDC_ISSUER = "https://idp.example.com"
    settings.OIDC_RP_CLIENT_ID = "ladder"

    body = client.get("/login/").content.decode()

    assert "Sign in with SSO" in body
    assert "Break-glass sign-in (administrators only)" in body


def test_a_session_survives_turning_passwords_off(engineer_client, settings):
    """The rule is on signing in; existing sessions (SSO or password) stay valid."""
    settings.PASSWORD_LOGIN = False

    assert engineer_client.get("/ladders/").status_code == 200


def test_check_warns_when_nobody_but_break_glass_can_sign_in(settings):
    from apps.people.apps import sign_in_check

    settings.PASSWORD_LOGIN = False
    settings.OIDC_ISSUER = ""

    assert [m.id for m in sign_in_check(None)] == ["people.W001"]


def test_deploy_check_wants_an_https_issuer(settings):
    from apps.people.apps import sign_in_deploy_check

    settings.OIDC_RP_CLIENT_ID = "ladder"
    settings.OIDC_ISSUER = "http://idp.example.com"
    plain = [m.id for m in sign_in_deploy_check(None)]
    settings.OIDC_ISSUER = "https://idp.example.com"

    assert (plain, sign_in_deploy_check(None)) == (["people.E002"], [])
