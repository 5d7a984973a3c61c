"""People pages: a manager's team view of their reports' evidence, and the admin's CSV
import (a dry run that lists every bad row, then an explicit commit)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from apps.evidence import selectors as evidence_selectors
from apps.evidence.forms import EvidenceFilterForm
from apps.evidence.views import evidence_list_context, render_list
from ladder_tracker.decorators import admin_only

from .forms import PeopleImportForm
from .imports import COLUMNS, people_import
from .selectors import person_for_user, person_list, person_report_ids


@login_required
def team_page(request):
    me = person_for_user(user=request.user)
    report_ids = person_report_ids(person=me) if me else set()
    if not report_ids:
        raise Http404("You have no reports.")
    reports = list(person_list(viewer=request.user).filter(pk__in=report_ids).order_by("name"))
    form = EvidenceFilterForm(
        request.GET, version=evidence_selectors.ladder_version_current(person=me), people=reports
    )
    filters = form.filters()
    # Reports only (not your own evidence); what of theirs you may read is the selector's call.
    qs = evidence_selectors.evidence_list(viewer=request.user, filters=filters).filter(
        person_id__in=report_ids
    )
    context = evidence_list_context(request, filters_form=form, qs=qs)
    context.update(reports=reports, show_person=True, list_url=request.path)
    return render_list(request, "people/team.html", context)


@admin_only
def people_import_page(request):
    report = None
    form = PeopleImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        commit = form.cleaned_data["commit"]
        report = people_import(
            text=form.cleaned_data["text"], dry_run=not commit, actor=request.user
        )
        if commit and report.ok:
            messages.success(
                request, f"Imported: {report.created} created, {report.updated} updated."
            )
            return redirect("people:import")
        # what the commit button sends back: exactly the text this report is about
        form = PeopleImportForm(initial={"text": form.cleaned_data["text"], "commit": True})
    context = {"form": form, "report": report, "columns": COLUMNS}
    status = 400 if (form.errors or (report and not report.ok)) else 200
    return render(request, "people/import.html", context, status=status)
