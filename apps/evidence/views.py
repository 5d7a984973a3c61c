"""Evidence pages: the engineer's list with the coverage of their next level, add and edit,
the detail with its history, the inbox of imported candidates, the trash, the brag
document, and a manager's team view of their reports' evidence. Views parse input, call
selectors and services, and render; who sees what is decided in selectors (a record
outside your scope is a 404), who may change it in services (EvidenceForbidden: a 403
page), and service errors land on the form or in messages (ladder_tracker.errors)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.html import escape, format_html
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from apps.evidence.api.views import attachment_response
from apps.ladders.selectors import ladder_version_published, ladder_version_tree
from apps.people.models import Person
from apps.people.selectors import person_for_user, person_list, person_report_ids
from ladder_tracker.errors import ApplicationError, form_error
from ladder_tracker.pages import pk_url

from . import selectors, services
from .corroboration import corroborations_for_evidence
from .exports import brag_document
from .forms import (
    AcceptForm,
    BulkTriageForm,
    EvidenceFilterForm,
    EvidenceForm,
    InboxFilterForm,
)
from .models import Evidence
from .uploads import UploadRejected
from .verification import evidence_last_verification, evidence_verify, verification_shown

PAGE_SIZE = 50
SNAPSHOT_FIELDS = [
    ("number", "Number"),
    ("short_description", "Short description"),
    ("state", "State"),
    ("priority", "Priority"),
    ("category", "Category"),
    ("opened_at", "Opened"),
    ("resolved_at", "Resolved"),
    ("closed_at", "Closed"),
    ("table", "Table"),
    ("sys_updated_on", "Updated in ServiceNow"),
    ("description", "Description"),
]


def _me(request) -> Person:
    """The signed-in person; someone without a profile has no evidence pages (404)."""
    person = person_for_user(user=request.user)
    if person is None:
        raise Http404("You have no person profile.")
    return person


# Where a service's error key has no field of its own on the evidence pages.
SERVICE_FIELD_MAP = {"links": "expectations", "action": None, "file": "files"}


def _next_url(request, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


def _partial(request) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def snapshot_rows(evidence: Evidence) -> list[tuple[str, str]]:
    snap = evidence.snapshot or {}
    return [(label, snap[key]) for key, label in SNAPSHOT_FIELDS if snap.get(key)]


def evidence_list_context(request, *, filters_form: EvidenceFilterForm, qs) -> dict:
    """What the list fragment (evidence/_list.html) needs: one page of rows."""
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return {"form": filters_form, "page": page, "rows": list(page.object_list)}


def render_list(request, template: str, context: dict) -> HttpResponse:
    """The full page, or only the list for htmx filter requests (same URL, so both cached
    answers must be told apart: Vary on HX-Request)."""
    if _partial(request):
        response = render(request, "evidence/_list.html", context)
    else:
        response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _coverage_groups(coverage: selectors.LevelCoverage) -> list[dict]:
    groups: dict = {}
    for item in coverage.items:
        groups.setdefault(item.expectation.competency, []).append(item)
    return [{"competency": comp, "items": items} for comp, items in groups.items()]


@login_required
def evidence_list_page(request):
    me = _me(request)
    version = ladder_version_published(ladder_id=me.ladder_id)
    form = EvidenceFilterForm(request.GET, version=version)
    filters = form.filters()
    filters.person = me.pk  # this page is your own evidence; managers use /team/
    qs = selectors.evidence_list(viewer=request.user, filters=filters)
    context = evidence_list_context(request, filters_form=form, qs=qs)
    context["list_url"] = reverse("evidence:list")
    if not _partial(request):
        coverage = selectors.evidence_coverage(person=me, version=version)
        context.update(
            me=me,
            coverage=coverage,
            coverage_groups=_coverage_groups(coverage),
            coverage_percent=round(coverage.fraction * 100),
            ladder_behind=selectors.evidence_ladder_behind(person=me, version=version),
        )
    return render_list(request, "evidence/evidence_list.html", context)


@login_required
def team_page(request):
    me = person_for_user(user=request.user)
    report_ids = person_report_ids(person=me) if me else set()
    if not report_ids:
        raise Http404("You have no reports.")
    reports = list(person_list(viewer=request.user).filter(pk__in=report_ids).order_by("name"))
    form = EvidenceFilterForm(
        request.GET, version=ladder_version_published(ladder_id=me.ladder_id), people=reports
    )
    filters = form.filters()
    # Reports only (not your own evidence); what of theirs you may read is the selector's call.
    qs = selectors.evidence_list(viewer=request.user, filters=filters).filter(
        person_id__in=report_ids
    )
    context = evidence_list_context(request, filters_form=form, qs=qs)
    context.update(reports=reports, show_person=True, list_url=request.path)
    return render_list(request, "evidence/team.html", context)


def _form_context(me: Person) -> dict:
    version = ladder_version_published(ladder_id=me.ladder_id)
    tree = ladder_version_tree(version=version) if version else None
    next_level = (me.level or 0) + 1 if tree else None
    if tree and not any(lt.level.number == next_level for lt in tree.levels):
        next_level = None
    return {"tree": tree, "next_level": next_level}


def _write(request, form, write) -> Evidence | None:
    """Run `write()` (which creates or updates the item) and store the form's files, in one
    transaction: the item and its files, or nothing. Service errors land on the form."""
    try:
        with transaction.atomic():
            evidence = write()
            for upload in form.cleaned_data["files"]:
                services.attachment_add(evidence=evidence, actor=request.user, upload=upload)
    # UploadRejected: the form ran the same check; this is the service's
    except (ValidationError, UploadRejected) as exc:
        form_error(form, exc, field_map=SERVICE_FIELD_MAP)
    else:
        return evidence
    return None


@login_required
def evidence_create_page(request):
    me = _me(request)
    ladder = _form_context(me)
    form = EvidenceForm(request.POST or None, request.FILES or None, **ladder)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        evidence = _write(
            request,
            form,
            lambda: services.evidence_create(
                person=me,
                actor=request.user,
                skills=data["skills"],
                links=form.link_specs(),
                **{name: data[name] for name in services.EDITABLE_FIELDS},
            ),
        )
        if evidence is not None:
            messages.success(request, f"Added “{evidence.title}”.")
            return redirect("evidence:detail", pk=evidence.pk)
    status = 400 if form.errors else 200
    context = {"form": form, "evidence": None, **ladder}
    return render(request, "evidence/evidence_form.html", context, status=status)


@login_required
def evidence_edit_page(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    services.evidence_require_owner(actor=request.user, evidence=evidence)  # else a 403
    me = evidence.person
    ladder = _form_context(me)
    removed = list(
        evidence.links.filter(ladder_change="removed").select_related(
            "expectation__version", "deliverable__version"
        )
    )
    if request.method == "POST":
        form = EvidenceForm(
            request.POST, request.FILES, editing=True, removed_links=removed, **ladder
        )
    else:
        form = EvidenceForm(
            initial=EvidenceForm.initial_for(evidence),
            editing=True,
            removed_links=removed,
            **ladder,
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = _write(
            request,
            form,
            lambda: services.evidence_update(
                evidence=evidence,
                actor=request.user,
                skills=data["skills"],
                links=form.link_specs(),
                **{name: data[name] for name in services.EDITABLE_FIELDS},
            ),
        )
        if saved is not None:
            messages.success(request, "Saved.")
            return redirect("evidence:detail", pk=evidence.pk)
    context = {
        "form": form,
        "evidence": evidence,
        "snapshot": snapshot_rows(evidence),
        **ladder,
    }
    return render(
        request, "evidence/evidence_form.html", context, status=400 if form.errors else 200
    )


def _history(evidence: Evidence) -> list[dict]:
    def show(value) -> str:
        if value is None or value == "" or value == []:
            return "—"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    events = evidence.events.select_related("actor__person").order_by("at", "id")
    out = []
    for event in events:
        who = event.actor
        name = (
            "ServiceNow sync"
            if who is None
            else (getattr(getattr(who, "person", None), "name", "") or who.get_username())
        )
        changes = [
            (field, show(pair[0]), show(pair[1]))
            for field, pair in (event.changes or {}).items()
            if isinstance(pair, (list, tuple)) and len(pair) == 2
        ]
        out.append({"event": event, "who": name, "changes": changes})
    return out


@login_required
def evidence_detail_page(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    # with the versions: a link a newer ladder version moved shows what it was made against
    links = list(
        evidence.links.select_related(
            "expectation__competency",
            "expectation__level",
            "expectation__version",
            "made_against__version",
            "deliverable__version",
        ).order_by("id")
    )
    context = {
        "evidence": evidence,
        "can_edit": selectors.evidence_can_edit(viewer=request.user, evidence=evidence),
        "expectation_links": [lk for lk in links if lk.expectation_id],
        "deliverable_links": [lk for lk in links if lk.deliverable_id],
        "snapshot": snapshot_rows(evidence),
        "history": _history(evidence),
        "verification": (
            evidence_last_verification(evidence=evidence)
            if evidence.source == Evidence.Source.SERVICENOW
            else None
        ),
        "corroborations": corroborations_for_evidence(evidence_ids=[evidence.pk]).get(
            evidence.pk, []
        ),
    }
    return render(request, "evidence/evidence_detail.html", context)


@login_required
@require_POST
def evidence_verify_view(request, pk: int):
    """Verify against ServiceNow (whoever may see the item): htmx gets the verification panel
    back (422 with the reason when it cannot be done); without JavaScript, a message."""
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    error, verification = "", None
    try:
        verification = verification_shown(evidence_verify(evidence=evidence, actor=request.user))
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        if error:
            verification = evidence_last_verification(evidence=evidence)
        context = {"ev": evidence, "verification": verification, "verify_error": error}
        return render(request, "evidence/_verify.html", context, status=422 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, VERIFY_MESSAGES[verification["result"]])
    return redirect("evidence:detail", pk=evidence.pk)


VERIFY_MESSAGES = {
    "match": "Verified: the ServiceNow record matches the snapshot.",
    "changed": "Verified: the ServiceNow record changed since the snapshot.",
    "deleted": "Verified: the record is no longer in ServiceNow.",
}


@login_required
def attachment_download(request, pk: int, attachment_id: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)  # 404 unless visible
    attachment = get_object_or_404(evidence.attachments.all(), pk=attachment_id)
    return attachment_response(attachment)


@login_required
@require_POST
def attachment_remove(request, pk: int, attachment_id: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    attachment = get_object_or_404(evidence.attachments.all(), pk=attachment_id)
    services.attachment_remove(attachment=attachment, actor=request.user)
    messages.success(request, f"Removed {attachment.name}.")
    return redirect("evidence:detail", pk=evidence.pk)


@login_required
@require_POST
def evidence_delete_view(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    services.evidence_delete(evidence=evidence, actor=request.user)
    # The message carries its own Undo form: the token is this session's, as on any page.
    messages.success(
        request,
        format_html(
            'Deleted “{}”. <form method="post" action="{}" class="undo">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
            '<button type="submit">Undo</button></form>',
            evidence.title,
            reverse("evidence:restore", args=[evidence.pk]),
            get_token(request),
        ),
    )
    return redirect("evidence:list")


@login_required
@require_POST
def evidence_restore_view(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk, trash=True)
    services.evidence_restore(evidence=evidence, actor=request.user)
    messages.success(request, f"Restored “{evidence.title}”.")
    return redirect(_next_url(request, reverse("evidence:detail", args=[evidence.pk])))


def _triage_done(request, evidence: Evidence, verb: str) -> HttpResponse:
    """htmx: the row goes away and the Inbox badge updates; otherwise back where we were."""
    if request.htmx:
        me = evidence.person
        return render(
            request,
            "evidence/_triaged.html",
            {
                "count": selectors.evidence_inbox_count(person=me),
                "evidence": evidence,
                "verb": verb,
            },
        )
    messages.success(request, f"{verb} “{evidence.title}”.")
    return redirect(_next_url(request, reverse("evidence:inbox")))


@login_required
@require_POST
def evidence_accept_view(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    form = AcceptForm(request.POST)
    form.is_valid()
    try:
        services.evidence_accept(
            evidence=evidence, actor=request.user, links=form.link_specs(evidence)
        )
    except ValidationError as exc:
        form_error(form, exc, field_map=SERVICE_FIELD_MAP)
        if request.htmx:
            chosen = {"links_chosen": True, "expectations": request.POST.getlist("expectations")}
            row = _inbox_rows(evidence.person, [evidence], chosen=chosen)[0]
            context = {
                "row": row,
                "errors": form.errors,
                "next_url": _next_url(request, reverse("evidence:inbox")),
            }
            return render(request, "evidence/_inbox_item.html", context, status=422)
        for error in form.non_field_errors() + form.errors.get("expectations", []):
            messages.error(request, error)
        return redirect(_next_url(request, reverse("evidence:inbox")))
    return _triage_done(request, evidence, "Accepted")


@login_required
@require_POST
def evidence_link_confirm_view(request, pk: int):
    """The owner keeps a link whose expectation a newer ladder version reworded."""
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    code = request.POST.get("code", "")
    try:
        services.evidence_link_confirm(evidence=evidence, actor=request.user, code=code)
    except ValidationError as exc:
        for problem in exc.messages:
            messages.error(request, problem)
    else:
        messages.success(request, f"Kept the link to {code} as it reads now.")
    return redirect("evidence:detail", pk=evidence.pk)


@login_required
@require_POST
def evidence_dismiss_view(request, pk: int):
    evidence = selectors.evidence_get(viewer=request.user, pk=pk)
    services.evidence_dismiss(evidence=evidence, actor=request.user)
    return _triage_done(request, evidence, "Dismissed")


def _inbox_groups(version, own: int) -> list[dict]:
    """Expectations to link from an inbox row, as groups of level × competency: the next
    level first, then the levels above it, then the person's own and those below (folded
    away in the picker: work at your own level rarely shows growth)."""
    tree = ladder_version_tree(version=version)
    next_level = own + 1
    ordered = sorted(
        tree.levels,
        key=lambda lt: (lt.level.number <= own, lt.level.number != next_level, lt.level.number),
    )
    groups = []
    for lt in ordered:
        for comp in tree.competencies:
            expectations = lt.expectations_by_competency.get(comp.code, [])
            if expectations:
                label = f"Level {lt.level.number}"
                if lt.level.number == next_level:
                    label += " (your next level)"
                groups.append(
                    {
                        "label": f"{label} · {comp.name}",
                        "below": lt.level.number <= own,
                        "expectations": [(e.code, e.text) for e in expectations],
                    }
                )
    return groups


class ExpectationPicker:
    """The expectation checkboxes of the inbox, as HTML built once and reused by every row
    (only the ids and ticks differ). Works as plain checkboxes; static/js/inbox.js adds the
    type-ahead filter.

    A page renders the whole picker once, in a <template>; each row carries only the
    expectations it has ticked (`render_chosen`) and static/js/inbox.js fills in the whole
    picker from the template when the row's picker opens. Without JavaScript a row's
    "all expectations" link reloads the page with that one row's whole picker in place.
    25 rows × ~75 checkboxes were 250 KB and most of the page's time
    (benchmarks/evidence.py)."""

    def __init__(self, groups: list[dict]):
        self.codes = [code for g in groups for code, _ in g["expectations"]]
        self.groups = [
            {
                "label": escape(g["label"]),
                "below": g["below"],
                "items": [
                    (code, escape(code), escape(Truncator(text).chars(90)))
                    for code, text in g["expectations"]
                ],
            }
            for g in groups
        ]

    @staticmethod
    def _pick(code_html: str, text_html: str, form_attr: str, checked: bool) -> str:
        return (
            f'<label class="pick"><input type="checkbox" name="expectations"'
            f' value="{code_html}"{form_attr}{" checked" if checked else ""}>'
            f" <code>{code_html}</code> {text_html}</label>"
        )

    def render(self, *, selected: set[str], form: str = "") -> str:
        form_attr = f' form="{escape(form)}"' if form else ""
        out: list[str] = []
        folded = False
        for g in self.groups:
            if g["below"] and not folded:
                folded = True
                out.append('<details class="picker-more"><summary>Your level and below</summary>')
            out.append(f'<div class="picker-group" role="group" aria-label="{g["label"]}">')
            out.append(f'<p class="picker-label">{g["label"]}</p>')
            for code, code_html, text_html in g["items"]:
                out.append(self._pick(code_html, text_html, form_attr, code in selected))
            out.append("</div>")
        if folded:
            out.append("</details>")
        return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)

    def render_chosen(self, *, selected: set[str], offered: set[str] = frozenset()) -> str:
        """Only the ticked expectations, in the picker's order: what a row submits as it
        is (its suggestions) until the whole picker is filled in; `offered` codes (learned
        suggestions below the pre-select score) are shown too, unticked."""
        out = [
            self._pick(code_html, text_html, "", code in selected)
            for g in self.groups
            for code, code_html, text_html in g["items"]
            if code in selected or code in offered
        ]
        return mark_safe("".join(out))  # noqa: S308 (every value above is escaped)


# {(version pk, content hash, published at, own level): ExpectationPicker}. A published
# version never changes (apps/ladders/services.ladder_version_assert_editable), so its
# picker is built once per process instead of reading the whole tree (6 queries) and
# escaping ~75 expectations on every inbox page. Bounded: a few ladders × five levels.
_PICKERS: dict[tuple, ExpectationPicker] = {}
_PICKERS_MAX = 64


def inbox_picker(me: Person) -> ExpectationPicker:
    version = ladder_version_published(ladder_id=me.ladder_id)
    if version is None:
        return ExpectationPicker([])
    own = me.level or 0
    key = (version.pk, version.content_sha256, version.published_at, own)
    picker = _PICKERS.get(key)
    if picker is None:
        if len(_PICKERS) >= _PICKERS_MAX:
            _PICKERS.clear()
        picker = _PICKERS[key] = ExpectationPicker(_inbox_groups(version, own))
    return picker


def _inbox_rows(
    me: Person,
    items,
    chosen: dict | None = None,
    picker=None,
    whole: int | None = None,
    query: str = "",
) -> list[dict]:
    """The rows of the inbox. Each carries only its ticked expectations, but the row
    whose id is `whole` (and a row sent back with its errors: `chosen`) the whole picker;
    `query` is the page's query string (without `pick`) for the link that asks for it."""
    pick = f"?{query}&pick=" if query else "?pick="
    picker = picker or inbox_picker(me)
    urls = {name: pk_url(f"evidence:{name}") for name in ("detail", "accept", "dismiss")}
    rows = []
    for evidence in items:
        suggested = [lk for lk in evidence.links.all() if lk.expectation_id]
        advice = [s for s in evidence.suggestions or [] if s.get("origin") != "rule"]
        if chosen and chosen.get("links_chosen"):
            selected = set(chosen.get("expectations", []))
        else:
            selected = {lk.expectation.code for lk in suggested} | preselected(advice)
        snapshot = evidence.snapshot or {}
        full = bool(chosen) or evidence.pk == whole
        pk = str(evidence.pk)
        rows.append(
            {
                "evidence": evidence,
                # what the row shows many times, as strings: a {% url %} (a reverse) and a
                # localized number per use were a fifth of the rows' rendering
                "id": pk,
                **{f"{name}_url": pk.join(parts) for name, parts in urls.items()},
                "date": evidence.occurred_on.isoformat() if evidence.occurred_on else "undated",
                "pick_href": pick + pk,
                "selected": selected,
                "snapshot": snapshot,
                "display": snapshot_labels(snapshot),
                "suggested": suggested,
                "advice": advice,
                "whole": full,
                "picker": (
                    picker.render(selected=selected)
                    if full
                    else picker.render_chosen(
                        selected=selected, offered={a["code"] for a in advice}
                    )
                ),
            }
        )
    return rows


