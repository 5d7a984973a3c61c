"""Full runs fetching in a process of their own (servicenow/sync/pipeline.py): the same rows,
candidates, counts and guarantees as a run that fetches in its own process.

Attempts run in this process (not on a worker): the settings that force the pipeline on
small tables must apply to them, on the embedded default and in CI's worker pass alike."""

import json
import os
import signal
from pathlib import Path

import pytest
from django.core.management import call_command

from apps.evidence.models import Evidence
from apps.ladders.models import Ladder
from apps.people.models import Person
from servicenow.emulator import Emulator
from servicenow.models import SyncRun, WorkItem
from servicenow.services import sync_run_request
from servicenow.sync import pipeline
from servicenow.sync.runs import sync_run_attempt

from .conftest import make_connection, make_dataset, make_source
from .test_sync_integration import FAULTS, assert_mirrors, settle

pytestmark = pytest.mark.django_db(transaction=True)
LADDER = Path(__file__).resolve().parents[2] / "fixtures" / "ladders" / "ai-ml-engineer.yaml"


@pytest.fixture
def piped(settings):
    settings.SERVICENOW_SYNC_PROCESS = True
    settings.SERVICENOW_SYNC_PROCESS_MIN_ROWS = 0  # any table: after the first page
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.01
    settings.SERVICENOW_RUN_RETRY_MAX_SECONDS = 0.05
    settings.SERVICENOW_STALE_RUN_SECONDS = 1.5  # a dead child is noticed within 0.5 s


def attempt_until_done(source, mode="full", attempts=20) -> SyncRun:
    run = sync_run_request(source=source, mode=mode, enqueue=False)
    for _ in range(attempts):
        outcome = sync_run_attempt(run_id=run.pk)
        run.refresh_from_db()
        if outcome != "retry":
            return run
    raise AssertionError(f"run {run.pk} still retrying after {attempts} attempts: {run.log}")


def synced_people(emu):
    """The instance's users synced, on level 2 of the published ladder (so their candidates
    get suggestions)."""
    connection = make_connection(emu, page_size=50)
    users = make_source(connection, "sys_user")
    assert attempt_until_done(users).status == "succeeded"
    call_command("load_ladder", str(LADDER), "--publish", verbosity=0)
    Person.objects.update(ladder=Ladder.objects.get(), level=2)
    return connection


def candidates() -> set[tuple]:
    return {
        (
            e.person_id,
            e.work_item.sys_id,
            e.title,
            e.snapshot_sha256,
            json.dumps(e.snapshot, sort_keys=True),
            json.dumps(e.suggestions),
        )
        for e in Evidence.objects.select_related("work_item")
    }


def test_a_piped_full_run_stores_what_an_inline_one_does(piped, settings, monkeypatch):
    from apps.evidence import candidates as candidates_module

    ranked_here = []
    real_compute = candidates_module._suggestions_compute

    def counting(new, people, index):
        ranked_here.extend(new)
        return real_compute(new, people, index)

    monkeypatch.setattr(candidates_module, "_suggestions_compute", counting)
    with Emulator(make_dataset(incidents=600)) as emu:
        connection = synced_people(emu)
        incidents = make_source(connection, "incident")
        emu.clear_log()
        run = attempt_until_done(incidents)
        # the first page (read before the hand-over) was ranked in this process, and at most
        # every other page after it: the fetching process ranked the rest
        assert 0 < len(ranked_here) <= 50 + 6 * 50, len(ranked_here)

        assert run.status == "succeeded", run.error
        assert "fetching in a process of its own" in run.log
        assert_mirrors(emu, incidents)
        # every request the child sent is on the run (the emulator counts what it answered)
        assert run.requests == len(emu.request_log)
        assert (run.created, run.rows_seen) == (600, 600)
        piped_candidates = candidates()
        assert len(piped_candidates) == run.evidence_created > 0
        # the fetching process ranked the owners' suggestions (similarity: no model yet)
        suggested = [c for c in piped_candidates if json.loads(c[5])]
        assert len(suggested) > len(piped_candidates) / 2, (len(suggested), len(piped_candidates))
        assert {s["origin"] for c in piped_candidates for s in json.loads(c[5])} == {"similar"}

        # the same table synced again inline, into a fresh copy, gives the same candidates
        settings.SERVICENOW_SYNC_PROCESS = False
        Evidence.objects.all().delete()
        WorkItem.objects.all().delete()
        inline = attempt_until_done(incidents)
        assert "process of its own" not in inline.log
        assert candidates() == piped_candidates


