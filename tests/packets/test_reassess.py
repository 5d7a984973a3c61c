"""A reviewer who changes a saved assessment leaves the old one in the timeline: a
"reassess" PacketEvent with before/after, actor and time (issue 13, "nothing overwritten
silently")."""

import pytest

from apps.notifications.services import waiting_reminders_send
from apps.packets.models import Assessment, PacketEvent
from tests.factories import PacketFactory, api_client, level_codes

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(org, ladder_version):
    return PacketFactory(person=org.engineer, state="submitted")


def _assess(person, packet, ratings: dict, comment=""):
    return api_client(person).post(
        f"/api/v1/packets/{packet.pk}/assess/",
        {
            "assessments": [
                {"expectation": c, "rating": r, "comment": comment} for c, r in ratings.items()
            ]
        },
        format="json",
    )


def test_changing_a_rating_keeps_the_old_one_as_an_event(org, submitted, ladder_version):
    code = level_codes(ladder_version, submitted.target_level)[0]
    assert _assess(org.manager, submitted, {code: "meets"}, "ok").status_code == 200
    # a first assessment is the Assessment row itself: no event
    assert not PacketEvent.objects.filter(packet=submitted, action="reassess").exists()

    assert _assess(org.manager, submitted, {code: "exceeds"}, "better on reread").status_code == 200

    event = PacketEvent.objects.get(packet=submitted, action="reassess")
    assert event.actor == org.manager.user
    assert event.at is not None
    assert (event.from_state, event.to_state) == ("", "")  # moves no state
    assert event.detail == {
        "expectation": code,
        "reviewer": {"id": org.manager.pk, "name": org.manager.name},
        "state": "submitted",
        "before": {"rating": "meets", "comment": "ok"},
        "after": {"rating": "exceeds", "comment": "better on reread"},
    }
    row = Assessment.objects.get(packet=submitted, reviewer=org.manager, expectation__code=code)
    assert (row.rating, row.comment) == ("exceeds", "better on reread")


def test_saving_the_same_values_again_writes_no_event(org, submitted, ladder_version):
    codes = level_codes(ladder_version, submitted.target_level)[:2]
    ratings = dict.fromkeys(codes, "meets")
    assert _assess(org.manager, submitted, ratings).status_code == 200
    assert _assess(org.manager, submitted, ratings).status_code == 200
    assert _assess(org.manager, submitted, {codes[0]: "below"}).status_code == 200
    events = list(PacketEvent.objects.filter(packet=submitted, action="reassess"))
    assert [e.detail["expectation"] for e in events] == [codes[0]]


def test_the_events_api_and_the_timeline_show_before_and_after(org, submitted, ladder_version):
    code = level_codes(ladder_version, submitted.target_level)[0]
    _assess(org.manager, submitted, {code: "meets"})
    _assess(org.manager, submitted, {code: "below"}, "missing depth")

    events = api_client(org.engineer).get(f"/api/v1/packets/{submitted.pk}/events/").json()
    reassess = [e for e in events if e["action"] == "reassess"]
    assert len(reassess) == 1
    assert reassess[0]["actor"] == "omar"
    assert reassess[0]["detail"]["before"] == {"rating": "meets", "comment": ""}
    assert reassess[0]["detail"]["after"] == {"rating": "below", "comment": "missing depth"}

    from django.test import Client

    page = Client()
    page.force_login(org.manager.user)
    html = page.get(f"/packets/{submitted.pk}/review/").content.decode()
    assert f'changed the assessment of <span class="code">{code}</span>' in html
    assert "<del>meets</del> → <ins>below</ins>" in html
    assert "<ins>missing depth</ins>" in html


def test_endorsing_with_changed_ratings_records_each_change(org, submitted, ladder_version):
    codes = level_codes(ladder_version, submitted.target_level)
    _assess(org.manager, submitted, dict.fromkeys(codes, "meets"))
    changed = dict.fromkeys(codes, "meets") | {codes[1]: "exceeds"}
    response = api_client(org.manager).post(
        f"/api/v1/packets/{submitted.pk}/endorse/",
        {"assessments": [{"expectation": c, "rating": r} for c, r in changed.items()]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    events = PacketEvent.objects.filter(packet=submitted).order_by("id")
    assert [e.action for e in events][-2:] == ["reassess", "endorse"]
    assert events.filter(action="reassess").get().detail["after"]["rating"] == "exceeds"


def test_a_reassess_event_does_not_restart_the_waiting_reminder(
    org, submitted, ladder_version, settings
):
    """The reminder reads the event that put the packet in its state (to_state): a reassess
    event has none, so a reviewer's edit does not reset the wait."""
    from datetime import timedelta

    from django.utils import timezone

    settings.NOTIFICATIONS_WAITING_REMINDER_DAYS = 3
    code = level_codes(ladder_version, submitted.target_level)[0]
    _assess(org.manager, submitted, {code: "meets"})
    _assess(org.manager, submitted, {code: "exceeds"})
    PacketEvent.objects.filter(packet=submitted).update(at=timezone.now() - timedelta(days=5))
    PacketEvent.objects.filter(packet=submitted, action="reassess").update(at=timezone.now())
    assert waiting_reminders_send() == 1
