"""The admin's Sync page: test connections, start syncs, watch runs with a live bar (htmx).

"Sync now" only requests the run (a worker, or in eager mode a thread, does it) and answers
202 at once with the runs table; the new run's row polls `run_progress` every second while
the run is queued or running and stops when it has ended."""

from django.conf import settings
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ladder_tracker.decorators import admin_only
from ladder_tracker.errors import ConflictError

from . import selectors, services
from .models import SyncRun

RECENT_RUNS = 20


def _with_reclaim_time(runs: list[SyncRun]) -> list[SyncRun]:
    stale_after = services.stale_run_after()
    for run in runs:
        run.reclaim_when = run.reclaim_at(stale_after)  # shown for active runs
    return runs


def _runs_context():
    return {"runs": _with_reclaim_time(list(selectors.sync_run_list()[:RECENT_RUNS]))}


def _health_rows(sources) -> list[dict]:
    """What the page's health table shows of each source (selectors compute it)."""
    now = timezone.now()
    return [
        {
            "source": source,
            "cursor_at": selectors.source_cursor_at(source),
            "lag_seconds": selectors.source_lag_seconds(source, now=now),
            "recent_runs": [
                {"run": run, "duration_seconds": selectors.run_duration_seconds(run)}
                for run in source.recent_runs
            ],
        }
        for source in sources
    ]


@admin_only
def sync_page(request):
    sources = list(selectors.source_list())
    context = {
        "connections": selectors.connection_list(),
        "sources": sources,
        "health": _health_rows(sources),
        "alert_after": settings.SERVICENOW_ALERT_AFTER_FAILURES,
        "modes": SyncRun.Mode.choices,
        **_runs_context(),
    }
    return render(request, "servicenow/sync.html", context)


@admin_only
def runs_partial(request):
    return render(request, "servicenow/_runs.html", _runs_context())


@admin_only
@require_POST
def connection_test(request, pk: int):
    connection = get_object_or_404(selectors.connection_list(), pk=pk)
    result = services.connection_check(connection=connection)
    return render(request, "servicenow/_check.html", {"connection": connection, "result": result})


@admin_only
@require_POST
def source_sync(request, pk: int):
    source = get_object_or_404(selectors.source_list(), pk=pk)
    mode = request.POST.get("mode", SyncRun.Mode.INCREMENTAL)
    status, notice, run = 202, None, None
    if mode not in SyncRun.Mode.values:
        status, notice = 400, f"Unknown mode {mode!r}."
    else:
        try:
            run = services.sync_run_request(source=source, mode=mode, requested_by=request.user)
            if run.attempts:  # an abandoned run, resumed rather than replaced
                notice = f"{source.name}: run {run.pk} ({run.mode}) resumed from its last page."
            else:
                notice = f"{source.name}: run {run.pk} started ({mode})."
        except ConflictError as exc:  # a run already active, or the source disabled
            status, notice = exc.status_code, exc.message
    context = {
        **_runs_context(),
        "notice": notice,
        "notice_is_error": status != 202,
        "started": run if status == 202 else None,
    }
    # 202: the run is queued, not done; its row (in this answer) polls run_progress. htmx
    # swaps 2xx; the page lets 400/409 through too (data-swap-statuses, static/js/app.js).
    return render(request, "servicenow/_runs.html", context, status=status)


@admin_only
def run_progress(request, pk: int):
    """One run's row as it is now: the live progress "Sync now" polls (pages, rows, state)."""
    run = get_object_or_404(selectors.sync_run_list(), pk=pk)
    return render(request, "servicenow/_run_row.html", {"run": _with_reclaim_time([run])[0]})


@admin_only
def run_detail(request, pk: int):
    run = get_object_or_404(selectors.sync_run_list(), pk=pk)
    return render(request, "servicenow/run_detail.html", {"run": _with_reclaim_time([run])[0]})
