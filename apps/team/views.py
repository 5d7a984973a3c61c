"""Pages: the team overview (/team/) and one person of the team (/team/<id>/)."""

from django import forms
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from apps.packets.models import Packet
from ladder_tracker.errors import NotFoundError
from ladder_tracker.pages import pk_url

from .selectors import (
    SORTS,
    TeamFilters,
    team_groups,
    team_overview,
    team_person,
    team_rows_select,
)

SORT_LABELS = {
    "name": "Name",
    "manager": "Manager",
    "level": "Level",
    "coverage": "Coverage",
    "candidates_waiting": "Candidates waiting",
    "evidence_90d": "Evidence (90 days)",
    "last_activity": "Last activity",
    "packet_state": "Packet",
}


class TeamFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    manager = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    level = forms.IntegerField(required=False, min_value=1, max_value=99)
    packet_state = forms.ChoiceField(
        required=False,
        label="Packet",
        choices=[("", "Any"), ("none", "No packet"), *Packet.State.choices],
    )
    sort = forms.ChoiceField(
        required=False, choices=[(k, k) for k in (*SORTS, *(f"-{key}" for key in SORTS))]
    )

    def __init__(self, *args, managers=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["manager"].choices = [("", "Anyone")] + [(m.pk, m.name) for m in managers]

    def filters(self) -> TeamFilters:
        if not self.is_valid():
            return TeamFilters()
        data = {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}
        return TeamFilters(**data)


@login_required
def team_page(request):
    everyone = team_overview(viewer=request.user)
    if not everyone and not request.user.is_staff:
        raise Http404("You have no reports.")
    managers = sorted(
        {r.manager.pk: r.manager for r in everyone if r.manager}.values(), key=lambda m: m.name
    )
    form = TeamFilterForm(request.GET or None, managers=managers)
    filters = form.filters() if request.GET else TeamFilters()
    # one read of the team: the filter's rows come from the same rows the manager list did
    rows = team_rows_select(everyone, filters)
    query = request.GET.copy()
    query.pop("sort", None)
    columns = []
    for key, label in SORT_LABELS.items():
        direction = "-" if filters.sort == key else ""
        columns.append(
            {
                "key": key,
                "label": label,
                "href": f"?{query.urlencode()}&sort={direction}{key}".replace("?&", "?"),
                "current": filters.sort.lstrip("-") == key,
                "descending": filters.sort.startswith("-"),
            }
        )
    # What each of a few hundred rows shows as strings, built here: a {% url %} (a reverse)
    # and a localized number per use cost more than the rest of a row (benchmarks/evidence.py)
    person_url = pk_url("team-person")
    packet_url = pk_url("packets:detail")
    for r in rows:
        r.id = str(r.person.pk)
        r.href = r.id.join(person_url)
        r.packet_href = str(r.packet.pk).join(packet_url) if r.packet else ""
    context = {
        "form": form,
        "groups": team_groups(rows),
        "total": len(everyone),
        "shown": len(rows),
        "columns": columns,
    }
    return render(request, "team/overview.html", context)


@login_required
def team_person_page(request, person_id: int):
    try:
        overview = team_person(viewer=request.user, person_id=person_id)
    except NotFoundError as exc:
        raise Http404(str(exc)) from exc
    groups: dict[str, list] = {}
    for item in overview.expectations:
        groups.setdefault(item.competency, []).append(item)
    context = {"o": overview, "groups": groups}
    return render(request, "team/person.html", context)
