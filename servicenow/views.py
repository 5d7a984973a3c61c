"""The admin's Sync page: test connections, start syncs, watch runs with a live bar (htmx)."""

from django.conf import settings
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ladder_tracker.decorators import admin_only
from ladder_tracker.errors import ConflictError

from . import selectors, services
from .models import SyncRun

RECENT_RUNS = 20


def _runs_context():
    runs = list(selectors.sync_run_list()[:RECENT_RUNS])
    stale_after = services.stale_run_after()
    for run in runs:
        run.reclaim_when = run.reclaim_at(stale_after)  # shown for active runs
    return {"runs": runs, "any_active": any(r.status in SyncRun.ACTIVE for r in runs)}


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
    status, notice = 200, None
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
    context = {**_runs_context(), "notice": notice, "notice_is_error": status != 200}
    # htmx swaps 2xx only by default; the page lets 400/409 through too (data-swap-statuses,
    # static/js/app.js).
    return render(request, "servicenow/_runs.html", context, status=status)


@admin_only
def run_detail(request, pk: int):
    run = get_object_or_404(selectors.sync_run_list(), pk=pk)
    return render(request, "servicenow/run_detail.html", {"run": run})
