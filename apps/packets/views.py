"""Packet pages: my packets, the builder (saved as you go with htmx), the read-only packet
with its snapshots and their diff, the manager's review, the committee's table and decision,
and the admin's cycles with their report.

Views parse input, call selectors and services, and render. Who sees a packet is decided in
selectors (outside your scope: 404); what you may do to it is decided in services by the
table in transitions.py, which the pages also ask (selectors.packet_actions_allowed) to offer
only what you may do. Service errors come back as form errors or messages
(ladder_tracker.errors), never a 500; a ForbiddenError the page does not show is a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.evidence.markdown import MARKDOWN_MAX_LENGTH
from apps.ladders.selectors import ladder_version_published
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_has_reports
from ladder_tracker.decorators import admin_only
from ladder_tracker.errors import (
    ApplicationError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    error_lines,
    form_error,
    message_error,
)

from . import analytics, charts, exports, selectors, services
from .forms import (
    NARRATIVE,
    NOTE,
    PICK,
    RATING_CHOICES,
    REVIEW_ACTIONS,
    SHARE,
    CycleForm,
    DecideForm,
    PacketStartForm,
    assessment_input,
    builder_input,
)
from .models import Packet, PromotionCycle
from .transitions import TRANSITIONS

STATE_ORDER = [s.value for s in Packet.State]


def _me(request) -> Person:
    """The signed-in person; without a profile there are no packet pages (404)."""
    person = person_for_user(user=request.user)
    if person is None:
        raise Http404("You have no person profile.")
    return person


def _int(raw) -> int | None:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return None
    return value if value >= 1 else None


def _sections(data: dict) -> list[dict]:
    """A packet's data (snapshot shape) grouped by competency, with its narrative."""
    narratives = data.get("narratives_html") or {}
    sections: dict[str, dict] = {}
    for exp in data.get("expectations", []):
        name = exp["competency"]
        section = sections.setdefault(
            name,
            {
                "name": name,
                "narrative_html": narratives.get(name, ""),
                "fraction": (data.get("coverage", {}).get("by_competency") or {}).get(name),
                "expectations": [],
            },
        )
        section["expectations"].append(exp)
    return list(sections.values())


# --- my packets ------------------------------------------------------------------------


def _start_form(me: Person, data=None) -> PacketStartForm:
    return PacketStartForm(
        data,
        person=me,
        version=ladder_version_published(ladder_id=me.ladder_id),
        # The page offers only cycles without an open packet of mine; a post (from a page
        # opened before) is checked against every open cycle, so the service says why not.
        cycles=(
            selectors.cycle_open_list()
            if data is not None
            else selectors.cycle_open_for_start(person=me)
        ),
    )


def _render_list(request, me: Person, form: PacketStartForm, status: int = 200):
    packets = selectors.packet_list_for_person(person=me)
    for packet in packets:
        packet.coverage_percent = round(100 * packet.covered / packet.total) if packet.total else 0
    open_packets = [p for p in packets if p.state in Packet.OPEN_STATES]
    context = {"me": me, "packets": packets, "form": form, "open_packets": open_packets}
    return render(request, "packets/packet_list.html", context, status=status)


@login_required
def packet_list_page(request):
    me = _me(request)
    return _render_list(request, me, _start_form(me))


@login_required
@require_POST
def packet_create_view(request):
    me = _me(request)
    form = _start_form(me, request.POST)
    if form.is_valid():
        try:
            packet = services.packet_create(
                person=me,
                actor=request.user,
                cycle=form.cleaned_data["cycle"],
                target_level=form.cleaned_data["target_level"],
            )
        except (InvalidError, ConflictError) as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Started your packet for level {packet.target_level}.")
            return redirect("packets:detail", pk=packet.pk)
    return _render_list(request, me, form, status=400)


# --- one packet: the builder or the read-only view --------------------------------------


