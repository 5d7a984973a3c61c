"""Forms of the packet pages: they parse what a person typed or ticked into the arguments
services take. The rules (coverage, deadlines, who may act, which codes exist) stay in
services.py; their errors come back onto these forms."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.http import QueryDict

from apps.ladders.models import LadderVersion
from apps.people.models import Person

from .models import Assessment, Decision, PromotionCycle
from .services import AssessmentSpec, ItemSpec

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

# Builder field names: one checkbox per (expectation, evidence) and its note, one textarea
# per competency. Keys carry the code / name themselves so a save needs no lookup.
PICK = "pick"
NOTE = "note:"
NARRATIVE = "narrative:"
SHARE = "share"  # evidence ids: private items the engineer agrees to share with reviewers


@dataclass
class BuilderInput:
    narratives: dict[str, str] | None
    items: list[ItemSpec] | None
    errors: list[str]


def builder_input(post: QueryDict) -> BuilderInput:
    """The builder form as packet_update's arguments (items replace, in page order)."""
    if not post.get("builder"):
        return BuilderInput(narratives=None, items=None, errors=[])
    narratives = {
        key[len(NARRATIVE) :]: post.get(key, "") for key in post if key.startswith(NARRATIVE)
    }
    sharing = set(post.getlist(SHARE))
    items, errors, seen = [], [], set()
    for raw in post.getlist(PICK):
        code, _, evidence = raw.rpartition("|")
        try:
            evidence_id = int(evidence)
        except ValueError:
            errors.append(f"Not an evidence choice: {raw!r}.")
            continue
        if not code or (code, evidence_id) in seen:
            continue
        seen.add((code, evidence_id))
        note = post.get(f"{NOTE}{raw}", "").strip()[:5000]
        items.append(
            ItemSpec(expectation=code, evidence=evidence_id, note=note, share=evidence in sharing)
        )
    return BuilderInput(narratives=narratives, items=items, errors=errors)


class PacketStartForm(forms.Form):
    cycle = forms.ModelChoiceField(
        queryset=PromotionCycle.objects.none(), empty_label=None, label="Cycle"
    )
    target_level = forms.TypedChoiceField(coerce=int, label="Target level")

    def __init__(self, *args, person: Person, version: LadderVersion | None, cycles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cycle"].queryset = cycles
        current = person.level or 0
        levels = list(version.levels.order_by("number")) if version else []
        self.fields["target_level"].choices = [
            (lv.number, f"Level {lv.number} · {lv.title}") for lv in levels if lv.number > current
        ]
        self.fields["target_level"].initial = current + 1

    @property
    def can_start(self) -> bool:
        return bool(self.fields["target_level"].choices) and self.fields["cycle"].queryset.exists()


class CycleForm(forms.ModelForm):
    class Meta:
        model = PromotionCycle
        fields = ["name", "opens_on", "submission_deadline", "decision_on", "min_coverage"]
        widgets = {
            "opens_on": DATE_INPUT,
            "submission_deadline": DATETIME_INPUT,
            "decision_on": DATE_INPUT,
            "min_coverage": forms.NumberInput(attrs={"step": "0.05", "min": "0", "max": "1"}),
        }
        labels = {
            "opens_on": "Opens on",
            "submission_deadline": "Submission deadline (UTC)",
            "decision_on": "Decisions on",
            "min_coverage": "Minimum coverage (0–1)",
        }
        help_texts = {
            "submission_deadline": "Packets are accepted until this moment; move it to extend.",
            "min_coverage": "The share of the target level's expectations a packet must cover "
            "to be submitted, e.g. 0.8.",
        }


RATING_CHOICES = Assessment.Rating.choices
REVIEW_ACTIONS = ("assess", "request_changes", "endorse", "decline")


@dataclass
class AssessmentInput:
    specs: list[AssessmentSpec]
    values: dict[str, dict[str, str]]  # code → {"rating", "comment"}: to show again
    errors: list[str]


def assessment_input(post: QueryDict, codes: list[str]) -> AssessmentInput:
    """Ratings (`rating-<code>`) and comments (`comment-<code>`) of the review form; an
    expectation left unrated is not sent (saving part of a review is allowed)."""
    specs, values, errors = [], {}, []
    valid = {value for value, _ in RATING_CHOICES}
    for code in codes:
        rating = post.get(f"rating-{code}", "").strip()
        comment = post.get(f"comment-{code}", "").strip()[:5000]
        values[code] = {"rating": rating, "comment": comment}
        if not rating:
            continue
        if rating not in valid:
            errors.append(f"{code}: rating must be below, meets or exceeds.")
            continue
        specs.append(AssessmentSpec(expectation=code, rating=rating, comment=comment))
    return AssessmentInput(specs=specs, values=values, errors=errors)


class DecideForm(forms.Form):
    outcome = forms.ChoiceField(choices=Decision.Outcome.choices, widget=forms.RadioSelect)
    rationale = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        max_length=10000,
        help_text="Why: the committee's reasons, shown to the engineer.",
    )
