"""Choice labels from sys_choice: pages come as raw values (sysparm_display_value=false) and
a candidate still keeps the labels the instance shows; without sys_choice the sync asks for
display values on every page, as before."""

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.evidence.models import Evidence
from apps.evidence.views import snapshot_labels
from servicenow.client import ClientConfig, ServiceNowClient
from servicenow.emulator import Emulator
from servicenow.emulator.render import DEFAULT_CHOICES, choice_rows
from servicenow.models import SyncCursor
from servicenow.sync.choices import choice_labels

from .conftest import make_connection, make_dataset, make_source, run_sync

pytestmark = pytest.mark.django_db(transaction=True)


def table_requests(emu: Emulator, table: str) -> list[dict[str, list[str]]]:
    """The query parameters of each Table API GET of `table` the emulator answered."""
    out = []
    for method, path, _status in emu.request_log:
        url = urlsplit(path)
        if method == "GET" and url.path.rstrip("/").endswith(f"/table/{table}"):
            out.append(parse_qs(url.query))
    return out


def expected_labels(raw: dict) -> dict:
    """What the inbox shows of a record: each field's label, else its value."""
    labels = DEFAULT_CHOICES["incident"]
    return {
        f: labels[f].get(raw.get(f, ""), raw.get(f, "")) for f in ("state", "priority", "category")
    }


def synced_with_labels(emu: Emulator):
    connection = make_connection(emu, page_size=100)
    users = make_source(connection, "sys_user")
    incidents = make_source(connection, "incident")
    assert run_sync(users, "full").status == "succeeded"
    emu.clear_log()
    run = run_sync(incidents, "full")
    assert run.status == "succeeded", run.error
    return incidents, run


def assert_candidates_labelled(emu: Emulator) -> None:
    rows = {r["sys_id"]: r for r in emu.store.rows("incident")}
    candidates = Evidence.objects.filter(status="candidate").select_related("work_item")
    assert candidates.count() > 100
    for ev in candidates:
        raw = rows[ev.work_item.sys_id]
        assert snapshot_labels(ev.snapshot) == expected_labels(raw)


def test_pages_come_as_raw_values_and_candidates_keep_the_labels():
    with Emulator(make_dataset(incidents=400)) as emu:
        incidents, run = synced_with_labels(emu)

        # then sys_choice was read once and every page asked for raw values only
        assert len(table_requests(emu, "sys_choice")) == 1
        pages = table_requests(emu, "incident")
        assert pages and {p["sysparm_display_value"][0] for p in pages} == {"false"}
        # and each candidate shows the labels the instance holds
        assert_candidates_labelled(emu)
        cursor = SyncCursor.objects.get(source=incidents)
        assert cursor.choice_labels["state"]["6"] == "Resolved"
        assert run.log == ""


def test_without_sys_choice_pages_carry_display_values_and_the_run_says_so():
    dataset = make_dataset(incidents=400)
    dataset["credentials"] = {
        "users": [
            {
                "user_name": "integration",
                "password": "integration-pass",
                "forbidden_tables": ["sys_choice"],
            }
        ]
    }
    with Emulator(dataset) as emu:
        incidents, run = synced_with_labels(emu)

        pages = table_requests(emu, "incident")
        assert pages and {p["sysparm_display_value"][0] for p in pages} == {"all"}
        assert "no read access to sys_choice" in run.log
        assert_candidates_labelled(emu)
        assert SyncCursor.objects.get(source=incidents).choice_labels is None


def test_incremental_runs_reuse_the_labels_until_they_are_a_day_old(settings):
    with Emulator(make_dataset(incidents=200)) as emu:
        incidents, _run = synced_with_labels(emu)

        # an incremental run soon after reads no sys_choice
        emu.clear_log()
        assert run_sync(incidents).status == "succeeded"
        assert table_requests(emu, "sys_choice") == []

        # once the labels kept are older than the setting, the next run reads them again
        cursor = SyncCursor.objects.get(source=incidents)
        age = timedelta(seconds=settings.SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS + 1)
        SyncCursor.objects.filter(pk=cursor.pk).update(
            choice_labels_read_at=cursor.choice_labels_read_at - age
        )
        emu.clear_log()
        assert run_sync(incidents).status == "succeeded"
        assert len(table_requests(emu, "sys_choice")) == 1


def test_a_tables_own_choices_win_over_the_ones_it_inherits_from_task():
    choices = {
        "task": {"priority": {"1": "Task critical", "9": "Task only"}, "state": {"1": "Open"}},
        "incident": {"state": {"1": "New", "6": "Resolved"}},
    }
    dataset = make_dataset(incidents=5)
    dataset["tables"]["sys_choice"] = choice_rows(choices) + [
        # an inactive choice and another language are not labels
        {**choice_rows({"incident": {"state": {"2": "Old"}}})[0], "inactive": "true"},
        {
            **choice_rows({"incident": {"state": {"3": "Attente"}}})[0],
            "language": "fr",
            "sys_id": "f" * 32,
        },
    ]
    with Emulator(dataset) as emu:
        client = ServiceNowClient(
            ClientConfig(
                instance_url=emu.url,
                username="integration",
                password="integration-pass",
                allow_local=True,
            )
        )
        try:
            labels = choice_labels(client, table="incident", fields=["state", "priority", "x"])
        finally:
            client.close()
    assert labels == {
        "state": {"1": "New", "6": "Resolved"},  # incident's own list, not task's
        "priority": {"1": "Task critical", "9": "Task only"},  # inherited from task
        "x": {},
    }