def _coverage_context(packet: Packet) -> dict:
    coverage = selectors.packet_coverage(packet=packet)
    as_dict = coverage.as_dict()
    minimum = float(packet.cycle.min_coverage)
    groups: dict[str, list] = {}
    for exp in coverage.expectations:
        groups.setdefault(exp.competency, []).append(exp)
    return {
        "coverage": coverage,
        "coverage_percent": round(coverage.overall * 100),
        "coverage_groups": [
            {"name": name, "items": items, "percent": round(coverage.by_competency[name] * 100)}
            for name, items in groups.items()
        ],
        "chart": exports.coverage_svg(as_dict),
        "min_coverage_percent": round(minimum * 100),
        "below_minimum": coverage.overall < minimum,
        "cycle_open": services.cycle_is_open(cycle=packet.cycle),
    }


def _common_context(packet: Packet) -> dict:
    return {
        "packet": packet,
        "moved_on": selectors.packet_ladder_moved_on(packet=packet),
        "events": selectors.packet_event_list(packet=packet),
        "snapshots": selectors.packet_snapshot_list(packet=packet),
        "export_formats": exports.EXPORT_FORMATS,
    }


def _changes_requested(events) -> object | None:
    asked = [e for e in events if e.action == "request-changes"]
    return asked[-1] if asked else None


def _render_builder(request, packet: Packet, *, errors=None, gaps=None, status: int = 200):
    context = {
        **_common_context(packet),
        **_coverage_context(packet),
        "groups": selectors.packet_builder(packet=packet),
        "errors": errors or [],
        "submit_gaps": gaps or [],
        "PICK": PICK,
        "NOTE": NOTE,
        "NARRATIVE": NARRATIVE,
        "SHARE": SHARE,
        "narrative_max_length": MARKDOWN_MAX_LENGTH,
        "narrative_limit": f"{MARKDOWN_MAX_LENGTH:,}",
    }
    context["changes_request"] = _changes_requested(context["events"])
    # the builder is the owner's page: a draft may move (TRANSITIONS "move-to-latest")
    context["can_move"] = packet.state in TRANSITIONS["move-to-latest"].sources
    return render(request, "packets/packet_builder.html", context, status=status)


@login_required
def packet_page(request, pk: int):
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    me = person_for_user(user=request.user)
    is_owner = me is not None and packet.person_id == me.pk
    if is_owner and packet.state in Packet.EDITABLE_STATES:
        return _render_builder(request, packet)
    data, sha, _label = exports.packet_export_data(packet, None, viewer=request.user)
    allowed = selectors.packet_actions_allowed(viewer=request.user, packet=packet, person=me)
    context = {
        **_common_context(packet),
        "data": data,
        "sha256": sha,
        "sections": _sections(data),
        "chart": exports.coverage_svg(data["coverage"]),
        "is_owner": is_owner,
        "can_withdraw": "withdraw" in allowed,
        "can_review": "endorse" in allowed,
        "can_decide": "decide" in allowed,
    }
    return render(request, "packets/packet_detail.html", context)


def _save(request, packet: Packet) -> list[str]:
    """Apply the builder form to the draft; the errors to show (none when saved). Someone
    who may not edit it gets the service's ForbiddenError: a 403."""
    payload = builder_input(request.POST)
    if payload.errors:
        return payload.errors
    try:
        services.packet_update(
            packet=packet,
            actor=request.user,
            narratives=payload.narratives,
            items=payload.items,
        )
    except (InvalidError, ConflictError) as exc:
        return error_lines(exc)
    return []


@login_required
@require_POST
def packet_save_view(request, pk: int):
    """Save as you go: htmx posts the whole builder form on each change and gets the
    coverage panel back; without JavaScript the Save button lands back on the builder."""
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    services.packet_require_role(packet=packet, actor=request.user, action="edit")  # 403 page
    errors = _save(request, packet)
    if request.htmx:
        packet.refresh_from_db()
        context = {"packet": packet, "errors": errors, "saved": not errors}
        context.update(_coverage_context(packet))
        return render(
            request, "packets/_coverage_panel.html", context, status=422 if errors else 200
        )
    for error in errors:
        messages.error(request, error)
    if not errors:
        messages.success(request, "Draft saved.")
    return redirect("packets:detail", pk=packet.pk)


