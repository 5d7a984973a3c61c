"""What a run has done so far: counters, and the progress saved with every page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields

from django.conf import settings
from django.utils import timezone

from ..client import ServiceNowClient
from ..models import SyncRun

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

    def note(self, message: str) -> None:
        logger.warning("sync run %s: %s", self.run.pk, message)
        log_append(self.run, message)

    def total(self, total: int | None) -> None:
        if total is not None and self.run.total_estimate is None:
            self.run.total_estimate = total

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