def preselected(advice: list[dict]) -> set[str]:
    """The learned or similar suggestions the inbox ticks: those scoring at least
    SUGGESTIONS_PRESELECT_SCORE. Ticked, not accepted: the engineer still presses Accept."""
    floor = settings.SUGGESTIONS_PRESELECT_SCORE
    return {s["code"] for s in advice if s.get("score", 0) >= floor}


def snapshot_labels(snapshot: dict) -> dict[str, str]:
    """State and priority as ServiceNow shows them: the display values the sync kept
    (`snapshot["display"]`), else the stored values."""
    display = snapshot.get("display") or {}
    return {
        f: str(display.get(f) or snapshot.get(f) or "") for f in ("state", "priority", "category")
    }


INBOX_PAGE_SIZE = 25


@login_required
def inbox_page(request):
    me = _me(request)
    picker = inbox_picker(me)
    form = InboxFilterForm(
        request.GET, facets=selectors.inbox_facets(person=me), codes=picker.codes
    )
    filters = selectors.EvidenceFilters(
        person=me.pk, status=Evidence.Status.CANDIDATE, **form.filters()
    )
    items = selectors.evidence_inbox_prefetched(
        selectors.evidence_list(viewer=request.user, filters=filters)
    )
    page = Paginator(items, INBOX_PAGE_SIZE).get_page(request.GET.get("page"))
    try:
        whole = int(request.GET.get("pick", ""))
    except ValueError:
        whole = None
    query = request.GET.copy()
    query.pop("pick", None)
    context = {
        "page": page,
        "form": form,
        "filtered": bool(form.filters().keys() - {"sort"}),
        "rows": _inbox_rows(
            me, page.object_list, picker=picker, whole=whole, query=query.urlencode()
        ),
        "next_url": request.get_full_path(),
        "bulk_picker": picker.render(selected=set(), form="bulk"),
        "picker_template": picker.render(selected=set()),
    }
    return render(request, "evidence/inbox.html", context)


