"""The security audit trail: who did what, when, from where; readable by admins only, and
never holding a secret."""

import pytest

from apps.security.models import SecurityEvent
from apps.security.services import token_create, token_revoke
from tests.factories import PASSWORD, PersonFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/security-events/"
CONNECTIONS = "/api/v1/servicenow/connections/"
SECRET = "s3cr3t-Pa55-never-logged"


def rows(**filters):
    return list(
        SecurityEvent.objects.filter(**filters)
        .order_by("id")
        .values_list("kind", "username", "ip_address", "target", "detail")
    )


def test_token_created_and_revoked_over_the_api_are_recorded_with_the_address(
    engineer_api, engineer
):
    created = engineer_api.post(
        "/api/v1/tokens/", {"name": "laptop"}, format="json", REMOTE_ADDR="10.3.3.3"
    ).json()
    engineer_api.delete(f"/api/v1/tokens/{created['id']}/", REMOTE_ADDR="10.3.3.4")

    (made, made_by), (gone, gone_by) = ((e[:4], e[4]) for e in rows(kind__startswith="token"))
    target = f"token {created['id']} {created['prefix']}… of erin"
    assert made == ("token_created", "erin", "10.3.3.3", target)
    assert made_by == {"name": "laptop", "expires_at": made_by["expires_at"]}
    assert gone == ("token_revoked", "erin", "10.3.3.4", target)
    assert gone_by == {"name": "laptop"}
    assert created["token"] not in str(rows())


def test_revoking_twice_records_once(engineer):
    token, _ = token_create(actor=engineer.user, name="x")

    token_revoke(actor=engineer.user, token=token)
    token_revoke(actor=engineer.user, token=token)

    assert SecurityEvent.objects.filter(kind="token_revoked").count() == 1


def test_replacing_a_connection_secret_records_changed_never_the_value(admin_api, admin_user):
    payload = {
        "name": "Acme",
        "instance_url": "https://acme.service-now.com",
        "auth_type": "basic",
        "username": "integration",
        "password": SECRET,
    }
    connection_id = admin_api.post(CONNECTIONS, payload, format="json").json()["id"]
    admin_api.patch(f"{CONNECTIONS}{connection_id}/", {"page_size": 200}, format="json")
    admin_api.patch(f"{CONNECTIONS}{connection_id}/", {"password": ""}, format="json")

    events = rows(kind="secret_changed")
    target = f"servicenow connection {connection_id} Acme"
    assert events == [
        ("secret_changed", "root", "127.0.0.1", target, {"password": "changed"}),
        ("secret_changed", "root", "127.0.0.1", target, {"password": "cleared"}),
    ]
    everything = str(list(SecurityEvent.objects.values()))
    assert SECRET not in everything


def test_level_and_role_changes_are_recorded(admin_api, engineer):
    admin_api.patch(
        f"/api/v1/people/{engineer.pk}/", {"level": 3, "is_committee": True}, format="json"
    )
    admin_api.patch(f"/api/v1/people/{engineer.pk}/", {"title": "Senior"}, format="json")

    target = f"person {engineer.pk} erin@example.com"
    assert rows(kind__in=["level_changed", "role_changed"]) == [
        (
            "level_changed",
            "root",
            "127.0.0.1",
            target,
            {"level": {"from": 2, "to": 3}, "reason": ""},
        ),
        (
            "role_changed",
            "root",
            "127.0.0.1",
            target,
            {"is_committee": {"from": False, "to": True}},
        ),
    ]


def test_the_trail_is_for_admins_only_newest_first_and_filterable(
    admin_api, engineer_api, engineer
):
    token_create(actor=engineer.user, name="one")
    token_create(actor=engineer.user, name="two")

    everyone = admin_api.get(EVENTS)
    created = admin_api.get(EVENTS, {"kind": "token_created", "username": "ERIN"})
    refused = engineer_api.get(EVENTS)

    assert everyone.status_code == 200
    names = [e["detail"]["name"] for e in created.json()["results"]]
    assert names == ["two", "one"]
    assert set(created.json()["results"][0]) == {
        "id",
        "kind",
        "at",
        "actor",
        "username",
        "ip_address",
        "target",
        "detail",
    }
    assert created.json()["results"][0]["actor"] == engineer.user.pk
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert admin_api.get(EVENTS, {"kind": "nonsense"}).status_code == 400


def test_the_trail_reads_in_a_fixed_number_of_queries(
    admin_api, engineer, django_assert_num_queries
):
    for n in range(20):
        token_create(actor=engineer.user, name=f"t{n}")

    with django_assert_num_queries(2):  # count + page (actors joined)
        response = admin_api.get(EVENTS)

    assert response.json()["count"] == 20


