from django.urls import reverse
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from apps.evidence.models import Attachment, Evidence, EvidenceEvent, EvidenceLink
from apps.evidence.selectors import evidence_rows


class AttachmentSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Attachment
        fields = ["id", "name", "size", "content_type", "url", "created_at"]

    def get_url(self, attachment) -> str:
        return reverse(
            "evidence-attachment-detail",
            kwargs={"pk": attachment.evidence_id, "attachment_id": attachment.pk},
        )


class LinkInSerializer(serializers.Serializer):
    expectation = serializers.CharField(required=False, allow_blank=False, max_length=32)
    deliverable = serializers.IntegerField(required=False, min_value=1)
    rationale = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    def validate(self, attrs):
        if bool(attrs.get("expectation")) == bool(attrs.get("deliverable")):
            raise serializers.ValidationError("Give either an expectation code or a deliverable.")
        return attrs


class EvidenceSerializer(serializers.ModelSerializer):
    """Read shape (the contract in DESIGN.md) plus write fields for the owner."""

    # Written as codes / link objects / skill names, read back the same way (to_representation).
    expectations = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False, write_only=True
    )
    links = LinkInSerializer(many=True, required=False, write_only=True)
    skills = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, write_only=True
    )
    attachments = AttachmentSerializer(many=True, read_only=True)
    person_name = serializers.CharField(source="person.name", read_only=True)
    work_item_deleted = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = [
            "id",
            "person",
            "person_name",
            "title",
            "description",
            "description_html",
            "occurred_on",
            "occurred_until",
            "url",
            "source",
            "status",
            "visibility",
            "expectations",
            "links",
            "skills",
            "work_item",
            "work_item_deleted",
            "snapshot",
            "attachments",
            "deleted_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "person",
            "description_html",
            "source",
            "status",
            "work_item",
            "snapshot",
            "deleted_at",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"title": {"max_length": 300}, "url": {"max_length": 1000}}

    def get_work_item_deleted(self, evidence) -> bool:
        return bool(evidence.work_item_id and evidence.work_item.deleted_at)

    def to_representation(self, evidence):
        # One shape for lists and details, built in selectors.evidence_rows.
        return evidence_rows(ids=[evidence.pk])[0]

    def validate(self, attrs):
        if "expectations" in attrs and "links" in attrs:
            raise serializers.ValidationError("Send either expectations (codes) or links.")
        return attrs


# The response shape of evidence, for the OpenAPI schema only: responses are the dicts built
# by selectors.evidence_rows and never go through these serializers (requests are read by
# EvidenceSerializer). Change them together with evidence_rows;
# tests/evidence/test_openapi_evidence.py compares the two.
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


@extend_schema_serializer(component_name="Evidence")
class EvidenceOutSerializer(serializers.Serializer):
    """An evidence item, as every evidence endpoint returns it."""

    id = serializers.IntegerField(read_only=True)
    person = serializers.IntegerField(read_only=True)
    person_name = serializers.CharField(read_only=True)
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
    skills = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Skill names."
    )
    work_item = serializers.IntegerField(read_only=True, allow_null=True)
    work_item_deleted = serializers.BooleanField(read_only=True)
    snapshot = serializers.DictField(
        read_only=True, help_text="The ServiceNow record as last imported."
    )
    attachments = AttachmentSerializer(many=True, read_only=True)
    deleted_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


class EvidenceQuerySerializer(serializers.Serializer):
    person = serializers.IntegerField(required=False, min_value=1)
    status = serializers.ChoiceField(choices=Evidence.Status.choices, required=False)
    source = serializers.ChoiceField(choices=Evidence.Source.choices, required=False)
    visibility = serializers.ChoiceField(choices=Evidence.Visibility.choices, required=False)
    competency = serializers.CharField(required=False, max_length=16)
    level = serializers.IntegerField(required=False, min_value=1, max_value=20)
    skill = serializers.CharField(required=False, max_length=100)
    expectation = serializers.CharField(required=False, max_length=32)
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    q = serializers.CharField(required=False, max_length=200)
    deleted = serializers.BooleanField(required=False, default=False)


class AcceptSerializer(serializers.Serializer):
    expectations = serializers.ListField(child=serializers.CharField(max_length=32), required=False)
    links = LinkInSerializer(many=True, required=False)


class BulkTriageSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=500
    )
    action = serializers.ChoiceField(choices=["accept", "dismiss"])


class BulkTriageResultSerializer(serializers.Serializer):
    updated = serializers.IntegerField(read_only=True, help_text="How many items were triaged.")


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class EvidenceEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)

    class Meta:
        model = EvidenceEvent
        fields = ["id", "action", "actor", "changes", "at"]
