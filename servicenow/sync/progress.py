"""What a run has done so far: counters, and the progress saved with every page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from ..client import ServiceNowClient
from ..models import SyncRun, SyncWindow

logger = logging.getLogger("servicenow.sync")
LOG_CHARS = 20000  # a run's log keeps its newest characters


@dataclass
class Counters:
    rows_seen: int = 0
    created: int = 0
    updated: int = 0
    skipped_stale: int = 0
    deleted: int = 0
    evidence_created: int = 0

    @classmethod
    def of_run(cls, run: SyncRun) -> Counters:
        """Start from what earlier attempts of this run counted."""
        return cls(**{f.name: getattr(run, f.name) for f in fields(cls)})


COUNTER_FIELDS = tuple(f.name for f in fields(Counters))


class RunLost(Exception):
    """This attempt no longer holds its run (another attempt took it over): stop, write
    nothing more."""


def log_append(run: SyncRun, message: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    run.log = (run.log + f"{stamp} {message}\n")[-LOG_CHARS:]


class RunContext:
    """Progress written per page: counters, requests, heartbeat, notes."""

    def __init__(
        self,
        run: SyncRun,
        client: ServiceNowClient,
        counters: Counters,
        on_progress: Callable[[SyncRun], None] | None,
    ):
        self.on_progress = on_progress
        self.run = run
        self.client = client
        self.counters = counters
        self.requests_before = client.request_count
        self.requests_base = run.requests  # from earlier attempts of this run
        # Told the first count of the rows pass (before its first page is stored): a full
        # run may raise from it to be split into windows instead (sync/backfill.py).
        self.on_first_total: Callable[[int | None], None] | None = None

    def note(self, message: str) -> None:
        logger.warning("sync run %s: %s", self.run.pk, message)
        log_append(self.run, message)

    def total(self, total: int | None) -> None:
        if total is not None and self.run.total_estimate is None:
            self.run.total_estimate = total
        if self.on_first_total is not None:
            hook, self.on_first_total = self.on_first_total, None
            hook(total)

    def save_progress(self) -> None:
        """Save progress and position; called inside each page's transaction, so both commit
        with the page or not at all. Raises RunLost (rolling the page back) when the run is
        no longer this attempt's: it was reclaimed from a worker taken to be dead."""
        run = self.run
        run.pages += 1
        run.requests = self.run_requests()
        for name in COUNTER_FIELDS:
            setattr(run, name, getattr(self.counters, name))
        run.heartbeat_at = timezone.now()
        names = (
            "pages",
            "requests",
            *COUNTER_FIELDS,
            "heartbeat_at",
            "total_estimate",
            "log",
            "resume_ts",
            "resume_sys_id",
        )
        held = SyncRun.objects.filter(
            pk=run.pk, attempts=run.attempts, status=SyncRun.Status.RUNNING
        ).update(**{name: getattr(run, name) for name in names})
        if not held:
            raise RunLost(f"sync run {run.pk} attempt {run.attempts} was taken over")
        if self.on_progress is not None:
            self.on_progress(run)

    def beat(self) -> None:
        """A heartbeat between pages (called while a request is in flight), fenced like a
        page: RunLost once another attempt holds the run."""
        held = SyncRun.objects.filter(
            pk=self.run.pk, attempts=self.run.attempts, status=SyncRun.Status.RUNNING
        ).update(heartbeat_at=timezone.now())
        if not held:
            raise RunLost(f"sync run {self.run.pk} attempt {self.run.attempts} was taken over")

    @property
    def beat_interval(self) -> float:
        # Three beats per stale window: one delayed write never makes a live run look dead.
        return max(0.5, settings.SERVICENOW_STALE_RUN_SECONDS / 3)

    def pager_hooks(self) -> dict:
        """What every pager of a run is given: notes, and heartbeats while it waits."""
        return {"on_note": self.note, "on_wait": self.beat, "wait_interval": self.beat_interval}

    def pipeline_hooks(self) -> dict:
        """The same for a fetching process (pipeline.py): notes and the total come back
        through its queue; heartbeats while the queue is empty."""
        return {
            "on_note": self.note,
            "on_total": self.total,
            "on_wait": self.beat,
            "wait_interval": self.beat_interval,
        }

    def run_requests(self) -> int:
        return self.requests_base + (self.client.request_count - self.requests_before)

    @property
    def total_estimate(self) -> int | None:
        """Rows the stream's first count said it would read (None: not counted yet)."""
        return self.run.total_estimate


