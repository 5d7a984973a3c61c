"""Password guessing is stopped per account and per address, on /login/ and /admin/login/,
and every attempt lands in the audit trail."""

from datetime import timedelta

import pytest
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt

from apps.security.models import SecurityEvent
from tests.factories import PASSWORD, AdminUserFactory, UserFactory

pytestmark = pytest.mark.django_db

LIMIT = 5  # AXES_FAILURE_LIMIT's default


def sign_in(client, username, password, *, path="/login/", address="10.0.0.1", **extra):
    return client.post(
        path, {"username": username, "password": password}, REMOTE_ADDR=address, **extra
    )


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused_with_a_message(client):
    UserFactory(username="erin")

    for _ in range(30):
        sign_in(client, "erin", "wrong")
    response = sign_in(client, "erin", PASSWORD)

    assert response.status_code == 429
    assert not signed_in(client)
    assert "Too many sign-in attempts. Try again in 15 minutes." in response.text
    assert int(response["Retry-After"]) in range(14 * 60, 15 * 60 + 1)
    assert 'value="erin"' in response.text  # the form is still there, name kept


def test_the_lock_starts_at_the_limit_and_a_success_before_it_resets_the_count(client):
    UserFactory(username="erin")

    for _ in range(LIMIT - 1):
        assert sign_in(client, "erin", "wrong").status_code == 200
    assert sign_in(client, "erin", PASSWORD).status_code == 302  # 4 failures: still fine
    client.logout()
    for _ in range(LIMIT - 1):
        sign_in(client, "erin", "wrong")
    assert sign_in(client, "erin", PASSWORD).status_code == 302  # the count started again
    client.logout()
    for _ in range(LIMIT):
        sign_in(client, "erin", "wrong")

    assert sign_in(client, "erin", PASSWORD).status_code == 429


def test_admin_sign_in_is_locked_too(client):
    AdminUserFactory(username="root")

    for _ in range(LIMIT):
        sign_in(client, "root", "wrong", path="/admin/login/")
    response = sign_in(client, "root", PASSWORD, path="/admin/login/")

    assert response.status_code == 429
    assert not signed_in(client)
    assert "Too many sign-in attempts. Try again in 15 minutes." in response.text
    assert "Django administration" in response.text  # the admin's own login page


def test_one_address_guessing_many_accounts_is_locked(client):
    UserFactory(username="erin")

    for n in range(LIMIT):
        sign_in(client, f"guess{n}", "wrong", address="10.0.0.9")

    assert sign_in(client, "erin", PASSWORD, address="10.0.0.9").status_code == 429
    assert sign_in(client, "erin", PASSWORD, address="10.0.0.10").status_code == 302


def test_one_account_guessed_from_many_addresses_is_locked(client):
    UserFactory(username="erin")

    for n in range(LIMIT):
        sign_in(client, "erin", "wrong", address=f"10.0.1.{n}")

    assert sign_in(client, "erin", PASSWORD, address="10.0.2.1").status_code == 429


def test_a_forged_forwarded_for_header_does_not_give_a_fresh_address(client):
    UserFactory(username="erin")

    for n in range(LIMIT):
        sign_in(client, f"guess{n}", "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    response = sign_in(client, "erin", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429


def test_the_lock_ends_after_the_cool_off(client):
    UserFactory(username="erin")
    for _ in range(LIMIT):
        sign_in(client, "erin", "wrong")
    assert sign_in(client, "erin", PASSWORD).status_code == 429

    AccessAttempt.objects.update(
        attempt_time=AccessAttempt.objects.get().attempt_time - timedelta(minutes=16)
    )

    assert sign_in(client, "erin", PASSWORD).status_code == 302


def test_sign_ins_failures_and_the_lock_out_are_audited_with_the_address(client):
    user = UserFactory(username="erin")

    sign_in(client, "erin", PASSWORD, address="10.1.1.1")
    client.logout()
    for _ in range(LIMIT):
        sign_in(client, "erin", "wrong", address="10.2.2.2")

    rows = SecurityEvent.objects.order_by("id").values_list(
        "kind", "username", "ip_address", "actor"
    )
    events = list(rows)
    assert events[0] == ("login", "erin", "10.1.1.1", user.pk)
    assert sorted(events[1:]) == sorted(
        [("login_failed", "erin", "10.2.2.2", None)] * LIMIT
        + [("lockout", "erin", "10.2.2.2", None)]
    )
    assert "wrong" not in str(list(SecurityEvent.objects.values("detail")))


def test_failures_naming_no_account_do_not_lock_everyone_out(client, rf):
    # e.g. an SSO backend's callback: authenticate() with a request but no username
    from django.contrib.auth import authenticate

    UserFactory(username="erin")
    for n in range(LIMIT):
        request = rf.post("/oidc/callback/", REMOTE_ADDR=f"10.5.5.{n}")
        assert authenticate(request, code="bad") is None

    # the same anonymous failures from one address do lock that address
    for _ in range(LIMIT):
        authenticate(rf.post("/oidc/callback/", REMOTE_ADDR="10.6.6.6"), code="bad")

    fresh = rf.post("/oidc/callback/", REMOTE_ADDR="10.7.7.7")
    assert AxesProxyHandler.is_allowed(fresh, {"username": None})  # no shared bucket
    assert sign_in(client, "erin", PASSWORD, address="10.5.5.99").status_code == 302
    client.logout()
    assert sign_in(client, "erin", PASSWORD, address="10.6.6.6").status_code == 429
