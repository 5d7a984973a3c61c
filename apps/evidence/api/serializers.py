"""Evidence API shapes.

Requests are read by EvidenceSerializer (input only). Every evidence body that goes out is
declared once, by EvidenceOutSerializer (the OpenAPI component "Evidence"), and built from
its declared fields, by name, by evidence_bodies: no per-row to_representation, because
lists render 50 rows per page and the fast path is measured (benchmarks/evidence.py).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from apps.evidence import selectors
from apps.evidence.markdown import MARKDOWN_MAX_LENGTH
from apps.evidence.models import (
    Attachment,
    Corroboration,
    Evidence,
    EvidenceEvent,
    EvidenceLink,
    EvidenceVerification,
)
from apps.evidence.selectors import EVIDENCE_SORTS


def attachment_url_builder() -> Callable[[int, int], str]:
    """(evidence id, attachment id) -> the attachment's download URL in the API: the one
    place it is built, from the route reversed once (a page of bodies builds many)."""
    url = reverse("evidence-attachment-detail", kwargs={"pk": 0, "attachment_id": 1})
    return url.replace("/0/", "/{0}/", 1).replace("/1/", "/{1}/", 1).format


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "content_type", "url", "created_at"]

    def get_url(self, attachment) -> str:
        return attachment_url_builder()(attachment.evidence_id, attachment.pk)


class LinkInSerializer(serializers.Serializer):
    expectation = serializers.CharField(required=False, allow_blank=False, max_length=32)
    deliverable = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    def validate(self, attrs):
        if bool(attrs.get("expectation")) == bool(attrs.get("deliverable")):
            raise serializers.ValidationError("Give either an expectation code or a deliverable.")
        return attrs


class EvidenceSerializer(serializers.ModelSerializer):
    """An evidence item as its owner writes it (create, update)."""

    # Input only: every response is an EvidenceOutSerializer body.

    expectations = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, write_only=True
    )
    links = LinkInSerializer(many=True, required=False, write_only=True)
    skills = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, write_only=True
    )

    class Meta:
        model = Evidence
        fields = [
            "title",
            "description",
            "occurred_on",
            "occurred_until",
            "url",
            "visibility",
            "expectations",
            "links",
            "skills",
        ]
        extra_kwargs = {
            "title": {"max_length": 300},
            "url": {"max_length": 1000},
            # the model's MaxLengthValidator gives the limit and its message
            "description": {"help_text": f"Markdown, at most {MARKDOWN_MAX_LENGTH:,} characters."},
        }

    def validate(self, attrs):
        if "expectations" in attrs and "links" in attrs:
            raise serializers.ValidationError("Send either expectations (codes) or links.")
        return attrs


# The expectation a link was made against, inline and nullable: OpenAPI 3.0 has no nullable
# reference (a $ref under allOf stays non-null), so the object is spelled out here.
MADE_AGAINST_SCHEMA = {
    "type": "object",
    "nullable": True,
    "readOnly": True,
    "description": "The expectation as it read when the link was made (published versions "
    "never change); null for a deliverable.",
    "properties": {
        "expectation": {"type": "integer", "description": "Expectation id."},
        "code": {"type": "string"},
        "version": {"type": "integer", "description": "Ladder version number."},
        "text": {"type": "string"},
    },
    "required": ["expectation", "code", "version", "text"],
}


@extend_schema_field(MADE_AGAINST_SCHEMA)
class MadeAgainstField(serializers.DictField):
    pass


class LinkOutSerializer(serializers.Serializer):
    """A link from an evidence item to an expectation or a deliverable."""

    expectation = serializers.CharField(
        read_only=True, allow_null=True, help_text="Expectation code, or null for a deliverable."
    )
    deliverable = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Deliverable id, or null for an expectation."
    )
    rationale = serializers.CharField(read_only=True)
    origin = serializers.ChoiceField(choices=EvidenceLink.Origin.choices, read_only=True)
    ladder_change = serializers.ChoiceField(
        choices=EvidenceLink.LadderChange.choices,
        read_only=True,
        help_text="What newer ladder versions did to the expectation since the link was "
        'made: "" (nothing), "reworded" (same code, other text: check it still fits) or '
        '"removed" (the code is gone; the link stays on the old version\'s expectation).',
    )
    made_against = MadeAgainstField(read_only=True, allow_null=True)


class SuggestionOutSerializer(serializers.Serializer):
    """An expectation this item may be evidence of (apps/evidence/suggestions.py)."""

    code = serializers.CharField(read_only=True, help_text="Expectation code, e.g. TE-3.3.")
    score = serializers.FloatField(
        read_only=True,
        help_text="1 for a rule; the learned model's probability; or the text similarity.",
    )
    origin = serializers.ChoiceField(
        choices=[("rule", "rule"), ("learned", "learned"), ("similar", "similar")],
        read_only=True,
    )
    reason = serializers.CharField(
        read_only=True,
        help_text='Why: the rule\'s rationale, "like INC0012 you linked to TE-3.3", or the '
        "words the item shares with the expectation.",
    )


class EvidenceCorroborationSerializer(serializers.Serializer):
    person = serializers.IntegerField(read_only=True, help_text="The corroborator's person id.")
    name = serializers.CharField(read_only=True)
    state = serializers.ChoiceField(choices=Corroboration.State.choices, read_only=True)
    comment = serializers.CharField(read_only=True)
    answered_at = serializers.DateTimeField(read_only=True, allow_null=True)


@extend_schema_serializer(component_name="Evidence")
class EvidenceOutSerializer(serializers.Serializer):
    """An evidence item, as every evidence endpoint returns it."""

    # The docstring above is the schema's description. Each field that is a column names it
    # as its `source`; evidence_bodies reads exactly those, by name, and fills the rest
    # (EVIDENCE_FILLED) from the item's links, skills, attachments and work item.

    id = serializers.IntegerField(read_only=True)
    person = serializers.IntegerField(source="person_id", read_only=True)
    person_name = serializers.CharField(source="person.name", read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    description_html = serializers.CharField(read_only=True)
    occurred_on = serializers.DateField(read_only=True, allow_null=True)
    occurred_until = serializers.DateField(read_only=True, allow_null=True)
    url = serializers.CharField(read_only=True, help_text="A link, or an empty string.")
    source = serializers.ChoiceField(choices=Evidence.Source.choices, read_only=True)
    status = serializers.ChoiceField(choices=Evidence.Status.choices, read_only=True)
    visibility = serializers.ChoiceField(choices=Evidence.Visibility.choices, read_only=True)
    expectations = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Codes of the linked expectations (the expectation links, in order).",
    )
    links = LinkOutSerializer(many=True, read_only=True)
    ladder_changed = serializers.BooleanField(
        read_only=True,
        help_text="True when a newer ladder version removed or reworded an expectation this "
        "item links to (see each link's ladder_change and made_against).",
    )
    skills = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Skill names."
    )
    work_item = serializers.IntegerField(source="work_item_id", read_only=True, allow_null=True)
    work_item_deleted = serializers.BooleanField(read_only=True)
    snapshot = serializers.DictField(
        read_only=True, help_text="The ServiceNow record as last imported."
    )
    snapshot_sha256 = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="sha256 of the snapshot's canonical JSON (sorted keys, no whitespace, "
        "UTF-8); null without a snapshot (manual evidence).",
    )
    attachments = AttachmentSerializer(many=True, read_only=True)
    suggestions = SuggestionOutSerializer(
        many=True,
        read_only=True,
        help_text="Best first: rules, then learned (or similar) expectations. Advice only: "
        "links are what the owner accepted.",
    )
    corroborations = EvidenceCorroborationSerializer(
        many=True,
        read_only=True,
        help_text="People the owner asked to confirm the work, and their answers.",
    )
    deleted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


# --- bodies, built by name from the declared fields -----------------------------------------

# Evidence fields that are not a column under their source: the satellites (one query for a
# whole page, selectors.evidence_satellites) and the work item's deleted flag.
EVIDENCE_FILLED = (
    "expectations",
    "links",
    "ladder_changed",
    "skills",
    "work_item_deleted",
    "attachments",
    "corroborations",
)
_WORK_ITEM_DELETED_AT = "work_item__deleted_at"

_DATED = (serializers.DateField, serializers.DateTimeField)


def _iso(value) -> str | None:
    """Dates and UTC times as the API writes them (ISO 8601, "Z" for UTC)."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


