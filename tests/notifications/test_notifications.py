"""Notifications: mails with absolute links in text and HTML, preferences respected,
reminders and the digest sent once, the beat tasks registered."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from apps.evidence.models import Evidence, EvidenceLink
from apps.notifications import tasks
from apps.notifications.checks import site_url_deploy_check
from apps.notifications.models import NotificationPreference, NotificationSent
from apps.notifications.services import (
    candidate_digest_send,
    deadline_reminders_send,
    waiting_reminders_send,
)
from apps.packets.models import PacketEvent
from ladder_tracker.celery import app as celery_app
from tests.factories import (
    EvidenceFactory,
    PacketFactory,
    PromotionCycleFactory,
    api_client,
    level_expectations,
)

SITE = "https://ladder.test"  # settings/test.py


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def assert_link(message, url: str) -> None:
    """The absolute link is in both parts, and the HTML part has it as a link."""
    assert url.startswith("https://ladder.test/")
    assert url in message.body
    assert f'href="{url}"' in html_of(message)
    assert f"{SITE}/settings/notifications/" in message.body  # how to choose fewer mails


def prefer(person, **choices) -> None:
    NotificationPreference.objects.update_or_create(person=person, defaults=choices)


def age_event(packet, state: str, days: int) -> None:
    PacketEvent.objects.filter(packet=packet, to_state=state).update(
        at=timezone.now() - timedelta(days=days)
    )


# --- after a transition -----------------------------------------------------------------


def endorse(org, packet, codes):
    body = {
        "comment": "Ready <for> committee",
        "assessments": [{"expectation": c, "rating": "meets"} for c in codes],
    }
    return api_client(org.manager).post(
        f"/api/v1/packets/{packet.pk}/endorse/", body, format="json"
    )


@pytest.fixture
def submitted(org, cycle, engineer_evidence):
    return PacketFactory(
        person=org.engineer, cycle=cycle, state="submitted", evidence=engineer_evidence
    )


@pytest.fixture
def codes(ladder_version):
    return [e.code for e in level_expectations(ladder_version, 3)]


def test_endorsement_mails_the_engineer_and_the_committee_in_text_and_html(
    org, submitted, codes, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert endorse(org, submitted, codes).status_code == 200

    by_to = {m.to[0]: m for m in mail.outbox}
    assert sorted(by_to) == sorted([org.engineer.email, org.committee.email])
    mine = by_to[org.engineer.email]
    assert mine.subject == "[ladder_tracker] Your packet for level 3: endorsed"
    assert mine.from_email == settings.DEFAULT_FROM_EMAIL
    assert_link(mine, f"{SITE}/packets/{submitted.pk}/")
    assert "Ready <for> committee" in mine.body  # text is not HTML-escaped
    assert "Ready &lt;for&gt; committee" in html_of(mine)  # HTML is
    theirs = by_to[org.committee.email]
    assert theirs.subject == "[ladder_tracker] Erin's packet: endorsed"
    assert "Erin's packet for level 3" in theirs.body
    assert_link(theirs, f"{SITE}/packets/{submitted.pk}/")


def test_preferences_turn_off_transition_mails(
    org, submitted, codes, django_capture_on_commit_callbacks
):
    prefer(org.engineer, packet_updates=False)
    prefer(org.committee, review_requests=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert endorse(org, submitted, codes).status_code == 200
    assert mail.outbox == []


def test_a_failing_mail_server_does_not_undo_the_transition(
    org, submitted, codes, django_capture_on_commit_callbacks, settings
):
    settings.EMAIL_BACKEND = "tests.notifications.broken_backend.BrokenBackend"
    with django_capture_on_commit_callbacks(execute=True):
        response = endorse(org, submitted, codes)
    assert response.status_code == 200
    submitted.refresh_from_db()
    assert submitted.state == "endorsed"


# --- deadline reminders -------------------------------------------------------------------


def test_deadline_reminder_goes_to_drafts_due_within_n_days_once(org, ladder, engineer_evidence):
    due = PromotionCycleFactory(name="Due soon", deadline_in=timedelta(days=2))
    later = PromotionCycleFactory(name="Later", deadline_in=timedelta(days=10))
    draft = PacketFactory(person=org.engineer, cycle=due, evidence=engineer_evidence)
    pete_ev = [EvidenceFactory(person=org.peer)]
    PacketFactory(person=org.peer, cycle=due, state="submitted", evidence=pete_ev)  # not a draft
    otto_ev = [EvidenceFactory(person=org.other_engineer)]
    PacketFactory(person=org.other_engineer, cycle=later, evidence=otto_ev)  # not due yet

    assert deadline_reminders_send() == 1
    [message] = mail.outbox
    assert message.to == [org.engineer.email]
    assert message.subject == (
        f"[ladder_tracker] Due soon: submit your packet by {due.submission_deadline:%Y-%m-%d}"
    )
    assert "1 day left" in message.body or "2 days left" in message.body
    assert_link(message, f"{SITE}/packets/{draft.pk}/")

    assert deadline_reminders_send() == 0  # the next beat repeats nothing
    assert len(mail.outbox) == 1
    assert NotificationSent.objects.get().key == (
        f"packet:{draft.pk}:deadline:{due.submission_deadline.isoformat()}"
    )

    # a deadline moved is a new deadline: one more reminder
    due.submission_deadline += timedelta(days=1)
    due.save()
    assert deadline_reminders_send() == 1
    assert len(mail.outbox) == 2


def test_deadline_reminder_days_is_a_setting_and_preferences_hold(org, engineer_evidence, settings):
    due = PromotionCycleFactory(deadline_in=timedelta(days=5))
    PacketFactory(person=org.engineer, cycle=due, evidence=engineer_evidence)
    assert deadline_reminders_send() == 0  # default 3 days: not yet

    settings.NOTIFICATIONS_DEADLINE_REMINDER_DAYS = 7
    prefer(org.engineer, deadline_reminders=False)
    assert deadline_reminders_send() == 0
    assert NotificationSent.objects.count() == 0  # nothing recorded for one who opted out

    prefer(org.engineer, deadline_reminders=True)
    assert deadline_reminders_send() == 1


def test_a_failed_reminder_is_not_recorded_and_goes_out_next_time(org, engineer_evidence, settings):
    due = PromotionCycleFactory(deadline_in=timedelta(days=1))
    PacketFactory(person=org.engineer, cycle=due, evidence=engineer_evidence)
    settings.EMAIL_BACKEND = "tests.notifications.broken_backend.BrokenBackend"
    assert deadline_reminders_send() == 0
    assert NotificationSent.objects.count() == 0

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deadline_reminders_send() == 1
    assert len(mail.outbox) == 1


# --- waiting reminders --------------------------------------------------------------------


def test_a_packet_waiting_on_its_reviewer_reminds_them_once(org, cycle, submitted):
    assert waiting_reminders_send() == 0  # submitted just now

    age_event(submitted, "submitted", 6)
    assert waiting_reminders_send() == 1
    [message] = mail.outbox
    assert message.to == [org.manager.email]
    assert message.subject == "[ladder_tracker] Erin's packet has waited 6 days"
    assert "has been submitted for 6 days" in message.body
    assert_link(message, f"{SITE}/packets/{submitted.pk}/")

    assert waiting_reminders_send() == 0
    assert len(mail.outbox) == 1

    # sent back and resubmitted: a new waiting stretch, a new reminder once it is old
    PacketEvent.objects.create(
        packet=submitted,
        action="submit",
        from_state="changes_requested",
        to_state="submitted",
        actor=org.engineer.user,
    )
    assert waiting_reminders_send() == 0
    age_event(submitted, "submitted", 8)
    assert waiting_reminders_send() == 1


def test_an_endorsed_packet_waiting_reminds_the_committee_outside_the_chain(
    org, cycle, engineer_evidence
):
    org.director.is_committee = True  # erin's skip-level: never decides her packet
    org.director.save()
    packet = PacketFactory(
        person=org.engineer,
        cycle=cycle,
        state="endorsed",
        evidence=engineer_evidence,
        reviewer=org.manager,
    )
    age_event(packet, "endorsed", 10)
    assert waiting_reminders_send() == 1
    assert [m.to for m in mail.outbox] == [[org.committee.email]]


def test_waiting_reminders_respect_preferences_and_the_days_setting(org, submitted, settings):
    age_event(submitted, "submitted", 3)
    assert waiting_reminders_send() == 0
    settings.NOTIFICATIONS_WAITING_REMINDER_DAYS = 2
    prefer(org.manager, waiting_reminders=False)
    assert waiting_reminders_send() == 0
    prefer(org.manager, waiting_reminders=True)
    assert waiting_reminders_send() == 1


# --- the weekly digest --------------------------------------------------------------------


def candidate(person, title, expectations, *, days_ago=1):
    ev = Evidence.objects.create(
        person=person, title=title, source="servicenow", status=Evidence.Status.CANDIDATE
    )
    Evidence.objects.filter(pk=ev.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    for exp in expectations:
        EvidenceLink.objects.create(evidence=ev, expectation=exp, origin="suggested")
    return ev


def test_digest_lists_new_candidates_that_close_a_gap_once_a_week(org, ladder_version):
    level3 = level_expectations(ladder_version, 3)
    covered, gap = level3[0], level3[1]
    EvidenceFactory(person=org.engineer, links=[_link(covered)])  # accepted: no gap
    candidate(org.engineer, "Fixed the <drift> alert", [gap, covered])
    candidate(org.engineer, "Only covers what is covered", [covered])
    candidate(org.engineer, "Old news", [gap], days_ago=9)
    candidate(org.peer, "Pete's, but level 2 codes", level_expectations(ladder_version, 2)[:1])

    assert candidate_digest_send() == 1
    [message] = mail.outbox
    assert message.to == [org.engineer.email]
    assert message.subject == "[ladder_tracker] 1 new candidate for level 3"
    assert f"- Fixed the <drift> alert (would cover {gap.code})" in message.body
    assert "Fixed the &lt;drift&gt; alert" in html_of(message)
    assert "Only covers" not in message.body and "Old news" not in message.body
    assert_link(message, f"{SITE}/evidence/inbox/")

    assert candidate_digest_send() == 0  # same week
    prefer(org.engineer, candidate_digest=False)
    NotificationSent.objects.all().delete()
    assert candidate_digest_send() == 0


def _link(expectation):
    from apps.evidence.services import LinkSpec

    return LinkSpec(expectation=expectation.code)


# --- preferences: API and page ------------------------------------------------------------


ALL_ON = dict.fromkeys(NotificationPreference.FIELDS, True)


def test_api_reads_defaults_and_patches_own_preferences(org):
    api = api_client(org.engineer)
    got = api.get("/api/v1/people/me/notifications/")
    assert got.status_code == 200
    assert {k: got.json()[k] for k in NotificationPreference.FIELDS} == ALL_ON

    patched = api.patch(
        "/api/v1/people/me/notifications/", {"candidate_digest": False}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["candidate_digest"] is False
    assert patched.json()["packet_updates"] is True
    assert NotificationPreference.objects.get(person=org.engineer).candidate_digest is False
    assert not NotificationPreference.objects.filter(person=org.manager).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"packet_updates": "maybe"}, "packet_updates"), ({"sms": True}, "sms")],
    ids=["not-a-boolean", "unknown-setting"],
)
def test_api_refuses_bad_preferences_naming_the_field(org, body, field):
    response = api_client(org.engineer).patch(
        "/api/v1/people/me/notifications/", body, format="json"
    )
    assert response.status_code == 400
    assert field in str(response.json())
    assert not NotificationPreference.objects.exists()


def test_api_needs_a_person_and_a_login(admin_user):
    assert api_client(admin_user).get("/api/v1/people/me/notifications/").status_code == 404
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/people/me/notifications/").status_code in (401, 403)


def test_settings_page_saves_preferences(client, org):
    client.force_login(org.engineer.user)
    page = client.get("/settings/notifications/")
    assert page.status_code == 200
    assert b'name="waiting_reminders"' in page.content
    on = {k: "on" for k in NotificationPreference.FIELDS if k != "review_requests"}
    saved = client.post("/settings/notifications/", on, follow=True)
    assert b"Notification settings saved." in saved.content
    pref = NotificationPreference.objects.get(person=org.engineer)
    assert pref.review_requests is False and pref.packet_updates is True


# --- beat, SITE_URL -----------------------------------------------------------------------


def test_beat_schedule_runs_the_registered_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks_by_entry = {name: entry["task"] for name, entry in schedule.items()}
    assert tasks_by_entry["notifications-reminders"] == "notifications.reminders_send"
    assert tasks_by_entry["notifications-candidate-digest"] == "notifications.candidate_digest_send"
    assert "servicenow-reclaim-abandoned-runs" in schedule  # beside the other beat task
    assert schedule["notifications-candidate-digest"]["schedule"].day_of_week == {1}
    celery_app.loader.import_default_modules()  # what a worker does at start (autodiscovery)
    for task in tasks_by_entry.values():
        assert task in celery_app.tasks


def test_the_reminder_task_runs_both_reminders(org, submitted):
    age_event(submitted, "submitted", 6)
    # run in this process (the test's data is in its open transaction, which a worker of the
    # PostgreSQL CI would not see); the beat entries above name these tasks
    assert tasks.reminders_send() == {"deadline": 0, "waiting": 1}
    assert tasks.candidate_digest_send() == 0
    assert [m.to for m in mail.outbox] == [[org.manager.email]]


@pytest.mark.parametrize(
    ("url", "ids"),
    [
        ("", ["notifications.E001"]),
        ("/packets/", ["notifications.E001"]),
        ("http://127.0.0.1:8000", ["notifications.W001", "notifications.W002"]),
        ("http://ladder.example.com", ["notifications.W001"]),
        ("https://ladder.example.com", []),
    ],
)
def test_deploy_check_requires_an_absolute_public_site_url(settings, url, ids):
    settings.SITE_URL = url
    assert [m.id for m in site_url_deploy_check(None)] == ids


def test_check_command_runs_clean_in_tests():
    call_command("check")


def test_production_without_site_url_fails_check_deploy():
    from tests.test_runtime import PRODUCTION_ENV, _manage

    env = {**PRODUCTION_ENV, "SITE_URL": ""}
    result = _manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert "notifications.E001" in result.stdout + result.stderr


def test_deadline_reminders_read_in_fixed_queries_and_write_one_row_per_mail(
    org, ladder, django_assert_num_queries
):
    due = PromotionCycleFactory(deadline_in=timedelta(days=1))
    people = [org.engineer, org.peer, org.other_engineer]
    for person in people:
        PacketFactory(person=person, cycle=due, evidence=[EvidenceFactory(person=person)])
    # packets, preferences, already sent; then per mail the record: savepoint, insert,
    # release (the nested atomic) inside the outer transaction's savepoint and release
    with django_assert_num_queries(3 + 5 * len(people)):
        assert deadline_reminders_send() == 3
    with django_assert_num_queries(3):  # the next beat reads and writes nothing
        assert deadline_reminders_send() == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in people)


def test_a_record_written_by_a_concurrent_beat_stops_the_send(org):
    """Two workers read "not sent" at once: the unique insert lets only one of them mail."""
    from apps.notifications.services import _send_once

    NotificationSent.objects.create(person=org.engineer, kind="deadline_reminder", key="k")
    calls = []
    assert not _send_once(
        person=org.engineer, kind="deadline_reminder", key="k", send=lambda: calls.append(1) or True
    )
    assert calls == []
    assert _send_once(
        person=org.engineer,
        kind="deadline_reminder",
        key="k2",
        send=lambda: calls.append(1) or True,
    )
    assert calls == [1] and NotificationSent.objects.count() == 2


def test_admin_lists_preferences_and_sent_reminders(client, org):
    prefer(org.engineer, candidate_digest=False)
    NotificationSent.objects.create(person=org.engineer, kind="candidate_digest", key="week:x")
    client.force_login(org.admin.user)
    for model in ("notificationpreference", "notificationsent"):
        page = client.get(f"/admin/notifications/{model}/")
        assert page.status_code == 200
        assert b"Erin" in page.content


def test_a_draft_withdrawn_mails_nobody(
    org, cycle, engineer_evidence, django_capture_on_commit_callbacks
):
    packet = PacketFactory(person=org.engineer, cycle=cycle, evidence=engineer_evidence)
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(org.engineer).post(
            f"/api/v1/packets/{packet.pk}/withdraw/", {}, format="json"
        )
    assert response.status_code == 200, response.json()
    assert mail.outbox == []