class WindowContext(RunContext):
    """Progress of one backfill window (sync/backfill.py): the window's own counters and
    position, fenced by the window's attempt, and the same increments added to its run's
    counters (fenced by the run attempt the window was claimed under), in the page's
    transaction — so a run's counters are always the sum of its windows' and the progress
    page reads them as it does a single stream's. Increments, not totals: windows of one run
    commit pages concurrently."""

    def __init__(self, run: SyncRun, window: SyncWindow, client: ServiceNowClient, counters):
        super().__init__(run, client, counters, None)
        self.window = window
        self.requests_base = window.requests
        self.notes: list[str] = []  # for the run's log when the window ends

    def note(self, message: str) -> None:
        # Called from the prefetch thread too: no database here (the run's log is written
        # when the window ends, under the run's lock).
        logger.warning("sync run %s window %s: %s", self.run.pk, self.window.index, message)
        self.notes.append(message)

    @property
    def total_estimate(self) -> int | None:
        return self.window.total_estimate

    def total(self, total: int | None) -> None:
        if total is not None and self.window.total_estimate is None:
            self.window.total_estimate = total

    def save_progress(self) -> None:
        self.write(pages=1)

    def write(self, *, pages: int, **window_fields) -> None:
        """Save the window's counters, position and heartbeat and add what changed since
        the last write to the run's; `window_fields` go on the window too (its end). Raises
        RunLost when the window or the run is no longer this attempt's."""
        window, run, now = self.window, self.run, timezone.now()
        deltas = {
            name: getattr(self.counters, name) - getattr(window, name) for name in COUNTER_FIELDS
        }
        deltas["requests"] = self.run_requests() - window.requests
        deltas["pages"] = pages
        totals = {name: getattr(window, name) + delta for name, delta in deltas.items()}
        held = SyncWindow.objects.filter(
            pk=window.pk, attempts=window.attempts, status=SyncWindow.Status.RUNNING
        ).update(
            **totals,
            heartbeat_at=now,
            total_estimate=window.total_estimate,
            resume_ts=window.resume_ts,
            resume_sys_id=window.resume_sys_id,
            hwm_ts=window.hwm_ts,
            hwm_sys_id=window.hwm_sys_id,
            **window_fields,
        )
        if not held:
            raise RunLost(f"sync run {run.pk} window {window.index} was taken over")
        increments = {name: F(name) + delta for name, delta in deltas.items() if delta}
        held = SyncRun.objects.filter(
            pk=run.pk, attempts=window.run_attempt, status=SyncRun.Status.RUNNING
        ).update(heartbeat_at=now, **increments)
        if not held:
            raise RunLost(f"sync run {run.pk} attempt {window.run_attempt} was taken over")
        for name, value in totals.items():
            setattr(window, name, value)
        window.heartbeat_at = now

    def beat(self) -> None:
        window, now = self.window, timezone.now()
        held = SyncWindow.objects.filter(
            pk=window.pk, attempts=window.attempts, status=SyncWindow.Status.RUNNING
        ).update(heartbeat_at=now) and SyncRun.objects.filter(
            pk=self.run.pk, attempts=window.run_attempt, status=SyncRun.Status.RUNNING
        ).update(heartbeat_at=now)
        if not held:
            raise RunLost(f"sync run {self.run.pk} window {window.index} was taken over")