class _Shape:
    """A serializer's declared fields as the fast builder fills them, by name: a field that
    is not `filled` is read from the column its source names (dates as ISO text), a filled
    one from the value the caller passes under the field's name; keys in declared order.
    Built once; a row is then picked in C (itemgetter): about 7 µs a row against 6 µs for
    the hand-written dict literal it replaced, most of it the ISO dates either way."""

    def __init__(self, serializer: serializers.Serializer, *, filled: tuple[str, ...] = ()):
        keys, dated = [], []
        for name, fld in serializer.fields.items():
            if name in filled:
                keys.append(name)
                continue
            column = fld.source.replace(".", "__")  # a DRF source path as an ORM path
            keys.append(column)
            if isinstance(fld, _DATED):
                dated.append(column)
        self.names = tuple(serializer.fields)
        self.columns = tuple(
            key for name, key in zip(self.names, keys, strict=True) if name not in filled
        )
        if set(filled) & set(self.columns):
            raise ImproperlyConfigured(f"{filled} collide with the columns {self.columns}")
        self.pick = operator.itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
        self.dated = tuple(dated)

    def build(self, row: dict, filled: dict | None = None) -> dict:
        """The body of one row (a dict of self.columns, which this consumes)."""
        if filled:
            row.update(filled)
        for column in self.dated:
            row[column] = _iso(row[column])
        return dict(zip(self.names, self.pick(row), strict=True))


@functools.cache
def _shapes() -> tuple[_Shape, _Shape, _Shape]:
    """(evidence, link, attachment) shapes, made on first use (the app registry is ready)."""
    return (
        _Shape(EvidenceOutSerializer(), filled=EVIDENCE_FILLED),
        _Shape(LinkOutSerializer()),
        _Shape(AttachmentSerializer(), filled=("url",)),
    )


