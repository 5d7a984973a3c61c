"""Corroboration pages: the owner's "who saw this work" panel on an evidence page (htmx),
the corroborator's requests page, and one request's page (the only view of the item a
corroborator has)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ladder_tracker.errors import ApplicationError, message_error

from . import corroboration as c
from . import selectors
from .models import Corroboration


def _snapshot_rows(evidence):
    from .views import snapshot_rows

    return snapshot_rows(evidence)


@login_required
@require_GET
def corroborators_panel(request, pk: int):
    """The suggestions with reasons and an Ask button each (an htmx fragment)."""
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    context = {"evidence": evidence, "suggestions": [], "error": None}
    try:
        context["suggestions"] = c.corroborators_suggest(viewer=request.user, evidence=evidence)
    except ApplicationError as exc:
        context["error"] = exc.message
    return render(request, "evidence/_corroborators.html", context)


@login_required
@require_POST
def corroboration_ask(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    error = None
    made = None
    try:
        person_id = int(request.POST.get("person", ""))
    except ValueError:
        person_id = 0
    try:
        made = c.corroboration_request(
            actor=request.user,
            evidence=evidence,
            person_id=person_id,
            reasons=request.POST.getlist("reasons"),
        )
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        return render(
            request,
            "evidence/_corroborator_asked.html",
            {"made": made, "error": error},
            status=200 if made else 422,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Asked {made.person.name}.")
    return redirect("evidence:detail", pk=evidence.pk)


@login_required
def corroboration_list_page(request):
    to_me = list(c.corroboration_list(viewer=request.user, role="to_me"))
    asked = list(c.corroboration_list(viewer=request.user, role="asked"))
    return render(
        request,
        "evidence/corroboration_list.html",
        {
            "pending": [x for x in to_me if x.state == Corroboration.State.PENDING],
            "answered": [x for x in to_me if x.state != Corroboration.State.PENDING],
            "asked": asked,
        },
    )


@login_required
def corroboration_detail_page(request, pk: int):
    corroboration = c.corroboration_get(viewer=request.user, pk=pk)
    if request.method == "POST":
        try:
            c.corroboration_answer(
                actor=request.user,
                corroboration=corroboration,
                confirm=request.POST.get("answer") == "confirm",
                comment=request.POST.get("comment", ""),
            )
        except ApplicationError as exc:
            message_error(request, exc)
        else:
            messages.success(request, "Thank you: your answer is recorded.")
        return redirect("corroborations:detail", pk=pk)
    me = getattr(request.user, "person", None)
    return render(
        request,
        "evidence/corroboration_detail.html",
        {
            "c": corroboration,
            "ev": corroboration.evidence,
            "snapshot": _snapshot_rows(corroboration.evidence),
            "can_answer": me is not None
            and me.pk == corroboration.person_id
            and corroboration.state == Corroboration.State.PENDING,
        },
    )
