"""Sync from the emulator over real HTTP: faults alone and together, rows changing while we
page, deletes, reconcile, users and attribution. After runs settle the local work items must
equal the emulator's table: same sys_ids, latest values, deleted ones tombstoned, no
duplicated evidence."""

import random
import threading
import time
from collections import Counter

import pytest

from apps.evidence.models import Evidence, EvidenceLink
from apps.people.models import Person
from servicenow.emulator import Emulator
from servicenow.models import SyncCursor, SyncRun, WorkItem
from servicenow.services import sync_run_request
from servicenow.sync.runs import sync_run_attempt

from .conftest import PEOPLE_EMAILS, make_connection, make_dataset, make_source, run_sync

pytestmark = pytest.mark.django_db(transaction=True)


def visible_rows(emu, table="incident", hidden_modulo=None) -> dict[str, dict]:
    rows = {r["sys_id"]: r for r in emu.store.rows(table)}
    if hidden_modulo:
        rows = {k: v for k, v in rows.items() if int(k, 16) % hidden_modulo}
    return rows


def assert_mirrors(emu, source, *, hidden_modulo=None) -> None:
    remote = visible_rows(emu, source.table, hidden_modulo)
    local = {w.sys_id: w for w in WorkItem.objects.filter(source=source)}
    live = {k for k, w in local.items() if w.deleted_at is None}
    assert live == set(remote), (
        f"missing {len(set(remote) - live)}, extra {len(live - set(remote))}"
    )
    for sys_id, row in remote.items():
        item = local[sys_id]
        assert (item.sys_mod_count, item.short_description) == (
            int(row["sys_mod_count"]),
            row.get("short_description", ""),
        ), sys_id
        assert item.sys_updated_on.strftime("%Y-%m-%d %H:%M:%S") == row["sys_updated_on"]
    # every local row the instance no longer has is tombstoned, none is dropped
    for sys_id in set(local) - set(remote):
        assert local[sys_id].deleted_at is not None
    pairs = Counter(
        Evidence.objects.filter(work_item__source=source).values_list("person_id", "work_item_id")
    )
    assert all(n == 1 for n in pairs.values())


def settle(source, max_runs: int = 6) -> SyncRun:
    """Incremental runs until one finds nothing new (the overlap window re-reads, so a
    settled run sees rows but creates and changes nothing)."""
    for _ in range(max_runs):
        run = run_sync(source)
        assert run.status == "succeeded", run.error
        if run.created == 0 and run.updated == 0:
            return run
    raise AssertionError("runs did not settle")


def test_full_sync_mirrors_the_table_and_makes_candidates(emulator, incidents, users_source):
    people = run_sync(users_source, "full")
    run = run_sync(incidents, "full")

    assert people.status == run.status == "succeeded"
    assert run.created == 300 and run.rows_seen == 300
    assert_mirrors(emulator, incidents)
    erin = Person.objects.get(email="erin@example.com")
    mine = {
        r["sys_id"]
        for r in emulator.store.rows("incident")
        if r.get("assigned_to") == erin.servicenow_sys_id
    }
    candidates = Evidence.objects.filter(person=erin, status="candidate")
    assert {e.work_item.sys_id for e in candidates} == mine
    sample = candidates.first()
    assert sample.source == "servicenow"
    assert sample.snapshot["url"].endswith(f"incident.do?sys_id={sample.work_item.sys_id}")
    assert sample.title.startswith(sample.snapshot["number"] + ": ")


def test_incremental_with_nothing_changed_makes_at_most_two_requests(emulator, incidents):
    run_sync(incidents, "full")
    emulator.clear_log()

    run = run_sync(incidents)

    table_requests = [r for r in emulator.request_log if r[1].startswith("/api/now/")]
    assert len(table_requests) <= 2, table_requests
    assert run.requests == len(table_requests)
    assert (run.created, run.updated) == (0, 0)


def test_edits_and_inserts_are_picked_up_and_stale_rows_skipped(emulator, incidents):
    run_sync(incidents, "full")
    rows = emulator.store.rows("incident")
    emulator.store.update("incident", rows[0]["sys_id"], {"short_description": "edited"})
    new = emulator.store.insert("incident", {"number": "INC0099999", "short_description": "new"})

    run = run_sync(incidents)

    assert (run.created, run.updated) == (1, 1)
    assert WorkItem.objects.get(sys_id=rows[0]["sys_id"]).short_description == "edited"
    assert WorkItem.objects.get(sys_id=new["sys_id"]).number == "INC0099999"
    assert_mirrors(emulator, incidents)


