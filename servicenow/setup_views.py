"""The admin's ServiceNow setup pages: connections and their sources in one place, with each
source's health; connection forms whose credentials follow the auth type, with Test
connection beside them (htmx); source settings as fields. The Sync page (views.py) starts
and watches runs; these pages configure what it runs."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ladder_tracker.decorators import admin_required
from ladder_tracker.errors import form_error

from . import selectors, services
from .forms import ConnectionForm, SourceForm

SOURCE_RUNS_SHOWN = 50


@admin_required
def setup_page(request):
    """Every connection with its sources and their health, in a fixed number of queries
    (connections, sources with their health, their recent runs)."""
    now = timezone.now()
    by_connection: dict[int, list[dict]] = {}
    for source in selectors.source_list():
        by_connection.setdefault(source.connection_id, []).append(
            {
                "source": source,
                "cursor_at": selectors.source_cursor_at(source),
                "lag_seconds": selectors.source_lag_seconds(source, now=now),
                "last_run": source.recent_runs[0] if source.recent_runs else None,
            }
        )
    connections = [
        {"connection": c, "sources": by_connection.get(c.pk, [])}
        for c in selectors.connection_list()
    ]
    return render(request, "servicenow/setup.html", {"connections": connections})


def _connection_form_page(request, form, connection=None, status=200):
    return render(
        request,
        "servicenow/connection_form.html",
        {"form": form, "connection": connection},
        status=status,
    )


def _connection_save(request, form, connection=None):
    if not form.is_valid():
        return _connection_form_page(request, form, connection, status=422)
    try:
        saved = form.save_connection(actor=request.user)
    except ValidationError as exc:  # the service's own check, should a rule differ
        form_error(form, exc)
        return _connection_form_page(request, form, connection, status=422)
    messages.success(request, f"Connection “{saved.name}” saved.")
    return redirect("servicenow:setup")


@admin_required
def connection_create(request):
    if request.method == "POST":
        return _connection_save(request, ConnectionForm(request.POST))
    return _connection_form_page(request, ConnectionForm())


@admin_required
def connection_edit(request, pk: int):
    connection = get_object_or_404(selectors.connection_list(), pk=pk)
    if request.method == "POST":
        return _connection_save(
            request, ConnectionForm(request.POST, instance=connection), connection
        )
    return _connection_form_page(request, ConnectionForm(instance=connection), connection)


@admin_required
@require_POST
def connection_try(request, pk: int | None = None):
    """Test connection beside the form: the settings as typed (a secret left empty is the
    stored one), checked without saving anything. A form that does not validate says what
    to fix first; nothing is sent then."""
    connection = get_object_or_404(selectors.connection_list(), pk=pk) if pk else None
    form = ConnectionForm(request.POST, instance=connection)
    context = {"form": form, "result": None}
    if form.is_valid():
        context["result"] = services.connection_check(
            connection=form.trial_connection(), record=False
        )
    return render(request, "servicenow/_setup_check.html", context)


def _source_form_page(request, form, source=None, status=200):
    return render(
        request, "servicenow/source_form.html", {"form": form, "source": source}, status=status
    )


def _source_save(request, form, source=None):
    if not form.is_valid():
        return _source_form_page(request, form, source, status=422)
    saved = form.save_source()
    messages.success(request, f"Source “{saved.name}” saved.")
    return redirect("servicenow:setup")


@admin_required
def source_create(request):
    if request.method == "POST":
        return _source_save(request, SourceForm(request.POST))
    initial = {}
    if (chosen := request.GET.get("connection", "")).isdigit():
        initial["connection"] = int(chosen)
    return _source_form_page(request, SourceForm(initial=initial))


@admin_required
def source_edit(request, pk: int):
    source = get_object_or_404(selectors.source_list(), pk=pk)
    if request.method == "POST":
        return _source_save(request, SourceForm(request.POST, instance=source), source)
    return _source_form_page(request, SourceForm(instance=source), source)


@admin_required
def source_runs(request, pk: int):
    source = get_object_or_404(selectors.source_list(), pk=pk)
    runs = list(selectors.sync_run_list().filter(source=source)[:SOURCE_RUNS_SHOWN])
    for run in runs:
        run.duration_seconds = selectors.run_duration_seconds(run)
    return render(
        request,
        "servicenow/source_runs.html",
        {"source": source, "runs": runs, "shown": SOURCE_RUNS_SHOWN},
    )