@pytest.mark.parametrize(
    "case", ["transaction_cancelled", "duplicates", "hidden", "edit_between_pages", "all_together"]
)
def test_a_piped_full_run_converges_under_faults(piped, case):
    with Emulator(make_dataset(incidents=400)) as emu:
        incidents = make_source(make_connection(emu, page_size=50), "incident")
        emu.set_faults_dict(FAULTS[case])
        run = attempt_until_done(incidents)
        assert run.status == "succeeded", run.error
        assert "fetching in a process of its own" in run.log
        # rows edited while the run paged are the next runs' to catch, as inline
        emu.set_faults_dict({k: v for k, v in FAULTS[case].items() if k != "edit_between_pages"})
        settle(incidents)
        hidden = FAULTS[case].get("hidden", {}).get("modulo")
        assert_mirrors(emu, incidents, hidden_modulo=hidden)


def test_a_remote_error_in_the_child_is_the_runs_error_and_it_resumes(piped):
    with Emulator(make_dataset(incidents=500)) as emu:
        incidents = make_source(make_connection(emu, page_size=50), "incident")
        emu.set_faults_dict({"html": {"every": 4}})  # hibernating on every 4th request
        run = attempt_until_done(incidents, attempts=40)
        assert run.status == "succeeded", run.error
        assert run.attempts > 1 and "HTML page" in run.log  # the child's error, retried
        emu.set_faults_dict(None)
        assert_mirrors(emu, incidents)


def test_a_killed_fetching_process_fails_the_attempt_and_the_next_one_resumes(piped, monkeypatch):
    started = []
    real_start = pipeline.iter_prepared_pages

    def kill_after_two_pages(spec, **kwargs):
        pages = real_start(spec, **kwargs)
        for n, item in enumerate(pages):
            yield item
            if n == 1 and not started:
                started.append(True)
                for child in pipeline.multiprocessing.active_children():
                    if child.name == "sn-fetch":
                        os.kill(child.pid, signal.SIGKILL)

    monkeypatch.setattr("servicenow.sync.runs.iter_prepared_pages", kill_after_two_pages)
    with Emulator(make_dataset(incidents=600)) as emu:
        incidents = make_source(make_connection(emu, page_size=50), "incident")
        run = attempt_until_done(incidents)
        assert started, "the fetching process was never killed"
        assert run.status == "succeeded", run.error
        assert run.attempts == 2
        assert "fetching process stopped" in run.log
        assert run.created == 600
        assert_mirrors(emu, incidents)
        # the second attempt went on from its position: read twice are only the pages the
        # killed child had read ahead (two queued, one being prepared, one in flight) and
        # each attempt's one prefetched page that the hand-over to the child drops
        assert emu.rows_served("incident") <= 600 + (4 + 2) * 50


def test_a_far_instance_keeps_the_in_thread_prefetch(piped, settings):
    # given an instance half a second away: fetching a page takes longer than storing it
    settings.SERVICENOW_SYNC_PROCESS_MIN_ROWS = 1
    with Emulator(make_dataset(incidents=200), latency_ms=500) as emu:
        incidents = make_source(make_connection(emu, page_size=50), "incident")
        run = attempt_until_done(incidents)
    # then the run read on in its own process: a fetching process would only add its start
    assert run.status == "succeeded", run.error
    assert "process of its own" not in run.log
    assert run.created == 200