def test_an_sso_style_backend_sign_in_is_recorded_too(client, settings, ladder):
    # any backend going through django.contrib.auth.login fires user_logged_in
    person = PersonFactory(user__username="sso-user", ladder=ladder)
    client.force_login(person.user, backend="django.contrib.auth.backends.ModelBackend")

    (event,) = SecurityEvent.objects.filter(kind="login")
    assert (event.actor_id, event.detail) == (
        person.user.pk,
        {"backend": "django.contrib.auth.backends.ModelBackend"},
    )


def test_the_admin_shows_the_trail_read_only(client, admin_user, engineer):
    token_create(actor=engineer.user, name="laptop")
    client.login(username=admin_user.username, password=PASSWORD)
    event = SecurityEvent.objects.get(kind="token_created")

    listing = client.get("/admin/security/securityevent/")
    detail = client.get(f"/admin/security/securityevent/{event.pk}/change/")
    change = client.post(f"/admin/security/securityevent/{event.pk}/change/", {"kind": "login"})

    assert listing.status_code == 200
    assert "API token created" in listing.text
    assert detail.status_code == 200
    assert 'name="kind"' not in detail.text  # no editable field
    assert change.status_code == 403
    assert client.get("/admin/security/securityevent/add/").status_code == 403
    event.refresh_from_db()
    assert event.kind == "token_created"


def test_making_someone_an_admin_in_the_django_admin_is_recorded(client, admin_user, engineer):
    user = engineer.user
    client.login(username=admin_user.username, password=PASSWORD)
    form = client.get(f"/admin/auth/user/{user.pk}/change/").context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "password"}
    data.update(is_staff="on", is_active="on", groups=[], user_permissions=[])
    data.update(date_joined_0="2026-01-01", date_joined_1="10:00:00")
    data.pop("last_login", None)
    data.pop("date_joined", None)

    response = client.post(f"/admin/auth/user/{user.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    (event,) = SecurityEvent.objects.filter(kind="role_changed")
    assert (event.actor, event.target, event.detail) == (
        admin_user,
        f"user {user.pk} erin",
        {"is_staff": {"from": False, "to": True}},
    )


def test_a_committee_seat_and_level_given_in_the_django_admin_are_recorded(
    client, admin_user, engineer
):
    client.login(username=admin_user.username, password=PASSWORD)
    url = f"/admin/people/person/{engineer.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(level=3, is_committee="on", is_active="on", title="Senior")

    response = client.post(url, data)

    assert response.status_code == 302
    engineer.refresh_from_db()
    assert (engineer.level, engineer.is_committee, engineer.title) == (3, True, "Senior")
    assert engineer.level_changes.get().reason == "changed in the admin"
    assert rows(kind__in=["level_changed", "role_changed"]) == [
        (
            "level_changed",
            "root",
            "127.0.0.1",
            f"person {engineer.pk} erin@example.com",
            {"level": {"from": 2, "to": 3}, "reason": "changed in the admin"},
        ),
        (
            "role_changed",
            "root",
            "127.0.0.1",
            f"person {engineer.pk} erin@example.com",
            {"is_committee": {"from": False, "to": True}},
        ),
    ]


def test_the_django_admin_refuses_a_manager_cycle_as_a_form_error(client, admin_user, ladder):
    boss = PersonFactory(user__username="boss", ladder=ladder)
    report = PersonFactory(user__username="rep", ladder=ladder, manager=boss)
    client.login(username=admin_user.username, password=PASSWORD)
    url = f"/admin/people/person/{boss.pk}/change/"
    data = {
        k: v for k, v in client.get(url).context["adminform"].form.initial.items() if v is not None
    }
    data.update(manager=report.pk, is_active="on")

    response = client.post(url, data)

    assert response.status_code == 200
    assert "that would be a cycle" in response.text
    boss.refresh_from_db()
    assert boss.manager is None


def test_prune_deletes_only_lines_older_than_the_retention(engineer, capsys):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    token_create(actor=engineer.user, name="recent")
    token_create(actor=engineer.user, name="old")
    SecurityEvent.objects.filter(detail__name="old").update(at=timezone.now() - timedelta(days=401))

    call_command("security_events_prune")

    assert capsys.readouterr().out.strip() == "Deleted 1 security events older than 400 days."
    assert [e.detail["name"] for e in SecurityEvent.objects.all()] == ["recent"]


def test_a_person_created_with_a_role_is_recorded(admin_api, ladder):
    response = admin_api.post(
        "/api/v1/people/",
        {"username": "cora", "email": "cora@example.com", "name": "Cora", "is_committee": True},
        format="json",
    )
    admin_api.post(
        "/api/v1/people/",
        {"username": "plain", "email": "plain@example.com", "name": "Plain"},
        format="json",
    )

    assert rows(kind="role_changed") == [
        (
            "role_changed",
            "root",
            "127.0.0.1",
            f"person {response.json()['id']} cora@example.com",
            {"is_committee": {"from": None, "to": True}},
        )
    ]
