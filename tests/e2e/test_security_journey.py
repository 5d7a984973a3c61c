"""In a browser: a guessed password locks the sign-in page with a message; an engineer
makes an API token, copies it once, uses it, and revokes it."""

import pytest
import requests

from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _try(page, live_server, password: str) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill("erin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_guessing_locks_the_sign_in_page_with_a_message(page, live_server, engineer):
    for _ in range(5):
        _try(page, live_server, "wrong-guess")
    _try(page, live_server, PASSWORD)

    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Too many sign-in attempts. Try again in 15 minutes."
    assert page.url == f"{live_server.url}/login/"
    assert page.get_by_label("Username").input_value() == "erin"


def test_an_engineer_makes_uses_and_revokes_a_token(page, live_server, engineer):
    _try(page, live_server, PASSWORD)
    page.wait_for_url(f"{live_server.url}/ladders/ai-ml-engineer/")

    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("laptop script")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").inner_text()
    me = requests.get(
        f"{live_server.url}/api/v1/people/me/",
        headers={"Authorization": f"Token {secret}"},
        timeout=10,
    )
    assert me.json()["username"] == "erin"

    page.reload()  # a GET now: the secret is gone from the page for good
    assert page.get_by_test_id("new-token").count() == 0
    row = page.get_by_role("row", name="laptop script")
    assert secret[:8] in row.inner_text()
    row.get_by_role("button", name="Revoke laptop script").click()

    assert (
        page.get_by_role("status").inner_text() == "Revoked “laptop script” (" + secret[:8] + "…)."
    )
    again = requests.get(
        f"{live_server.url}/api/v1/people/me/",
        headers={"Authorization": f"Token {secret}"},
        timeout=10,
    )
    assert again.status_code == 401
