"""Backfill windows (servicenow/sync/backfill.py): a full run split by sys_created_on into
disjoint windows, each its own resumable keyset stream, whose counters add up to the run's.

Planning is tested as pure functions and against the emulator's own query engine (the
windows part the table exactly, rows with no sys_created_on included). The runs go over
real HTTP: in the embedded mode window tasks run inline one after another (the first takes
every window); in CI's second pass the CI worker runs them. tests/reliability/
test_backfill_workers.py runs them on two real worker processes and kills one.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone

from servicenow.emulator import Emulator
from servicenow.models import SyncCursor, SyncRun, SyncWindow, WorkItem
from servicenow.query import created_order_query, keyset_query, window_query
from servicenow.services import connection_client, sync_run_request
from servicenow.sync import backfill
from servicenow.sync.backfill import window_claim, windows_count, windows_plan
from servicenow.sync.runs import sync_run_attempt
from servicenow.sync.workitems import WorkItemWriter

from .conftest import make_connection, make_dataset, wait_for
from .test_sync_integration import assert_mirrors, settle

T = [datetime(2026, 1, d, tzinfo=UTC) for d in range(1, 6)]
COUNTED = ("pages", "requests", "rows_seen", "created", "updated", "skipped_stale")


# --- planning: pure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("boundaries", "windows"),
    [
        pytest.param([], [(None, None)], id="none-one-window"),
        pytest.param([T[1]], [(None, T[1]), (T[1], None)], id="one"),
        pytest.param(
            [T[3], T[1], T[2]],
            [(None, T[1]), (T[1], T[2]), (T[2], T[3]), (T[3], None)],
            id="sorted",
        ),
        pytest.param(
            [T[1], T[1], None, T[2]], [(None, T[1]), (T[1], T[2]), (T[2], None)], id="dedup"
        ),
    ],
)
def test_windows_plan_cuts_at_each_boundary_once(boundaries, windows):
    assert windows_plan(boundaries) == windows


@pytest.mark.parametrize(
    ("total", "workers", "count"),
    [
        pytest.param(0, 4, 1, id="empty"),
        pytest.param(3, 4, 3, id="fewer-rows-than-workers"),
        pytest.param(50_000, 4, 4, id="at-least-one-per-worker"),
        pytest.param(260_000, 4, 11, id="by-window-rows"),
        pytest.param(10_000_000, 4, 64, id="capped"),
    ],
)
def test_windows_count(total, workers, count):
    assert windows_count(total=total, workers=workers) == count


@pytest.mark.parametrize(
    ("low", "high", "query"),
    [
        pytest.param(None, None, "active=true", id="whole"),
        pytest.param(
            None,
            T[1],
            "active=true^sys_created_onISEMPTY^ORsys_created_on<2026-01-02 00:00:00",
            id="first-takes-empty",
        ),
        pytest.param(
            T[1],
            T[2],
            "active=true^sys_created_on>=2026-01-02 00:00:00^sys_created_on<2026-01-03 00:00:00",
            id="middle",
        ),
        pytest.param(T[2], None, "active=true^sys_created_on>=2026-01-03 00:00:00", id="last"),
    ],
)
def test_window_query(low, high, query):
    assert window_query(base="active=true", created_from=low, created_to=high) == query


def test_window_query_gives_each_or_branch_the_window():
    assert window_query(base="a=1^NQb=2^ORDERBYnumber", created_from=None, created_to=T[1]) == (
        "a=1^sys_created_onISEMPTY^ORsys_created_on<2026-01-02 00:00:00"
        "^NQb=2^sys_created_onISEMPTY^ORsys_created_on<2026-01-02 00:00:00^ORDERBYnumber"
    )
    assert created_order_query(base="a=1^ORDERBYnumber") == (
        "a=1^sys_created_onISNOTEMPTY^ORDERBYsys_created_on"
    )


# --- planning against the emulator ---------------------------------------------------------


def add_uncreated(emu: Emulator, count: int) -> list[str]:
    """Rows with no sys_created_on (copies of existing ones under new ids)."""
    rows = emu.store.rows("incident")[:count]
    added = []
    for i, row in enumerate(rows):
        copy = {**row, "sys_id": f"{0xE0 + i:02x}" + "e" * 30, "number": f"INCX{i:04d}"}
        copy["sys_created_on"] = ""
        added.append(emu.store.insert("incident", copy)["sys_id"])
    return added


def test_windows_part_the_table_exactly(db):
    # given a table with some rows that have no sys_created_on, under an ^NQ base query
    with Emulator(make_dataset(incidents=400)) as emu:
        uncreated = add_uncreated(emu, 3)
        base = "active=true^NQactive=false"
        client = connection_client(connection=make_connection(emu))
        order = created_order_query(base=base)
        total = client.get_page("incident", query=order, limit=1, count=True).total_count
        assert total == 400  # the rows with a sys_created_on
        # when boundaries are read at ranks total·i/5, as backfill_start reads them
        boundaries = [
            client.get_page("incident", query=order, limit=1, offset=total * i // 5).rows[0][
                "sys_created_on"
            ]
            for i in range(1, 5)
        ]
        plan = windows_plan(datetime.fromisoformat(b).replace(tzinfo=UTC) for b in boundaries)
        # then the windows' keyset queries read every row once, uncreated ones in the first
        seen: list[str] = []
        for index, (low, high) in enumerate(plan):
            query = keyset_query(
                base=window_query(base=base, created_from=low, created_to=high),
                after=None,
                upper=None,
            )
            ids = [r["sys_id"] for r in client.get_page("incident", query=query, limit=1000).rows]
            assert 60 <= len(ids) <= 100 + 3, (index, len(ids))  # about equal
            if index == 0:
                assert set(uncreated) <= set(ids)
            seen += ids
        assert Counter(seen) == Counter(r["sys_id"] for r in emu.store.rows("incident"))
        client.close()


# --- runs ------------------------------------------------------------------------------------


def assert_sums(run: SyncRun) -> None:
    """The run's counters are its windows' summed (pages and requests: plus its own, the
    planning requests and the closing pass)."""
    sums = run.windows.aggregate(**{name: Sum(name) for name in COUNTED})
    for name in ("rows_seen", "created", "updated", "skipped_stale"):
        assert getattr(run, name) == sums[name], name
    assert run.pages >= sums["pages"] and run.requests > sums["requests"]


def assert_no_duplicates(source) -> None:
    pairs = Counter(WorkItem.objects.filter(source=source).values_list("table", "sys_id"))
    assert max(pairs.values()) == 1


def test_a_full_run_in_windows_mirrors_the_table(emulator, incidents):
    # given 300 incidents (plus 2 with no sys_created_on), pages of 50
    uncreated = add_uncreated(emulator, 2)
    emulator.clear_log()

    # when a full run is asked for in 4 windows
    run = wait_for(sync_run_request(source=incidents, mode="full", windows=4).pk)

    # then each window read its part, the run counts their sum, the table is mirrored
    assert run.status == "succeeded", run.error
    assert run.window_count == 4
    windows = list(run.windows.all())
    assert [w.status for w in windows] == ["succeeded"] * 4
    assert windows[0].created_from is None and windows[-1].created_to is None
    assert all(a.created_to == b.created_from for a, b in zip(windows, windows[1:], strict=False))
    assert sum(w.created for w in windows) == run.created == 302
    assert run.rows_seen == 302
    assert_sums(run)
    assert_mirrors(emulator, incidents)
    assert_no_duplicates(incidents)
    assert set(uncreated) <= set(WorkItem.objects.values_list("sys_id", flat=True))
    # each row read once, plus the planning's one-row requests (a count, 3 boundaries)
    assert emulator.rows_served("incident") == 302 + 4
    # the cursor is the furthest key read, so an incremental run starts from the top
    cursor = SyncCursor.objects.get(source=incidents)
    top = max((w.hwm_ts, w.hwm_sys_id) for w in windows)
    assert (cursor.hwm_ts, cursor.hwm_sys_id) == top
    later = wait_for(sync_run_request(source=incidents).pk)
    assert (later.status, later.created, later.updated, later.window_count) == (
        "succeeded",
        0,
        0,
        0,
    )


def test_a_window_retries_a_transient_failure_and_the_run_succeeds(emulator, incidents):
    # given an instance that hibernates on every 5th request (an HTML page: transient)
    emulator.set_faults_dict({"html": {"every": 6}})

    run = wait_for(sync_run_request(source=incidents, mode="full", windows=3).pk)

    assert run.status == "succeeded", run.error
    assert "failed, retrying" in run.log
    assert sum(w.attempts for w in run.windows.all()) > 3
    emulator.set_faults_dict(None)
    assert_sums(run)
    assert_mirrors(emulator, incidents)
    assert_no_duplicates(incidents)


def test_a_permanent_failure_of_a_window_fails_the_run(
    emulator, incidents, settings, no_window_tasks
):
    # given a planned backfill whose windows run here, with no retries left
    run = sync_run_request(source=incidents, mode="full", enqueue=False, windows=3)
    assert sync_run_attempt(run_id=run.pk) == "windows"
    settings.SERVICENOW_RUN_RETRIES = 0
    emulator.set_faults_dict({"html": {"every": 6}})

    # when a window meets a transient failure with no budget left
    backfill.backfill_work(run_id=run.pk)

    # then the run failed, naming the window, and nothing is left to claim
    run.refresh_from_db()
    assert run.status == "failed"
    # (the first window reads the choice labels, the others reuse them; two pages a
    # window: the sixth request is window 2's first)
    assert run.error.startswith("window 2 [2026-")
    assert "instance unavailable" in run.error
    statuses = list(run.windows.values_list("status", flat=True))
    assert statuses == ["succeeded", "succeeded", "failed"]
    assert backfill.window_claim(connection_id=incidents.connection_id) is None


def test_windows_keep_the_stream_s_guarantees_under_faults(emulator, incidents):
    # given hidden rows, duplicates inside pages and rows edited between pages
    emulator.set_faults_dict(
        {"hidden": {"modulo": 7}, "duplicates": {"every": 2}, "edit_between_pages": {"rows": 2}}
    )

    run = wait_for(sync_run_request(source=incidents, mode="full", windows=3).pk)

    # then after incremental runs settle, the visible table is mirrored once
    assert run.status == "succeeded", run.error
    assert_sums(run)
    emulator.set_faults_dict({"hidden": {"modulo": 7}})
    settle(incidents)
    assert_mirrors(emulator, incidents, hidden_modulo=7)
    assert_no_duplicates(incidents)


def test_incremental_and_reconcile_runs_and_users_sources_stay_one_stream(
    emulator, incidents, users_source
):
    with pytest.raises(ValueError, match="only a full run"):
        sync_run_request(source=incidents, mode="incremental", windows=2)
    with pytest.raises(ValueError, match="only a full run"):
        sync_run_request(source=incidents, mode="reconcile", windows=2)
    with pytest.raises(ValueError, match="only a full run"):
        sync_run_request(source=users_source, mode="full", windows=2)


@pytest.fixture
def no_window_tasks(monkeypatch):
    """Window tasks are not launched: the test runs them here (whatever runs tasks)."""
    launched = []
    monkeypatch.setattr(
        "servicenow.tasks.sync_backfill_enqueue",
        lambda run_id, *, tasks: launched.append((run_id, tasks)),
    )
    return launched


def test_a_small_table_stays_one_stream_a_large_one_is_split(
    emulator, incidents, settings, no_window_tasks
):
    # with a broker (not eager), a full run decides by the table's size
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.SERVICENOW_BACKFILL_MIN_ROWS = 301
    settings.SERVICENOW_BACKFILL_WINDOW_ROWS = 100
    emulator.clear_log()
    small = sync_run_request(source=incidents, mode="full", enqueue=False)
    assert sync_run_attempt(run_id=small.pk) == "done"
    small.refresh_from_db()
    assert (small.window_count, small.created, small.total_estimate) == (0, 300, 300)
    assert emulator.rows_served("incident") == 300  # the stream's own count decided: no extra

    settings.SERVICENOW_BACKFILL_MIN_ROWS = 300
    emulator.clear_log()
    large = sync_run_request(source=incidents, mode="full", enqueue=False, workers=2)
    assert sync_run_attempt(run_id=large.pk) == "windows"
    large.refresh_from_db()
    assert large.status == "running"
    # the choice labels, the stream's first page (counted, not stored), then a one-row
    # request per boundary
    assert emulator.rows_served("incident") == 50 + 2
    assert (large.pages, large.created, large.requests) == (0, 0, 4)
    assert large.window_count == 3  # 300 rows by 100 a window
    assert no_window_tasks == [(large.pk, 2)]
    assert "backfill: 3 windows by sys_created_on for 300 rows, 2 at a time" in large.log

    # eager (no broker), the same table stays one stream unless windows are asked for
    settings.CELERY_TASK_ALWAYS_EAGER = True
    large.status = "succeeded"
    large.save()
    eager = sync_run_request(source=incidents, mode="full", enqueue=False)
    assert sync_run_attempt(run_id=eager.pk) == "done"
    eager.refresh_from_db()
    assert eager.window_count == 0


def test_a_window_whose_worker_died_is_taken_over_and_resumes(
    emulator, incidents, no_window_tasks, monkeypatch, settings
):
    # given a full run planned in 2 windows of 150 rows (3 pages), nothing launched
    run = sync_run_request(source=incidents, mode="full", enqueue=False, windows=2)
    assert sync_run_attempt(run_id=run.pk) == "windows"
    emulator.clear_log()

    # when a worker takes window 0 and dies (no cleanup) storing its third page
    window = window_claim(connection_id=incidents.connection_id, prefer_run_id=run.pk)
    assert window.index == 0
    stored = {"pages": 0}
    store = WorkItemWriter.store

    class WorkerKilled(BaseException):
        pass

    def store_then_die(self, page):
        stored["pages"] += 1
        if stored["pages"] == 3:
            raise WorkerKilled
        return store(self, page)

    monkeypatch.setattr(WorkItemWriter, "store", store_then_die)
    with pytest.raises(WorkerKilled):
        backfill.window_sync(window=window)
    monkeypatch.setattr(WorkItemWriter, "store", store)
    window.refresh_from_db()
    assert (window.status, window.pages, window.created) == ("running", 2, 100)
    assert window.resume_ts is not None
    # a live window is no one else's: the next claim takes window 1
    other = window_claim(connection_id=incidents.connection_id)
    assert other.index == 1
    SyncWindow.objects.filter(pk=other.pk).update(status="pending")

    # and it stops answering for the stale threshold
    stale = timezone.now() - timedelta(seconds=settings.SERVICENOW_STALE_RUN_SECONDS + 1)
    SyncWindow.objects.filter(pk=window.pk).update(heartbeat_at=stale)
    backfill.backfill_work(run_id=run.pk)

    # then it was taken over and went on after its last page: the killed page and the one
    # prefetched with it are all that is read twice
    window.refresh_from_db()
    assert (window.status, window.attempts) == ("succeeded", 2)
    assert window.created == window.rows_seen - window.updated - window.skipped_stale
    run = wait_for(run.pk)  # the closing pass, queued by the last window
    assert run.status == "succeeded", run.error
    assert "window 0: attempt 2 resumed after" in run.log
    served = emulator.rows_served("incident")
    assert 300 <= served <= 300 + 2 * 50, served
    assert_sums(run)
    assert_mirrors(emulator, incidents)
    assert_no_duplicates(incidents)


def test_a_window_of_an_earlier_run_attempt_is_claimable_at_once(
    emulator, incidents, no_window_tasks
):
    run = sync_run_request(source=incidents, mode="full", enqueue=False, windows=2)
    assert sync_run_attempt(run_id=run.pk) == "windows"
    window = window_claim(connection_id=incidents.connection_id)
    assert window_claim(connection_id=incidents.connection_id).index == 1
    assert window_claim(connection_id=incidents.connection_id) is None  # both live
    # the run is taken over (a new attempt): its windows' old claims count for nothing
    run.refresh_from_db()
    SyncRun.objects.filter(pk=run.pk).update(attempts=run.attempts + 1)
    again = window_claim(connection_id=incidents.connection_id)
    assert (again.pk, again.attempts, again.run_attempt) == (window.pk, 2, run.attempts + 1)


def test_a_connection_runs_at_most_its_limit_of_windows(emulator, incidents, no_window_tasks):
    connection = incidents.connection
    connection.backfill_workers = 1
    connection.save()
    run = sync_run_request(source=incidents, mode="full", enqueue=False, windows=3)
    assert sync_run_attempt(run_id=run.pk) == "windows"
    assert no_window_tasks == [(run.pk, 1)]
    assert window_claim(connection_id=connection.pk).index == 0
    assert window_claim(connection_id=connection.pk) is None


SOURCES = "/api/v1/servicenow/sources/"


def test_the_api_asks_for_windows_and_shows_them(emulator, incidents, admin_api):
    # a run that is never split refuses windows (400, no run)
    response = admin_api.post(
        f"{SOURCES}{incidents.pk}/sync/", {"mode": "incremental", "windows": 3}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {
        "windows": ["only a full run of a work-items source is split into windows"]
    }
    assert SyncRun.objects.count() == 0

    # a full one in 3 windows, 2 at a time, shows its windows
    response = admin_api.post(
        f"{SOURCES}{incidents.pk}/sync/",
        {"mode": "full", "windows": 3, "workers": 2},
        format="json",
    )
    assert response.status_code == 202
    run = wait_for(response.json()["run"])
    assert (run.status, run.workers) == ("succeeded", 2)
    body = admin_api.get(f"/api/v1/servicenow/runs/{run.pk}/").json()
    assert body["window_count"] == 3
    assert [w["index"] for w in body["windows"]] == [0, 1, 2]
    assert sum(w["created"] for w in body["windows"]) == body["created"] == 300
    assert body["windows"][0]["created_from"] is None


def test_a_connection_s_backfill_workers_are_between_1_and_32(emulator, connection, admin_api):
    url = f"/api/v1/servicenow/connections/{connection.pk}/"
    assert admin_api.patch(url, {"backfill_workers": 33}, format="json").status_code == 400
    assert (
        admin_api.patch(url, {"backfill_workers": 2}, format="json").json()["backfill_workers"] == 2
    )
    assert admin_api.patch(url, {"backfill_workers": None}, format="json").status_code == 200
