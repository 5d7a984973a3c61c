"""My packets: "Start a packet" is not offered for a cycle where an open packet exists; the
page links to that packet instead."""

import pytest
from django.test import Client

from apps.packets import services
from tests.factories import PromotionCycleFactory

pytestmark = pytest.mark.django_db


def _page(person) -> str:
    client = Client()
    client.force_login(person.user)
    return client.get("/packets/").content.decode()


def test_an_open_packet_replaces_the_start_form_with_a_link_to_it(org, cycle):
    packet = services.packet_create(person=org.engineer, actor=org.engineer.user, cycle=cycle)

    html = _page(org.engineer)

    assert '<button type="submit">Start a packet</button>' not in html
    assert 'action="/packets/new/"' not in html
    assert "Your open packet" in html
    assert (
        f'You have an open packet for level 3 in H2 (draft): <a href="/packets/{packet.pk}/">'
        "continue your level 3 packet</a>."
    ) in html


def test_another_open_cycle_is_still_offered(org, cycle):
    other = PromotionCycleFactory(name="H3")
    services.packet_create(person=org.engineer, actor=org.engineer.user, cycle=cycle)

    html = _page(org.engineer)

    assert '<button type="submit">Start a packet</button>' in html
    assert f'<option value="{other.pk}">H3</option>' in html
    assert f'<option value="{cycle.pk}"' not in html
    assert "You have an open packet for level 3 in H2" in html


def test_a_withdrawn_packet_offers_the_form_again(org, cycle):
    packet = services.packet_create(person=org.engineer, actor=org.engineer.user, cycle=cycle)
    services.packet_withdraw(packet_id=packet.pk, actor=org.engineer.user)

    html = _page(org.engineer)

    assert '<button type="submit">Start a packet</button>' in html
    assert "You have an open packet" not in html