def test_deletes_come_from_sys_audit_delete_and_evidence_is_kept(emulator, incidents, users_source):
    run_sync(users_source, "full")
    run_sync(incidents, "full")
    victim = Evidence.objects.filter(work_item__isnull=False).first().work_item
    emulator.store.delete("incident", victim.sys_id)

    run = run_sync(incidents)

    victim.refresh_from_db()
    assert run.deleted == 1
    assert (victim.deleted_reason, victim.deleted_at is not None) == ("audit_delete", True)
    assert Evidence.objects.filter(work_item=victim).exists()  # kept, flagged by the item
    assert_mirrors(emulator, incidents)


def test_reconcile_tombstones_rows_gone_without_an_audit_trail(connection, emulator):
    """A user without read access to sys_audit_delete: deletes come from reconcile only."""
    limited = make_dataset()
    limited["credentials"] = {"users": [{
        "user_name": "integration", "password": "integration-pass",
        "forbidden_tables": ["sys_audit_delete"],
    }]}  # fmt: skip
    with Emulator(limited) as emu:
        source = make_source(make_connection(emu, name="Limited"), "incident", query="state!=7")
        first = run_sync(source, "full")
        assert "no read access to sys_audit_delete" in first.log
        # one row leaves the base query, one is deleted: neither is in an audit we can read
        rows = [r for r in emu.store.rows("incident") if r["state"] != "7"]
        moved, deleted = rows[5], rows[6]
        emu.store.update("incident", moved["sys_id"], {"state": "7"})
        emu.store.delete("incident", deleted["sys_id"])
        incremental = run_sync(source)
        assert incremental.deleted == 0

        run = run_sync(source, "reconcile")

        gone = WorkItem.objects.filter(source=source, deleted_reason="reconcile")
        assert run.status == "succeeded"
        assert set(gone.values_list("sys_id", flat=True)) >= {moved["sys_id"], deleted["sys_id"]}
        expected = {r["sys_id"] for r in emu.store.rows("incident") if r["state"] != "7"}
        live = WorkItem.objects.filter(source=source, deleted_at__isnull=True)
        assert set(live.values_list("sys_id", flat=True)) == expected


FAULTS = {
    "rate_limit": {"rate_limit": {"every": 3, "retry_after": 1, "times": 3}},
    "server_error": {"server_error": {"every": 4, "status": 503, "times": 4}},
    "html": {"html": {"every": 5, "times": 2}},
    "slow": {"slow": {"seconds": 0.05, "every": 2}},
    "transaction_cancelled": {"transaction_cancelled": {"max_limit": 20}},
    "edit_between_pages": {"edit_between_pages": {"rows": 5, "table": "incident"}},
    "duplicates": {"duplicates": {"every": 2}},
    "hidden": {"hidden": {"modulo": 7}},
}
FAULTS["all_together"] = {k: v for case in FAULTS.values() for k, v in case.items()}


@pytest.mark.parametrize("case", FAULTS.keys())
def test_sync_converges_under_each_fault(emulator, incidents, case):
    faults = FAULTS[case]
    emulator.set_faults_dict(faults)

    first = run_sync(incidents, "full")
    assert first.status == "succeeded", first.error
    # keep every fault on while runs settle, except edits: those never let a table settle
    emulator.set_faults_dict({k: v for k, v in faults.items() if k != "edit_between_pages"})
    settle(incidents)

    hidden = faults.get("hidden", {}).get("modulo")
    assert_mirrors(emulator, incidents, hidden_modulo=hidden)


def test_sync_converges_while_rows_change_under_it(emulator, incidents):
    """Inserts, edits, deletes and bulk updates of more rows than a page, many in one
    second, while a full sync and incrementals page through the table."""
    stop = threading.Event()
    rng = random.Random(5)

    def churn():
        while not stop.is_set():
            ids = [r["sys_id"] for r in emulator.store.rows("incident")]
            emulator.store.bulk_update("incident", rng.sample(ids, 80), {"state": "2"})
            for _ in range(5):
                emulator.store.insert("incident", {"number": f"INC{rng.randint(1, 10**7)}"})
            emulator.store.update("incident", rng.choice(ids), {"short_description": "x"})
            emulator.store.delete("incident", rng.choice(ids))
            time.sleep(0.02)

    worker = threading.Thread(target=churn, daemon=True)
    worker.start()
    try:
        for mode in ("full", "incremental", "incremental"):
            assert run_sync(incidents, mode).status == "succeeded"
    finally:
        stop.set()
        worker.join()
    time.sleep(1.1)  # let the last edits' second pass: the next window sees all of them
    settle(incidents)

    assert_mirrors(emulator, incidents)


