"""The 404 and 403 pages: the site's own layout with its navigation, a message for people
and a way back; under /api/ the same errors stay JSON."""

from django.test import Client

from tests.factories import PacketFactory


def _signed_in(person) -> Client:
    client = Client()
    client.force_login(person.user)
    return client


def test_a_missing_page_has_the_navigation_a_message_and_a_way_back(org):
    response = _signed_in(org.engineer).get("/evidence/999999/")

    assert response.status_code == 404
    html = response.content.decode()
    assert '<nav aria-label="Main">' in html
    assert 'href="/evidence/"' in html  # the nav's "My evidence"
    assert "<h1>Page not found</h1>" in html
    assert "/evidence/999999/" in html
    assert '<a href="/">Back to the start page</a>' in html


def test_a_missing_page_offers_sign_in_when_signed_out(db):
    response = Client().get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Page not found</h1>" in html
    assert 'href="/login/"' in html


def test_a_forbidden_page_has_the_navigation_the_reason_and_a_way_back(org, cycle):
    packet = PacketFactory(person=org.engineer, cycle=cycle, state="draft")

    response = _signed_in(org.manager).post(f"/packets/{packet.pk}/save/", {"builder": "1"})

    assert response.status_code == 403
    html = response.content.decode()
    assert '<nav aria-label="Main">' in html
    assert "<h1>You may not do that</h1>" in html
    assert '<a href="/">Back to the start page</a>' in html


def test_api_errors_stay_json(org):
    client = org.client("engineer")

    missing = client.get("/api/v1/evidence/999999/")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json()["error"]["code"] == "not_found"

    unrouted = client.get("/api/v1/no-such-endpoint/")
    assert unrouted.status_code == 404
    assert unrouted.json()["error"]["code"] == "not_found"
