"""API tokens: hashed at rest, expiring, several per user with a name, managed from the API
and the "API tokens" page; failures count towards the address's lock-out."""

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import connection
from django.utils import timezone

from apps.security.models import ApiToken, SecurityEvent
from apps.security.services import token_create
from tests.factories import PASSWORD, UserFactory, api_client

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"
ME = "/api/v1/people/me/"


def auth(plain: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Token {plain}"}


def test_create_shows_the_secret_once_and_stores_only_its_hash(engineer_api, engineer):
    created = engineer_api.post(TOKENS, {"name": "laptop"}, format="json")
    listed = engineer_api.get(TOKENS)

    assert created.status_code == 201
    body = created.json()
    plain = body["token"]
    assert plain.startswith("lt_") and len(plain) >= 40
    row = ApiToken.objects.get()
    assert body == {
        "id": row.pk,
        "name": "laptop",
        "prefix": plain[:8],
        "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
        "expires_at": row.expires_at.isoformat().replace("+00:00", "Z"),
        "last_used_at": None,
        "expired": False,
        "token": plain,
    }
    assert row.key_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in str(ApiToken.objects.values().get())
    assert "token" not in listed.json()["results"][0]
    assert plain not in listed.text
    assert row.expires_at - row.created_at == timedelta(days=90)


def test_a_token_works_and_records_its_last_use(api, engineer):
    token, plain = token_create(actor=engineer.user, name="script")

    response = api.get(ME, **auth(plain))

    assert response.status_code == 200
    assert response.json()["username"] == "erin"
    token.refresh_from_db()
    assert timezone.now() - token.last_used_at < timedelta(seconds=10)


def test_several_tokens_per_user_each_revocable(api, engineer_api, engineer):
    laptop, laptop_plain = token_create(actor=engineer.user, name="laptop")
    ci, ci_plain = token_create(actor=engineer.user, name="ci")

    revoked = engineer_api.delete(f"{TOKENS}{laptop.pk}/")

    assert revoked.status_code == 204
    assert [t["name"] for t in engineer_api.get(TOKENS).json()["results"]] == ["ci"]
    refused = api.get(ME, **auth(laptop_plain))
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Token revoked."
    assert api.get(ME, **auth(ci_plain)).status_code == 200
    assert engineer_api.delete(f"{TOKENS}{laptop.pk}/").status_code == 404


def test_someone_elses_token_is_a_404(engineer_api, ladder):
    other = UserFactory(username="otto")
    token, _ = token_create(actor=other, name="theirs")

    assert engineer_api.delete(f"{TOKENS}{token.pk}/").status_code == 404
    assert engineer_api.get(TOKENS).json()["count"] == 0
    token.refresh_from_db()
    assert token.revoked_at is None


def test_an_expired_token_is_refused_with_the_reason(api, engineer):
    token, plain = token_create(actor=engineer.user, name="old", expires_in_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = api.get(ME, **auth(plain))

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Token expired; create a new one."
    assert response["WWW-Authenticate"] == "Token"


def test_expiry_is_chosen_within_the_limit(engineer_api, settings):
    settings.API_TOKEN_MAX_DAYS = 30

    ok = engineer_api.post(TOKENS, {"name": "short", "expires_in_days": 7}, format="json")
    too_long = engineer_api.post(TOKENS, {"name": "long", "expires_in_days": 31}, format="json")
    nameless = engineer_api.post(TOKENS, {"expires_in_days": 7}, format="json")

    assert ok.status_code == 201
    row = ApiToken.objects.get(name="short")
    assert row.expires_at - row.created_at == timedelta(days=7)
    assert too_long.status_code == 400
    assert too_long.json()["error"]["detail"] == {"expires_in_days": ["At most 30 days."]}
    assert nameless.status_code == 400
    assert nameless.json()["error"]["message"] == "name: This field is required."


@pytest.mark.parametrize(
    "header",
    ["Token", "Token a b", "Token lt_not-a-real-token", "Token \xff"],
    ids=["no-key", "two-parts", "unknown", "not-utf8"],
)
def test_bad_token_headers_are_json_401s(api, db, header):
    response = api.get(ME, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_failed_tokens_lock_the_address_out_even_for_a_good_token(api, engineer):
    _, plain = token_create(actor=engineer.user, name="script")

    answers = [
        api.get(ME, REMOTE_ADDR="10.9.9.9", **auth(f"lt_guess{n}")).status_code for n in range(5)
    ]
    locked = api.get(ME, REMOTE_ADDR="10.9.9.9", **auth(plain))
    elsewhere = api.get(ME, REMOTE_ADDR="10.9.9.10", **auth(plain))

    assert answers == [401, 401, 401, 401, 429]
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "throttled"
    assert "Try again in 15 minutes" in locked.json()["error"]["message"]
    assert int(locked["Retry-After"]) > 14 * 60
    assert elsewhere.status_code == 200
    kinds = SecurityEvent.objects.filter(ip_address="10.9.9.9").values_list("kind", flat=True)
    assert sorted(kinds) == ["lockout"] * 2 + ["login_failed"] * 5
    assert all(
        e.detail["method"] == "token" for e in SecurityEvent.objects.filter(ip_address="10.9.9.9")
    )


def test_clear_text_drf_tokens_are_hashed_by_the_migration_and_keep_working(api, engineer):
    import importlib

    migration = importlib.import_module("apps.security.migrations.0002_hash_existing_tokens")
    from django.apps import apps

    key = "0123456789abcdef0123456789abcdef01234567"  # DRF's 40 hex characters
    # what the migration uses of its schema editor (a real one cannot open inside the
    # test's transaction on SQLite)
    editor = SimpleNamespace(connection=connection, quote_name=connection.ops.quote_name)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer,"
            " created timestamp with time zone)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [key, engineer.user.pk, timezone.now()],
        )
        migration.hash_existing_tokens(apps, editor)
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        left = cursor.fetchone()[0]
        cursor.execute("DROP TABLE authtoken_token")

    assert left == 0
    row = ApiToken.objects.get()
    assert (row.user_id, row.prefix, row.name) == (engineer.user.pk, "01234567", "migrated token")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert api.get(ME, **auth(key)).json()["username"] == "erin"


# --- the page ----------------------------------------------------------------------------


def test_the_tokens_page_creates_shows_once_and_revokes(engineer_client, api, engineer):
    home = engineer_client.get("/ladders/")
    assert 'href="/account/tokens/"' in home.text

    posted = engineer_client.post("/account/tokens/", {"name": "export", "expires_in_days": 30})
    created = engineer_client.get(posted["Location"])
    plain = ApiToken.objects.get()
    secret = created.text.split('data-testid="new-token">')[1].split("<")[0]
    again = engineer_client.get("/account/tokens/")

    assert posted.status_code == 302
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    assert plain.expires_at - plain.created_at == timedelta(days=30)
    assert plain.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in again.text
    assert f"{plain.prefix}…" in again.text
    assert api.get(ME, **auth(secret)).status_code == 200

    revoked = engineer_client.post(f"/account/tokens/{plain.pk}/revoke/", follow=True)

    assert "Revoked “export”" in revoked.text
    assert "No tokens yet." in revoked.text
    assert api.get(ME, **auth(secret)).status_code == 401


def test_the_tokens_page_names_the_bad_field(engineer_client):
    response = engineer_client.post("/account/tokens/", {"name": "", "expires_in_days": 0})

    assert response.status_code == 400
    assert "This field is required." in response.text
    assert "Ensure this value is greater than or equal to 1." in response.text
    assert not ApiToken.objects.exists()


def test_revoking_someone_elses_token_from_the_page_is_a_404(engineer_client, db):
    token, _ = token_create(actor=UserFactory(username="otto"), name="theirs")

    assert engineer_client.post(f"/account/tokens/{token.pk}/revoke/").status_code == 404


def test_the_admin_lists_tokens_without_their_secret(client, admin_user, engineer):
    token, plain = token_create(actor=engineer.user, name="laptop")
    client.login(username=admin_user.username, password=PASSWORD)

    listing = client.get("/admin/security/apitoken/")
    detail = client.get(f"/admin/security/apitoken/{token.pk}/change/")

    assert listing.status_code == 200
    assert "laptop" in listing.text and token.prefix in listing.text
    for page in (listing, detail):
        assert plain not in page.text
        assert token.key_hash not in page.text
    assert client.get("/admin/security/apitoken/add/").status_code == 403


def test_a_token_request_costs_a_fixed_number_of_queries(api, engineer, django_assert_num_queries):
    token, plain = token_create(actor=engineer.user, name="script")
    api.get(TOKENS, **auth(plain))  # the first use records last_used_at

    # the address's lock-out check, the token with its user, then the view's count + page
    with django_assert_num_queries(4):
        response = api.get(TOKENS, **auth(plain))

    assert response.json()["count"] == 1


def test_a_failed_token_request_keeps_no_secret_in_the_attempt_record(api, admin_user):
    from axes.models import AccessAttempt

    api.post(
        "/api/v1/servicenow/connections/",
        {"name": "x", "password": "pw-in-clear", "client_secret": "cs-in-clear"},
        HTTP_AUTHORIZATION="Token lt_wrong",
    )

    stored = str(list(AccessAttempt.objects.values()))
    assert AccessAttempt.objects.count() == 1
    assert "pw-in-clear" not in stored and "cs-in-clear" not in stored
    assert "lt_wrong" not in stored


@pytest.mark.parametrize("token_id", ["-1e-05", "%C3%AD", "99999999999999999999999"])
def test_revoking_a_malformed_or_huge_token_id_is_a_404(token_id):
    user = UserFactory()
    response = api_client(user).delete(f"/api/v1/tokens/{token_id}/")
    assert response.status_code == 404