@login_required
@require_POST
def packet_submit_view(request, pk: int):
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    # Refused before anything of the builder (the owner's evidence) is read or shown.
    services.packet_require_role(packet=packet, actor=request.user, action="submit")
    if request.POST.get("builder"):  # the builder's Submit saves what is on screen first
        errors = _save(request, packet)
        if errors:
            return _render_builder(request, packet, errors=errors, status=400)
    try:
        services.packet_submit(
            packet_id=packet.pk, actor=request.user, comment=request.POST.get("comment", "")
        )
    except InvalidError as exc:
        packet.refresh_from_db()
        return _render_builder(
            request,
            packet,
            errors=error_lines(exc),
            gaps=exc.detail.get("gaps", []),
            status=400,
        )
    except ConflictError as exc:
        message_error(request, exc)
        return redirect("packets:detail", pk=packet.pk)
    messages.success(request, "Submitted for review. Your manager has been told.")
    return redirect("packets:detail", pk=packet.pk)


@login_required
@require_POST
def packet_move_view(request, pk: int):
    """Move a draft to the latest ladder version; the builder then shows what was carried,
    what was dropped and the gaps."""
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    try:
        moved = services.packet_move_to_latest(packet_id=packet.pk, actor=request.user)
    except (InvalidError, ConflictError) as exc:
        message_error(request, exc)
        return redirect("packets:detail", pk=packet.pk)
    if moved.from_version == moved.to_version:
        messages.info(request, f"The packet is on the latest version (v{moved.to_version}).")
        return redirect("packets:detail", pk=packet.pk)
    text = f"Moved to ladder v{moved.to_version}: {len(moved.carried)} items carried by code"
    if moved.dropped:
        text += "; dropped (no longer in the ladder): " + ", ".join(
            sorted({d["expectation"] for d in moved.dropped})
        )
    if moved.reworded:
        text += "; reworded, check they still fit: " + ", ".join(moved.reworded)
    if moved.gaps:
        text += "; gaps now: " + ", ".join(moved.gaps)
    messages.success(request, text + ".")
    return redirect("packets:detail", pk=packet.pk)


@login_required
def ladder_changes_page(request):
    """What newer ladder versions changed for the signed-in engineer (their next and
    current level) and which of their evidence and packets each change touches."""
    me = _me(request)
    changes = selectors.ladder_changes_for_person(person=me)
    return render(request, "packets/ladder_changes.html", {"me": me, "changes": changes})


@login_required
@require_POST
def packet_withdraw_view(request, pk: int):
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    try:
        services.packet_withdraw(
            packet_id=packet.pk, actor=request.user, comment=request.POST.get("comment", "")
        )
    except (InvalidError, ConflictError) as exc:
        message_error(request, exc)
    else:
        messages.success(request, "Packet withdrawn.")
    return redirect("packets:detail", pk=packet.pk)


@login_required
def packet_export_view(request, pk: int):
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    fmt = request.GET.get("format", "pdf")
    if fmt not in exports.EXPORT_FORMATS:
        return HttpResponseBadRequest("format is pdf, md or json")
    number = request.GET.get("snapshot")
    if number is not None and _int(number) is None:
        return HttpResponseBadRequest("snapshot is a snapshot number")
    data, sha, label = exports.packet_export_data(packet, _int(number), viewer=request.user)
    return exports.export_response(data, sha, label, fmt)


