"""Forms of the evidence pages: they parse and check the input a person typed; services
decide everything else (which codes exist on the ladder, date ranges, who may do what)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django import forms
from django.core.exceptions import ValidationError

from apps.ladders.models import LadderVersion
from apps.ladders.selectors import VersionTree

from .markdown import MARKDOWN_MAX_LENGTH, MARKDOWN_TOO_LONG
from .models import Evidence
from .selectors import EvidenceFilters
from .services import LinkSpec
from .uploads import UploadRejected, upload_check, upload_limit_text

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class ValueListField(forms.Field):
    """A repeated form value (checkboxes, select multiple) as a list of strings, unchecked
    against choices: the services say whether a code belongs to the ladder."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[str]:
        if not value:
            return []
        if isinstance(value, str):
            value = [value]
        out: list[str] = []
        for item in value:
            item = str(item).strip()
            if item and item not in out:
                out.append(item)
        return out


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input; each goes through the attachment checks."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, (list, tuple)) else [data]
        files = [super(MultipleFileField, self).clean(item, initial) for item in items if item]
        problems = []
        for upload in files:
            try:
                upload_check(upload)
            except UploadRejected as exc:
                problems.append(str(exc))
        if problems:
            raise ValidationError(problems)
        return files


@dataclass
class LinkRow:
    """One checkbox row of the links table: the target, ticked or not, its rationale."""

    target: object  # Expectation or Deliverable
    checked: bool = False
    rationale: str = ""


@dataclass
class LinkGroup:
    level: object
    is_next: bool
    is_current: bool
    competencies: list[tuple[object, list[LinkRow]]] = field(default_factory=list)
    deliverables: list[LinkRow] = field(default_factory=list)

    @property
    def any_checked(self) -> bool:
        rows = [r for _comp, rows in self.competencies for r in rows] + self.deliverables
        return any(r.checked for r in rows)


def levels_next_first(tree: VersionTree, next_level: int | None) -> list:
    """The version's levels with the person's next level first, then the rest in order."""
    first = [lt for lt in tree.levels if lt.level.number == next_level]
    return first + [lt for lt in tree.levels if lt.level.number != next_level]