def test_users_source_merges_by_email_and_builds_the_manager_chain(
    emulator, users_source, incidents
):
    existing = Person.objects.create(name="Erin (HR)", email="Erin@Example.COM")
    run_sync(incidents, "full")  # before the people are known: no candidates yet
    assert Evidence.objects.count() == 0

    run = run_sync(users_source, "full")

    existing.refresh_from_db()
    users = {r["sys_id"]: r for r in emulator.store.rows("sys_user")}
    erin_row = next(r for r in users.values() if r["email"] == "erin@example.com")
    assert existing.servicenow_sys_id == erin_row["sys_id"]
    assert Person.objects.filter(email__iexact="erin@example.com").count() == 1
    for person in Person.objects.exclude(servicenow_sys_id=""):
        wanted = users[person.servicenow_sys_id].get("manager", "")
        got = person.manager.servicenow_sys_id if person.manager else ""
        assert got == wanted, person
    # the incidents synced earlier now owe their candidates, once each
    assert run.evidence_created == Evidence.objects.count() > 0
    assert run_sync(users_source).evidence_created == 0


def test_rules_prelink_candidates(emulator, incidents, users_source, ladder):
    from servicenow.models import SuggestionRule

    Person.objects.filter(email__in=PEOPLE_EMAILS).delete()
    for email in PEOPLE_EMAILS:
        Person.objects.create(name=email, email=email, ladder=ladder, level=2)
    SuggestionRule.objects.create(
        name="ML",
        table="incident",
        conditions=[{"field": "category", "op": "=", "value": "ml_model"}],
        expectation_codes=["TE-3.3"],
        skills=["MLflow"],
    )
    run_sync(users_source, "full")
    run_sync(incidents, "full")

    ml = Evidence.objects.filter(work_item__raw__category="ml_model", person__ladder=ladder)
    other = Evidence.objects.exclude(work_item__raw__category="ml_model")
    assert ml.exists()
    for ev in ml:
        assert list(ev.links.values_list("expectation__code", "origin")) == [
            ("TE-3.3", "suggested")
        ]
        assert list(ev.skills.values_list("name", flat=True)) == ["MLflow"]
    assert not EvidenceLink.objects.filter(evidence__in=other).exists()


def test_resync_refreshes_the_snapshot_but_not_the_engineers_text(
    emulator, incidents, users_source
):
    run_sync(users_source, "full")
    run_sync(incidents, "full")
    ev = Evidence.objects.first()
    ev.title, ev.description = "My own title", "What I did, in my words."
    ev.save()
    emulator.store.update("incident", ev.work_item.sys_id, {"short_description": "renamed"})

    run_sync(incidents)

    ev.refresh_from_db()
    assert (ev.title, ev.description) == ("My own title", "What I did, in my words.")
    assert ev.snapshot["short_description"] == "renamed"


def test_a_run_that_dies_mid_way_resumes_without_duplicates(emulator, incidents, monkeypatch):
    """Fail after three pages (as a killed worker would stop): the cursor holds what was
    committed, the next run converges."""
    from servicenow.sync.workitems import WorkItemWriter

    original = WorkItemWriter.store
    calls = {"n": 0}

    def dying_store(self, rows):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker killed")
        return original(self, rows)

    monkeypatch.setattr(WorkItemWriter, "store", dying_store)
    # In this process (as `manage.py servicenow_sync` runs it), so the patch applies even
    # when a Celery worker would otherwise take the run.
    run = sync_run_request(source=incidents, mode="full", enqueue=False)
    with pytest.raises(RuntimeError):
        sync_run_attempt(run_id=run.pk)
    failed = SyncRun.objects.get(source=incidents)
    assert failed.status == "failed" and "internal error" in failed.error
    assert WorkItem.objects.count() == 150  # three pages of 50, committed
    assert SyncCursor.objects.get(source=incidents).hwm_ts is not None

    monkeypatch.setattr(WorkItemWriter, "store", original)
    settle(incidents)

    assert_mirrors(emulator, incidents)


def test_candidates_keep_the_instances_labels_for_state_and_priority(
    emulator, incidents, users_source
):
    """The sync reads the labels from sys_choice (pages come as raw values): a candidate's
    snapshot keeps the stored codes and, under "display", the labels the instance shows (the inbox
    shows those: tests/evidence/test_inbox_scale.py)."""
    from apps.evidence.views import snapshot_labels
    from servicenow.emulator.render import DEFAULT_CHOICES

    run_sync(users_source, "full")
    run_sync(incidents, "full")

    labels = DEFAULT_CHOICES["incident"]
    erin = Person.objects.get(email="erin@example.com")
    candidates = Evidence.objects.filter(person=erin, status="candidate").select_related(
        "work_item"
    )
    assert candidates
    for ev in candidates:
        row = next(r for r in emulator.store.rows("incident") if r["sys_id"] == ev.work_item.sys_id)
        assert (ev.snapshot["state"], ev.work_item.state) == (row["state"], row["state"])
        assert snapshot_labels(ev.snapshot) == {
            "state": labels["state"][row["state"]],
            "priority": labels["priority"][row["priority"]],
            "category": ev.snapshot["display"].get("category") or row.get("category", ""),
        }
