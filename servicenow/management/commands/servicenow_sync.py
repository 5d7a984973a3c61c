"""manage.py servicenow_sync [--source ID | --all] [--mode incremental|full|reconcile]

Runs the sync in this process (like a worker would), drawing a progress bar on a terminal.
Users sources go first so that work items can be attributed to the people they bring.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from servicenow.models import Source, SyncRun
from servicenow.services import RunAlreadyActive, SourceDisabled, sync_run_request
from servicenow.sync.runs import sync_run_attempt

BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Sync ServiceNow sources now, in this process, with a progress bar."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--source", type=int, action="append", help="source id (repeatable)")
        which.add_argument("--all", action="store_true", help="every enabled source")
        parser.add_argument("--mode", choices=SyncRun.Mode.values, default="incremental")

    def handle(self, *args, source, all, mode, **options):
        sources = Source.objects.select_related("connection")
        sources = sources.filter(enabled=True) if all else sources.filter(pk__in=source)
        # users first: work items are attributed to the people that source brings
        ordered = sorted(sources, key=lambda s: (s.kind != Source.Kind.USERS, s.pk))
        if not ordered:
            raise CommandError("No matching source.")
        failed = 0
        for src in ordered:
            failed += not self._sync_one(src, mode)
        if failed:
            raise CommandError(f"{failed} of {len(ordered)} sources failed; see the runs.")

    def _sync_one(self, source: Source, mode: str) -> bool:
        try:
            # One stream: this process runs it (a backfill's windows would need workers).
            run = sync_run_request(source=source, mode=mode, enqueue=False, windows=1)
        except (RunAlreadyActive, SourceDisabled) as exc:
            self.stderr.write(f"{source.name}: {exc}")
            return False
        label = f"{source.name} ({source.table}, {mode})"
        tty = sys.stdout.isatty()

        def progress(r: SyncRun) -> None:
            if not tty:
                return
            done = r.progress or 0.0
            filled = int(done * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            total = f"/{r.total_estimate}" if r.total_estimate else ""
            self.stdout.write(f"\r{label} [{bar}] {r.rows_seen}{total} rows", ending="")
            self.stdout.flush()

        while True:
            outcome = sync_run_attempt(run_id=run.pk, on_progress=progress)
            if outcome != "retry":
                break
        run.refresh_from_db()
        if tty:
            self.stdout.write("")
        if run.status == SyncRun.Status.SUCCEEDED:
            self.stdout.write(
                self.style.SUCCESS(
                    f"{label}: {run.rows_seen} rows, {run.created} new, {run.updated} changed, "
                    f"{run.deleted} deleted, {run.evidence_created} evidence candidates, "
                    f"{run.requests} requests"
                )
            )
            return True
        self.stderr.write(self.style.ERROR(f"{label}: run {run.pk} {run.status}: {run.error}"))
        return False