class EvidenceForm(forms.Form):
    title = forms.CharField(max_length=300, help_text="Up to 300 characters.")
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        max_length=MARKDOWN_MAX_LENGTH,
        error_messages={"max_length": MARKDOWN_TOO_LONG},
        help_text=f"Markdown: **bold**, lists, links, tables. At most {MARKDOWN_MAX_LENGTH:,} "
        "characters.",
    )
    occurred_on = forms.DateField(
        required=False, widget=DATE_INPUT, label="Occurred on", help_text="Empty means today."
    )
    occurred_until = forms.DateField(
        required=False, widget=DATE_INPUT, label="Until", help_text="Only for a range."
    )
    url = forms.URLField(required=False, max_length=1000, label="Link", assume_scheme="https")
    visibility = forms.ChoiceField(
        choices=Evidence.Visibility.choices,
        initial=Evidence.Visibility.MANAGER,
        widget=forms.RadioSelect,
        help_text="Private: only you. Manager: your managers (any level up) can read it.",
    )
    skills = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    expectations = ValueListField(required=False)
    deliverables = ValueListField(required=False)
    files = MultipleFileField(required=False, label="Attach files")

    def __init__(
        self,
        *args,
        tree: VersionTree | None = None,
        next_level: int | None = None,
        editing: bool = False,
        removed_links: list | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.tree = tree
        # links a newer ladder version removed (EvidenceLink.ladder_change): offered apart,
        # ticked, so that saving the item keeps them unless unticked
        self.removed_links = removed_links or []
        self.next_level = next_level
        self.fields["skills"].choices = skill_choices(tree)
        # No maxlength attribute: a browser cuts a pasted title silently; the server says
        # the limit instead ("at most 300 characters (it has 412)").
        self.fields["title"].widget.attrs.pop("maxlength", None)
        # Said before the upload, in the units people use (the setting may change per site)
        self.fields[
            "files"
        ].help_text = f"PDF, PNG, JPEG, GIF, WebP or text files, {upload_limit_text()}."
        if editing:  # "today" is only the default of a new item; an edit keeps a date
            self.fields["occurred_on"].required = True
            self.fields["occurred_on"].help_text = ""

    @classmethod
    def initial_for(cls, evidence: Evidence) -> dict:
        links = list(evidence.links.all())
        return {
            "title": evidence.title,
            "description": evidence.description,
            "occurred_on": evidence.occurred_on,
            "occurred_until": evidence.occurred_until,
            "url": evidence.url,
            "visibility": evidence.visibility,
            "skills": [s.name for s in evidence.skills.all()],
            "expectations": [lk.expectation.code for lk in links if lk.expectation_id],
            "deliverables": [str(lk.deliverable_id) for lk in links if lk.deliverable_id],
            "_rationales": {
                (
                    lk.expectation.code if lk.expectation_id else f"d{lk.deliverable_id}"
                ): lk.rationale
                for lk in links
            },
        }

    def clean_deliverables(self) -> list[int]:
        ids = []
        for raw in self.cleaned_data["deliverables"]:
            if not raw.isdigit():
                raise ValidationError(f"{raw!r} is not a deliverable.")
            ids.append(int(raw))
        return ids

    def _rationale(self, key: str) -> str:
        if self.is_bound:
            return (self.data.get(f"rationale-{key}") or "").strip()[:5000]
        return self.initial.get("_rationales", {}).get(key, "")

    def link_specs(self) -> list[LinkSpec]:
        specs = [
            LinkSpec(expectation=code, rationale=self._rationale(code))
            for code in self.cleaned_data.get("expectations", [])
        ]
        specs += [
            LinkSpec(deliverable=pk, rationale=self._rationale(f"d{pk}"))
            for pk in self.cleaned_data.get("deliverables", [])
        ]
        return specs

    def _chosen(self, name: str) -> list[str]:
        if self.is_bound:
            return [v.strip() for v in self.data.getlist(name)]
        return [str(v) for v in self.initial.get(name, [])]

    def link_groups(self) -> list[LinkGroup]:
        """The links table: every level of the ladder (next level first), its expectations
        by competency and its deliverables, with what is ticked and the rationales."""
        if self.tree is None:
            return []
        codes, deliverables = set(self._chosen("expectations")), set(self._chosen("deliverables"))
        current = self.next_level - 1 if self.next_level else None
        groups = []
        for lt in levels_next_first(self.tree, self.next_level):
            group = LinkGroup(
                level=lt.level,
                is_next=lt.level.number == self.next_level,
                is_current=lt.level.number == current,
            )
            for comp in self.tree.competencies:
                rows = [
                    LinkRow(e, e.code in codes, self._rationale(e.code))
                    for e in lt.expectations_by_competency.get(comp.code, [])
                ]
                if rows:
                    group.competencies.append((comp, rows))
            group.deliverables = [
                LinkRow(d, str(d.pk) in deliverables, self._rationale(f"d{d.pk}"))
                for d in lt.deliverables
            ]
            groups.append(group)
        return groups

    @property
    def removed_rows(self) -> list[LinkRow]:
        """The links a newer ladder version removed, ticked unless the post unticked them."""
        codes, deliverables = set(self._chosen("expectations")), set(self._chosen("deliverables"))
        rows = []
        for link in self.removed_links:
            if link.expectation_id:
                code = link.expectation.code
                rows.append(LinkRow(link.expectation, code in codes, self._rationale(code)))
            else:
                pk = link.deliverable_id
                rows.append(
                    LinkRow(link.deliverable, str(pk) in deliverables, self._rationale(f"d{pk}"))
                )
        return rows


def skill_choices(tree: VersionTree | None) -> list:
    """The ladder's Skill taxonomy as grouped choices (category → names), each name once."""
    if tree is None:
        return []
    groups: dict[str, list[tuple[str, str]]] = {}
    seen: set[str] = set()
    for skill in tree.skills:
        if skill.name.lower() in seen:
            continue
        seen.add(skill.name.lower())
        groups.setdefault(skill.category or "Other", []).append((skill.name, skill.name))
    return list(groups.items())


class AcceptForm(forms.Form):
    """Accepting a candidate from the inbox: the expectations chosen in its row.

    Without `links_chosen` (the detail page's Accept button) the suggested links stay as
    they are. A suggestion kept keeps its rationale."""

    expectations = ValueListField(required=False)
    links_chosen = forms.BooleanField(required=False)

    def link_specs(self, evidence: Evidence) -> list[LinkSpec] | None:
        if not self.cleaned_data.get("links_chosen"):
            return None
        existing = {
            lk.expectation.code: lk.rationale for lk in evidence.links.all() if lk.expectation_id
        }
        kept_deliverables = [
            LinkSpec(deliverable=lk.deliverable_id, rationale=lk.rationale)
            for lk in evidence.links.all()
            if lk.deliverable_id
        ]
        return [
            LinkSpec(expectation=code, rationale=existing.get(code, ""))
            for code in self.cleaned_data["expectations"]
        ] + kept_deliverables


class BulkTriageForm(forms.Form):
    ids = ValueListField(required=False)
    action = forms.ChoiceField(choices=[("accept", "Accept"), ("dismiss", "Dismiss")])
    # Links added to every accepted item (the bulk bar's picker); suggestions stay.
    expectations = ValueListField(required=False)

    def clean_ids(self) -> list[int]:
        ids = [int(v) for v in self.cleaned_data["ids"] if v.isdigit()]
        if not ids:
            raise ValidationError("Tick at least one item.")
        return ids[:500]


INBOX_SORTS = [
    ("newest", "Newest first"),
    ("oldest", "Oldest first"),
    ("priority", "Priority"),
    ("title", "Title"),
]


class InboxFilterForm(forms.Form):
    """The inbox's search, filters and sort, as a GET form. Invalid values are reported
    and ignored; the tables and states offered are those of the waiting candidates
    (selectors.inbox_facets)."""

    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Number or text"}),
    )
    table = forms.ChoiceField(required=False)
    state = forms.ChoiceField(required=False)
    suggested = forms.ChoiceField(required=False, label="Suggested")
    date_from = forms.DateField(required=False, widget=DATE_INPUT, label="From")
    date_to = forms.DateField(required=False, widget=DATE_INPUT, label="To")
    sort = forms.ChoiceField(required=False, choices=INBOX_SORTS)

    def __init__(self, data, *, facets: dict, codes: list[str]):
        super().__init__(data)
        self.fields["table"].choices = [("", "Any table"), *facets["tables"]]
        self.fields["state"].choices = [("", "Any state"), *facets["states"]]
        self.fields["suggested"].choices = [("", "Any suggestion"), *((c, c) for c in codes)]

    def filters(self) -> dict:
        """The valid filters, for selectors.EvidenceFilters."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        names = ("q", "table", "state", "suggested", "date_from", "date_to", "sort")
        return {n: data[n] for n in names if data.get(n) and n not in self.errors}


STATUS_ANY = "any"
STATUS_CHOICES = [
    (Evidence.Status.ACCEPTED, "Accepted"),
    (Evidence.Status.CANDIDATE, "Candidates"),
    (Evidence.Status.DISMISSED, "Dismissed"),
    (STATUS_ANY, "Any status"),
]


class EvidenceFilterForm(forms.Form):
    """The list filters, as a GET form. Invalid values are reported and ignored."""

    person = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Text",
        widget=forms.TextInput(attrs={"type": "search"}),
    )
    competency = forms.ChoiceField(required=False)
    level = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    skill = forms.ChoiceField(required=False)
    source = forms.ChoiceField(
        required=False, choices=[("", "Any source"), *Evidence.Source.choices]
    )
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    date_from = forms.DateField(required=False, widget=DATE_INPUT, label="From")
    date_to = forms.DateField(required=False, widget=DATE_INPUT, label="To")
    expectation = forms.CharField(required=False, max_length=32, widget=forms.HiddenInput)

    def __init__(self, data, *, version: LadderVersion | None, people=None):
        super().__init__(data)
        if people is None:
            del self.fields["person"]
        else:
            self.fields["person"].choices = [("", "Everyone")] + [(p.pk, p.name) for p in people]
        competencies, levels, skills = [], [], []
        if version is not None:
            competencies = [(c.code, c.name) for c in version.competencies.all()]
            levels = [(lv.number, f"Level {lv.number}") for lv in version.levels.all()]
            skills = sorted({s.name for s in version.skills.all()}, key=str.lower)
        self.fields["competency"].choices = [("", "Any competency"), *competencies]
        self.fields["level"].choices = [("", "Any level"), *levels]
        self.fields["skill"].choices = [("", "Any skill"), *((s, s) for s in skills)]

    def filters(self) -> EvidenceFilters:
        self.is_valid()  # the valid fields land in cleaned_data either way
        data = self.cleaned_data
        status = data.get("status") or Evidence.Status.ACCEPTED
        return EvidenceFilters(
            person=data.get("person"),
            status=None if status == STATUS_ANY else status,
            source=data.get("source") or None,
            competency=data.get("competency") or None,
            level=data.get("level"),
            skill=data.get("skill") or None,
            expectation=data.get("expectation") or None,
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            q=data.get("q") or None,
        )

    @property
    def is_filtered(self) -> bool:
        keys = set(self.fields) - {"status"}
        return any(self.data.get(k) for k in keys) or self.data.get("status") not in (
            None,
            "",
            Evidence.Status.ACCEPTED,
        )