@functools.cache
def evidence_columns() -> tuple[str, ...]:
    """The evidence columns a body reads (for values(): EvidenceRowsPage, evidence_rows)."""
    return (*_shapes()[0].columns, _WORK_ITEM_DELETED_AT)


def evidence_bodies(rows: list[dict]) -> list[dict]:
    """The response bodies of these evidence rows (dicts of evidence_columns()), in order:
    one more query for all their links, skills and attachments, no model instances."""
    if not rows:
        return []
    evidence, link, attachment = _shapes()
    url = attachment_url_builder()
    satellites = selectors.evidence_satellites(ids=[row["id"] for row in rows])
    bodies = []
    for row in rows:
        pk = row["id"]
        links = [link.build(lk) for lk in satellites.links.get(pk, ())]
        files = [
            attachment.build(f, {"url": url(pk, f["id"])})
            for f in satellites.attachments.get(pk, ())
        ]
        filled = {
            "expectations": [lk["expectation"] for lk in links if lk["expectation"]],
            "links": links,
            "ladder_changed": any(lk["ladder_change"] for lk in links),
            "skills": satellites.skills.get(pk, []),
            "work_item_deleted": row[_WORK_ITEM_DELETED_AT] is not None,
            "attachments": files,
            "corroborations": [
                {**c, "answered_at": _iso(c["answered_at"])}
                for c in satellites.corroborations.get(pk, ())
            ],
        }
        bodies.append(evidence.build(row, filled))
    return bodies


def evidence_body(*, pk: int) -> dict:
    """One evidence body (the caller checked the viewer's scope)."""
    return evidence_bodies(selectors.evidence_rows(ids=[pk], columns=evidence_columns()))[0]


class EvidenceQuerySerializer(serializers.Serializer):
    person = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    status = serializers.ChoiceField(choices=Evidence.Status.choices, required=False)
    source = serializers.ChoiceField(choices=Evidence.Source.choices, required=False)
    visibility = serializers.ChoiceField(choices=Evidence.Visibility.choices, required=False)
    competency = serializers.CharField(required=False, allow_blank=True, max_length=16)
    level = serializers.IntegerField(required=False, min_value=1, max_value=20)
    skill = serializers.CharField(required=False, allow_blank=True, max_length=100)
    expectation = serializers.CharField(required=False, allow_blank=True, max_length=32)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Text in the title, the description, or the work item's number or short "
        "description (case-insensitive).",
    )
    table = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=80,
        help_text="The work item's ServiceNow table.",
    )
    state = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="The work item's stored state value.",
    )
    suggested = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=32,
        help_text="An expectation code that a suggestion rule linked (not yet the owner's).",
    )
    sort = serializers.ChoiceField(
        choices=list(EVIDENCE_SORTS), required=False, help_text="Default newest."
    )
    deleted = serializers.BooleanField(required=False, default=False)


class AcceptSerializer(serializers.Serializer):
    expectations = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    links = LinkInSerializer(many=True, required=False)


class ConfirmLinkSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=32, help_text="The reworded link's expectation code.")


class BulkTriageSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),  # a 64-bit key
        min_length=1,
        max_length=500,
    )
    action = serializers.ChoiceField(choices=["accept", "dismiss"])
    expectations = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        max_length=100,
        help_text="accept only: expectation codes linked to every accepted item, besides "
        "the suggestions each keeps.",
    )


class BulkTriageResultSerializer(serializers.Serializer):
    updated = serializers.IntegerField(read_only=True, help_text="How many items were triaged.")


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="PDF, PNG, JPEG, GIF, WebP or text; at most the site's upload limit "
        "(EVIDENCE_MAX_UPLOAD_BYTES, 20 MB by default): larger is a 413 naming the limit."
    )


class VerifyDiffSerializer(serializers.Serializer):
    field = serializers.CharField(read_only=True, help_text="e.g. state, display.state")
    snapshot = serializers.CharField(read_only=True, help_text="The value the snapshot holds.")
    live = serializers.CharField(read_only=True, help_text="The value ServiceNow has now.")


class ItemVerificationSerializer(serializers.Serializer):
    """One item checked against its live ServiceNow record (stored as its last one)."""

    evidence = serializers.IntegerField(read_only=True)
    result = serializers.ChoiceField(
        choices=EvidenceVerification.Result.choices,
        read_only=True,
        help_text="match; changed (see diff); deleted (ServiceNow no longer returns it).",
    )
    diff = VerifyDiffSerializer(many=True, read_only=True)
    compared_sha256 = serializers.CharField(
        read_only=True, help_text="Hash of the snapshot compared (the item's, or a packet's copy)."
    )
    verified_at = serializers.DateTimeField(read_only=True)
    verified_by = serializers.CharField(read_only=True, allow_null=True)


class EvidenceEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)

    class Meta:
        model = EvidenceEvent
        fields = ["id", "action", "actor", "changes", "at"]