@login_required
@require_POST
def inbox_bulk(request):
    _me(request)
    form = BulkTriageForm(request.POST)
    back = _next_url(request, reverse("evidence:inbox"))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    action = form.cleaned_data["action"]
    expectations = form.cleaned_data["expectations"] if action == "accept" else []
    try:
        done = services.evidence_bulk_triage(
            actor=request.user,
            ids=form.cleaned_data["ids"],
            action=action,
            inbox=True,
            expectations=expectations,
        )
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    count = done.updated
    verb = "Accepted" if action == "accept" else "Dismissed"
    text = f"{verb} {count} item{'s' if count != 1 else ''}."
    if expectations and count:
        text += f" Linked to {', '.join(expectations)}."
    if done.skipped:
        text += f" {len(done.skipped)} were no longer in your inbox."
    messages.success(request, text)
    return redirect(back)


@login_required
def trash_page(request):
    _me(request)
    items = selectors.evidence_list(viewer=request.user, trash=True)
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "evidence/trash.html", {"page": page, "rows": list(page.object_list)})


@login_required
def brag_download(request):
    me = _me(request)
    response = HttpResponse(brag_document(person=me), content_type="text/markdown; charset=utf-8")
    username = request.user.get_username()
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=f"brag-{username}.md"
    )
    return response
