"""API rate limits: per address for anonymous calls, per user for signed-in ones; a 429
with Retry-After in the API's error envelope."""

import json

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db

URL = "/api/v1/ladders/"


@pytest.fixture(autouse=True)
def counts_from_zero():
    cache.clear()
    yield
    cache.clear()


def test_anonymous_calls_are_limited_per_address(api, settings):
    # the schema is what anonymous callers may read (DRF throttles after the permission
    # check, so elsewhere they get their 401 first)
    settings.API_THROTTLE_ANON = "1/minute"

    schema = {"REMOTE_ADDR": "10.0.0.1", "HTTP_ACCEPT": "application/vnd.oai.openapi+json"}
    first = api.get("/api/schema/", **schema)
    second = api.get("/api/schema/", **schema)
    from_elsewhere = api.get(URL, REMOTE_ADDR="10.0.0.2")

    assert first.status_code == 200
    assert second.status_code == 429
    assert 1 <= int(second["Retry-After"]) <= 60
    assert json.loads(second.content)["error"]["code"] == "throttled"
    assert from_elsewhere.status_code == 401


def test_signed_in_calls_are_limited_per_user_with_the_error_envelope(api, engineer, settings):
    settings.API_THROTTLE_USER = "2/hour"
    api.force_authenticate(engineer.user)

    first, second, third = (api.get(URL) for _ in range(3))

    assert (first.status_code, second.status_code) == (200, 200)
    assert third.status_code == 429
    assert 3500 <= int(third["Retry-After"]) <= 3600
    body = third.json()
    assert body["error"]["code"] == "throttled"
    assert body["error"]["message"].startswith("Request was throttled.")


def test_one_users_limit_does_not_touch_another(api, engineer, admin_user, settings):
    settings.API_THROTTLE_USER = "1/minute"
    api.force_authenticate(engineer.user)
    api.get(URL)
    assert api.get(URL).status_code == 429

    api.force_authenticate(admin_user)
    assert api.get(URL).status_code == 200