@login_required
@require_POST
def packet_verify_view(request, pk: int):
    """Verify the packet's imported items against ServiceNow (whoever may see the packet):
    htmx gets the ServiceNow panel back (422 with the reason when it cannot be done);
    without JavaScript, a message on the packet page."""
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    error, verified = "", None
    try:
        verified = services.packet_verify(packet=packet, actor=request.user)
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        data, _sha, _label = exports.packet_export_data(packet, None, viewer=request.user)
        if verified:
            titles = {
                item["evidence"]: item["title"]
                for exp in data["expectations"]
                for item in exp["items"]
            }
            for answer in verified["items"]:
                answer["title"] = titles.get(answer["evidence"], "")
        context = {"packet": packet, "data": data, "verified": verified, "verify_error": error}
        return render(request, "packets/_verify_packet.html", context, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        n = verified["summary"]
        messages.success(
            request,
            f"Verified against ServiceNow: {n['match']} match, {n['changed']} changed, "
            f"{n['deleted']} deleted.",
        )
    return redirect("packets:detail", pk=packet.pk)


@login_required
def packet_diff_page(request, pk: int):
    packet = selectors.packet_get(viewer=request.user, pk=pk)
    snapshots = selectors.packet_snapshot_list(packet=packet)
    numbers = [s.number for s in snapshots]
    from_n, to_n = _int(request.GET.get("from")), _int(request.GET.get("to"))
    if from_n is None and to_n is None and len(numbers) >= 2:
        from_n, to_n = numbers[-2], numbers[-1]
    context = {"packet": packet, "snapshots": snapshots, "from_n": from_n, "to_n": to_n}
    context.update(diff=None, error=None)
    if from_n in numbers and to_n in numbers:
        before = get_object_or_404(packet.snapshots, number=from_n)
        after = get_object_or_404(packet.snapshots, number=to_n)
        before, after = (
            selectors.packet_data_for_reader(viewer=request.user, packet=packet, data=snap.data)
            for snap in (before, after)
        )
        context["diff"] = selectors.snapshot_diff(before=before, after=after)
    elif request.GET or len(numbers) >= 2:
        context["error"] = "Pick two snapshots that exist."
    status = 400 if context["error"] else 200
    return render(request, "packets/packet_diff.html", context, status=status)


# --- managers ----------------------------------------------------------------------------


@login_required
def review_queue_page(request):
    me = _me(request)
    if not person_has_reports(person=me):
        raise Http404("You have no reports.")
    waiting = list(selectors.packet_review_queue(viewer=request.user).order_by("submitted_at"))
    others = list(selectors.packet_reports_other(viewer=request.user, person=me))
    return render(request, "packets/review_queue.html", {"waiting": waiting, "others": others})


def _review_rows(data: dict, values: dict, saved: dict, missing: set[str]) -> list[dict]:
    sections = _sections(data)
    for section in sections:
        rows = []
        for exp in section["expectations"]:
            code = exp["code"]
            if code in values:
                rating, comment = values[code]["rating"], values[code]["comment"]
            elif code in saved:
                rating, comment = saved[code].rating, saved[code].comment
            else:
                rating, comment = "", ""
            rows.append(
                {"exp": exp, "rating": rating, "comment": comment, "missing": code in missing}
            )
        section["rows"] = rows
    return sections


@login_required
def packet_review_page(request, pk: int):
    packet = selectors.packet_review_get(viewer=request.user, pk=pk)
    me = _me(request)
    # the latest frozen, else live; private items withheld
    data, sha, _label = exports.packet_export_data(packet, None, viewer=request.user)
    codes = [exp["code"] for exp in data["expectations"]]
    values: dict = {}
    errors: list[str] = []
    missing: set[str] = set()
    comment = ""
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        comment = request.POST.get("comment", "").strip()
        parsed = assessment_input(request.POST, codes)
        values, errors = parsed.values, parsed.errors
        if action not in REVIEW_ACTIONS:
            errors.append("Pick an action.")
        if not errors:
            try:
                done = _review_act(request, packet, action, parsed.specs, comment)
            except ApplicationError as exc:
                errors = error_lines(exc)
                missing = set(exc.detail.get("missing", []))
                status = 409 if isinstance(exc, ConflictError) else 400
            else:
                messages.success(request, done)
                if action == "assess":
                    return redirect("packets:review", pk=packet.pk)
                return redirect("packets:reviews")
        else:
            status = 400
    saved = selectors.packet_assessment_map(packet=packet, reviewer=me)
    context = {
        "packet": packet,
        "data": data,
        "sha256": sha,
        "sections": _review_rows(data, values, saved, missing),
        "chart": exports.coverage_svg(data["coverage"]),
        "ratings": RATING_CHOICES,
        "errors": errors,
        "comment": comment,
        "assessed": sum(1 for c in codes if (values.get(c) or {}).get("rating") or c in saved),
        "total": len(codes),
        # packet_review_get let only a reviewer this far: the table's states decide the rest
        "reviewable": packet.state in TRANSITIONS["assess"].sources,
        "events": selectors.packet_event_list(packet=packet),
        "moved_on": selectors.packet_ladder_moved_on(packet=packet),
    }
    return render(request, "packets/packet_review.html", context, status=status)


def _review_act(request, packet: Packet, action: str, specs, comment: str) -> str:
    """Run one review action; returns what to tell the reviewer."""
    kwargs = {"packet_id": packet.pk, "actor": request.user}
    if action == "assess":
        services.packet_assess(**kwargs, assessments=specs)
        return f"Saved {len(specs)} assessment{'s' if len(specs) != 1 else ''}."
    if action == "request_changes":
        with transaction.atomic():  # the ratings typed so far are kept, or nothing changes
            if specs:
                services.packet_assess(**kwargs, assessments=specs)
            services.packet_request_changes(**kwargs, comment=comment)
        return f"Asked {packet.person.name} for changes."
    if action == "endorse":
        services.packet_endorse(**kwargs, comment=comment, assessments=specs)
        return f"Endorsed {packet.person.name}'s packet; it goes to the committee."
    services.packet_decline(**kwargs, comment=comment, assessments=specs)
    return f"Declined {packet.person.name}'s packet."


# --- the committee -----------------------------------------------------------------------


def _committee_member(request) -> Person:
    me = _me(request)
    if not me.is_committee:
        raise Http404("Not a committee member.")
    return me


@login_required
def committee_page(request):
    _committee_member(request)
    cycles = list(selectors.cycle_list())
    cycle = None
    wanted = _int(request.GET.get("cycle"))
    if wanted is not None:
        cycle = next((c for c in cycles if c.pk == wanted), None)
        if cycle is None:
            raise Http404("No such cycle.")
    elif cycles:
        cycle = next((c for c in cycles if c.endorsed), cycles[0])
    rows, decided, competencies = [], [], []
    if cycle is not None:
        endorsed = list(
            selectors.packet_committee_queue(viewer=request.user, cycle_id=cycle.pk).order_by(
                "person__name"
            )
        )
        rows = selectors.packet_committee_rows(viewer=request.user, packets=endorsed)
        decided = list(
            selectors.packet_committee_decided(viewer=request.user, cycle_id=cycle.pk).order_by(
                "person__name"
            )
        )
        for row in rows:
            for name in row.by_competency:
                if name not in competencies:
                    competencies.append(name)
        for row in rows:
            row.competency_percents = [
                (n, round(row.by_competency[n] * 100) if n in row.by_competency else None)
                for n in competencies
            ]
    context = {
        "cycles": cycles,
        "cycle": cycle,
        "rows": rows,
        "decided": decided,
        "competencies": competencies,
    }
    return render(request, "packets/committee.html", context)


@login_required
def packet_decide_page(request, pk: int):
    packet = selectors.packet_decide_get(viewer=request.user, pk=pk)
    me = _committee_member(request)
    own_report = selectors.packet_is_reviewer(person=me, packet=packet)
    form = DecideForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.packet_decide(
                    packet_id=packet.pk,
                    actor=request.user,
                    outcome=form.cleaned_data["outcome"],
                    rationale=form.cleaned_data["rationale"],
                )
            except InvalidError as exc:
                for line in error_lines(exc):
                    form.add_error(None, line)
                status = 400
            except (ForbiddenError, ConflictError) as exc:
                message_error(request, exc)
                return redirect("packets:decide", pk=packet.pk)
            else:
                outcome = (
                    "promoted" if form.cleaned_data["outcome"] == "promoted" else "not promoted"
                )
                messages.success(request, f"Decided: {packet.person.name}, {outcome}.")
                return redirect(f"{reverse('packets:committee')}?cycle={packet.cycle_id}")
        else:
            status = 400
    data, sha, _label = exports.packet_export_data(packet, None, viewer=request.user)
    assessments: dict[str, list] = {}
    for a in selectors.packet_assessment_list(packet=packet):
        assessments.setdefault(a.expectation.code, []).append(a)
    sections = _sections(data)
    for section in sections:
        for exp in section["expectations"]:
            exp["assessments"] = assessments.get(exp["code"], [])
    context = {
        "packet": packet,
        "data": data,
        "sha256": sha,
        "sections": sections,
        "chart": exports.coverage_svg(data["coverage"]),
        "form": form,
        "own_report": own_report,
        "decidable": "decide"
        in selectors.packet_actions_allowed(viewer=request.user, packet=packet, person=me),
        "events": selectors.packet_event_list(packet=packet),
        "moved_on": selectors.packet_ladder_moved_on(packet=packet),
    }
    return render(request, "packets/packet_decide.html", context, status=status)


# --- cycles ------------------------------------------------------------------------------


@admin_only
def cycle_list_page(request):
    return render(request, "packets/cycle_list.html", {"cycles": selectors.cycle_list()})


@admin_only
def cycle_edit_page(request, pk: int | None = None):
    cycle = get_object_or_404(PromotionCycle, pk=pk) if pk is not None else None
    form = CycleForm(request.POST or None, instance=cycle)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.cycle_save(cycle=form.instance, actor=request.user)
        except ValidationError as exc:
            form_error(form, exc)
        else:
            messages.success(request, f"Saved {saved.name}.")
            return redirect("packets:cycles")
    status = 400 if form.errors else 200
    return render(request, "packets/cycle_form.html", {"form": form, "cycle": cycle}, status=status)


@login_required
def cycle_report_page(request, pk: int):
    if not selectors.cycle_report_allowed(viewer=request.user):
        raise Http404("Cycle reports are for admins and the committee.")
    cycle = get_object_or_404(PromotionCycle, pk=pk)
    rows = selectors.cycle_report_rows(cycle=cycle)
    if request.GET.get("format") == "csv":
        return exports.cycle_report_csv_response(cycle, rows)
    levels = sorted({r["target_level"] for r in rows})
    states = [s for s in STATE_ORDER if any(r["state"] == s for r in rows)]
    counts = {(r["target_level"], r["state"]): r["count"] for r in rows}
    table = [
        {
            "level": level,
            "counts": [counts.get((level, s), 0) for s in states],
            "total": sum(counts.get((level, s), 0) for s in states),
        }
        for level in levels
    ]
    totals = [sum(counts.get((lv, s), 0) for lv in levels) for s in states]
    context = {
        "cycle": cycle,
        "states": [(s, Packet.State(s).label) for s in states],
        "table": table,
        "totals": totals,
        "grand_total": sum(totals),
    }
    return render(request, "packets/cycle_report.html", context)


@login_required
def cycle_analytics_page(request, pk: int):
    """Charts of the cycle (analytics.cycle_analytics): the same readers as the report."""
    if not selectors.cycle_report_allowed(viewer=request.user):
        raise Http404("Cycle reports are for admins and the committee.")
    cycle = get_object_or_404(PromotionCycle, pk=pk)
    data = analytics.cycle_analytics(cycle=cycle)
    cycle_mean = data.ratings_cycle.mean

    def outcome_rows(rows):
        return [
            {
                "label": r.label,
                "counts": [r.counts[k] for k, _ in analytics.OUTCOMES],
                "total": r.total,
            }
            for r in rows
        ]

    context = {
        "cycle": cycle,
        "data": data,
        "charts": charts.cycle_charts(data),
        "outcomes": analytics.OUTCOMES,
        "ratings": analytics.RATINGS,
        "level_rows": outcome_rows(data.by_level),
        "manager_rows": outcome_rows(data.by_manager),
        "rating_rows": [
            {
                "label": r.label,
                "counts": [r.counts[k] for k, _ in analytics.RATINGS],
                "total": r.total,
                "mean": r.mean,
                "difference": None
                if r.key is None or r.mean is None or cycle_mean is None
                else r.mean - cycle_mean,
            }
            for r in [data.ratings_cycle, *data.ratings_by_manager]
        ],
        "states": [
            {
                "label": t.label,
                "count": t.count,
                "current": t.current,
                **{
                    name: charts.duration_text(t.percentile(q))
                    for name, q in (("p25", 0.25), ("median", 0.5), ("p75", 0.75), ("p90", 0.9))
                },
            }
            for t in data.time_in_state
        ],
    }
    return render(request, "packets/cycle_analytics.html", context)
