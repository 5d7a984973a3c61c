"""People pages: sign-in, and the admin's CSV import (a dry run that lists every bad row,
then an explicit commit). A manager's team view is an evidence page
(apps/evidence/views.py); single sign-on's views are in sso.py."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect, render

from ladder_tracker.decorators import admin_only

from .forms import PeopleImportForm
from .imports import COLUMNS, people_import


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


class SignInView(auth_views.LoginView):
    """Django's login page, with the SSO button when SSO is configured. Whether a password
    is accepted is the backend's rule (apps/people/auth.py); the page only says so."""

    redirect_authenticated_user = True
