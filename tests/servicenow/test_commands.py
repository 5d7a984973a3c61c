"""manage.py servicenow_sync (in-process runs against the emulator) and servicenow_demo
(dataset for the demo people, idempotent wiring to the emulator)."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from apps.evidence.corroboration import corroborators_suggest
from apps.evidence.models import Evidence
from apps.people.models import Person
from servicenow.emulator import Emulator
from servicenow.models import Connection, Source, SuggestionRule, SyncRun, WorkItem
from servicenow.secrets import secret_decrypt
from servicenow.services import connection_save

from .conftest import make_connection, make_source

SECRET = "s3cr3t-Pa55"


def sync(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("servicenow_sync", *args, stdout=out, stderr=err, no_color=True)
    return out.getvalue(), err.getvalue()


def summary(run: SyncRun) -> str:
    source = run.source
    return (
        f"{source.name} ({source.table}, {run.mode}): {run.rows_seen} rows, {run.created} new, "
        f"{run.updated} changed, {run.deleted} deleted, {run.evidence_created} evidence "
        f"candidates, {run.requests} requests"
    )


# --- servicenow_sync ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_sync_one_source_prints_its_summary(incidents):
    # given a source on the emulator

    # when the command syncs it
    out, err = sync("--source", str(incidents.pk), "--mode", "full")

    # then the run succeeded in this process and the summary has its counts
    run = SyncRun.objects.get()
    assert (run.status, run.mode, run.rows_seen, run.created) == ("succeeded", "full", 300, 300)
    assert run.requests > 0
    assert out == summary(run) + "\n"
    assert out.startswith("incident (incident, full): 300 rows, 300 new, 0 changed, 0 deleted")
    assert err == ""
    assert WorkItem.objects.filter(source=incidents).count() == 300


@pytest.mark.django_db(transaction=True)
def test_sync_all_runs_users_first_then_work_items(incidents, users_source):
    # given an incidents source created before the users source

    # when the command syncs every enabled source
    out, err = sync("--all")

    # then people came first, so the incidents were attributed to them
    people_run = SyncRun.objects.get(source=users_source)
    incidents_run = SyncRun.objects.get(source=incidents)
    assert out.splitlines() == [summary(people_run), summary(incidents_run)]
    assert (people_run.status, incidents_run.status) == ("succeeded", "succeeded")
    assert incidents_run.rows_seen == 300
    assert incidents_run.evidence_created == Evidence.objects.count() > 0
    assert err == ""


@pytest.mark.django_db(transaction=True)
def test_sync_all_skips_disabled_sources(incidents, users_source):
    users_source.enabled = False
    users_source.save()

    out, _ = sync("--all")

    assert list(SyncRun.objects.values_list("source_id", flat=True)) == [incidents.pk]
    assert out.startswith("incident (incident, incremental): 300 rows")


@pytest.mark.django_db(transaction=True)
def test_a_failing_source_makes_the_command_fail(emulator, settings):
    # given a source whose connection has a wrong password
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    connection = connection_save(connection=make_connection(emulator), password=SECRET)
    source = make_source(connection)

    # when the command syncs it
    err = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("servicenow_sync", "--source", str(source.pk), stdout=StringIO(),
                     stderr=err, no_color=True)  # fmt: skip

    # then it fails, the run is failed with the instance's reason, and no password shows
    run = SyncRun.objects.get()
    assert str(raised.value) == "1 of 1 sources failed; see the runs."
    assert (run.status, run.attempts) == ("failed", 1)
    assert run.error.startswith("401 User Not Authenticated")
    assert err.getvalue() == f"incident (incident, incremental): run {run.pk} failed: {run.error}\n"
    assert SECRET not in err.getvalue() + run.error


@pytest.mark.django_db(transaction=True)
def test_one_failing_source_does_not_stop_the_others(emulator, settings):
    # given a good source and a source on a connection with a wrong password
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    good = make_source(make_connection(emulator, name="Good"))
    bad_connection = connection_save(
        connection=make_connection(emulator, name="Bad"), password=SECRET
    )
    bad = make_source(bad_connection)

    # when
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 sources failed"):
        call_command("servicenow_sync", "--all", stdout=out, stderr=StringIO(), no_color=True)

    # then the good one still ran to the end
    assert SyncRun.objects.get(source=good).status == "succeeded"
    assert SyncRun.objects.get(source=bad).status == "failed"
    assert out.getvalue().startswith("incident (incident, incremental): 300 rows")


@pytest.mark.django_db
def test_sync_of_a_source_with_an_active_run_fails(emulator, settings):
    # given a source with a queued run
    source = make_source(make_connection(emulator))
    active = SyncRun.objects.create(source=source)

    # when / then
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 sources failed"):
        call_command("servicenow_sync", "--source", str(source.pk), stdout=StringIO(),
                     stderr=err)  # fmt: skip
    reclaim_at = active.created_at + timedelta(seconds=settings.SERVICENOW_STALE_RUN_SECONDS)
    assert err.getvalue() == (
        f"incident: Source {source.pk} already has run {active.pk} (queued); wait for it to "
        f"finish. If its worker stopped, it is resumed from its last page after "
        f"{reclaim_at:%H:%M:%S} UTC.\n"
    )
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_sync_without_a_matching_source_fails():
    with pytest.raises(CommandError, match="No matching source."):
        sync("--source", "999")
    with pytest.raises(CommandError, match="No matching source."):
        sync("--all")


def test_sync_needs_source_or_all():
    with pytest.raises(CommandError, match="one of the arguments --source --all is required"):
        sync()


# --- servicenow_demo ----------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_writes_a_dataset_with_the_demo_peoples_emails(ladder, tmp_path):
    # given the demo org
    call_command("demo_org", stdout=StringIO())
    emails = list(
        Person.objects.exclude(email="").filter(ladder__isnull=False)
        .order_by("pk").values_list("email", flat=True)
    )  # fmt: skip
    path = tmp_path / "dataset.json"

    # when the command writes the emulator dataset
    out = StringIO()
    call_command("servicenow_demo", "--write-dataset", str(path), stdout=out)

    # then its first users are the demo people, who get most of the incidents
    dataset = json.loads(path.read_text(encoding="utf-8"))
    users = dataset["tables"]["sys_user"]
    assert len(emails) == 7
    assert [u["email"] for u in users[: len(emails)]] == emails
    assert len(users) == 30
    assert len(dataset["tables"]["incident"]) == 400
    assert out.getvalue() == f"emulator dataset for 7 people: {path}\n"


def demo_counts() -> tuple[int, int, int, int]:
    return (
        Connection.objects.count(),
        Source.objects.count(),
        SuggestionRule.objects.count(),
        PeriodicTask.objects.filter(task="servicenow.sync_source_scheduled").count(),
    )


@pytest.mark.django_db
def test_demo_connect_is_idempotent():
    # given / when the demo is wired twice to the same emulator
    call_command("servicenow_demo", "--url", "http://127.0.0.1:8001", stdout=StringIO())
    first = demo_counts()
    connection = Connection.objects.get()
    out = StringIO()
    call_command("servicenow_demo", "--url", "http://127.0.0.1:8001/", stdout=out)

    # then the same rows, updated in place
    assert first == demo_counts() == (1, 6, 5, 6)
    again = Connection.objects.get()
    assert again.pk == connection.pk
    assert again.instance_url == "http://127.0.0.1:8001"
    assert secret_decrypt(again.password_encrypted) == "integration-pass"
    assert sorted(Source.objects.values_list("table", flat=True)) == [
        "change_request", "incident", "problem", "rm_story", "sc_req_item", "sys_user"
    ]  # fmt: skip
    assert Source.objects.get(table="sys_user").kind == "users"
    assert out.getvalue() == "demo connection to http://127.0.0.1:8001/ with 6 sources\n"


@pytest.mark.django_db(transaction=True)
def test_the_demo_syncs_from_its_own_dataset(ladder, tmp_path):
    # given the demo org, its dataset served by the emulator and the demo wiring
    call_command("demo_org", stdout=StringIO())
    path = tmp_path / "dataset.json"
    call_command("servicenow_demo", "--write-dataset", str(path), stdout=StringIO())
    with Emulator(json.loads(path.read_text(encoding="utf-8"))) as emu:
        call_command("servicenow_demo", "--url", emu.url, stdout=StringIO())

        # when every source is synced
        out, err = sync("--all")

        # and the demo shows who saw erin's work: demo people, with reasons of each kind
        erin = Person.objects.get(user__username="erin")
        reasons, names = set(), set()
        mine = Evidence.objects.filter(person=erin).order_by("id")
        for evidence in [
            *mine.filter(work_item__table="incident")[:10],
            *mine.filter(work_item__table="change_request")[:10],
        ]:
            for found in corroborators_suggest(viewer=erin.user, evidence=evidence):
                names.add(found.person.user.username if found.person.user else None)
                reasons.update(r.split(" (")[0] for r in found.reasons)
        assert "erin" not in names and names - {None}
        assert {"co-assignee", "wrote a work note", "approver"} <= reasons

    # then all six succeeded, and the demo engineers have candidates to triage
    assert err == ""
    assert len(out.splitlines()) == 6
    assert set(SyncRun.objects.values_list("status", flat=True)) == {"succeeded"}
    erin = Person.objects.get(user__username="erin")
    assert WorkItem.objects.filter(person=erin).exists()
    assert Evidence.objects.filter(person=erin, status="candidate").exists()
    # and the users source kept the demo org chart as it was (it is the source of truth)
    chart = dict(Person.objects.filter(user__isnull=False).values_list(
        "user__username", "manager__user__username"))  # fmt: skip
    assert chart == {
        "admin": None,
        "maria": None,
        "omar": "maria",
        "erin": "omar",
        "ken": "omar",
        "lena": "maria",
        "sam": "maria",
        "cora": None,
    }
    assert not Person.objects.filter(manager=erin).exists()
