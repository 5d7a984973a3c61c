from django.contrib.auth.models import AnonymousUser
from django.db.models.manager import BaseManager
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.evidence.api.serializers import ItemVerificationSerializer
from apps.evidence.markdown import MARKDOWN_MAX_LENGTH, MARKDOWN_TOO_LONG
from apps.evidence.selectors import evidence_withheld
from apps.packets.models import Assessment, Packet, PacketEvent, PacketSnapshot, PromotionCycle
from apps.packets.selectors import packet_item_rows
from ladder_tracker.api import DiffQuerySerializer  # noqa: F401 (re-exported for views)


class CycleSerializer(serializers.ModelSerializer):
    min_coverage = serializers.FloatField(min_value=0, max_value=1)

    class Meta:
        model = PromotionCycle
        fields = ["id", "name", "opens_on", "submission_deadline", "decision_on", "min_coverage"]


class PacketItemSerializer(serializers.Serializer):
    expectation = serializers.CharField(max_length=32)
    evidence = serializers.IntegerField(min_value=1)
    note = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")
    share = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Required for a private evidence item: true shares it with your reviewers "
        "(its visibility becomes manager, with an evidence event); without it the "
        "request is refused with a 400 naming the item.",
    )


class PacketItemOutSerializer(serializers.Serializer):
    """One item of a packet as its reader sees it (schema only: get_items builds the dicts)."""

    expectation = serializers.CharField(read_only=True)
    evidence = serializers.IntegerField(read_only=True)
    note = serializers.CharField(read_only=True)
    withheld = serializers.BooleanField(
        read_only=True,
        help_text="True when the evidence is private and not yours: its note is emptied, "
        "and every export and page shows it as withheld.",
    )


def _item_rows_attach(packets: list[Packet]) -> None:
    """packet.item_rows for each packet that has none yet, in one query for all of them."""
    missing = [p for p in packets if not hasattr(p, "item_rows")]
    if missing:
        rows = packet_item_rows(packet_ids=[p.pk for p in missing])
        for packet in missing:
            packet.item_rows = rows[packet.pk]


class PacketListSerializer(serializers.ListSerializer):
    """Packets with their items: one query for the items of all of them, not one a packet."""

    def to_representation(self, data):
        packets = list(data.all() if isinstance(data, BaseManager) else data)
        _item_rows_attach(packets)
        return super().to_representation(packets)


class PacketSerializer(serializers.ModelSerializer):
    person = serializers.PrimaryKeyRelatedField(read_only=True)
    person_name = serializers.CharField(source="person.name", read_only=True)
    ladder_version = serializers.IntegerField(source="ladder_version.number", read_only=True)
    ladder = serializers.CharField(source="ladder_version.ladder.slug", read_only=True)
    ladder_latest_version = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="The number of the ladder's latest published version.",
    )
    ladder_moved_on = serializers.SerializerMethodField(
        help_text="True when the ladder has a newer published version than the packet's "
        "(ladder_version): the packet keeps its version; a draft may move "
        "(POST packets/{id}/move-to-latest/). GET people/me/ladder-changes/ says what changed."
    )
    items = serializers.SerializerMethodField()

    class Meta:
        model = Packet
        fields = [
            "id",
            "person",
            "person_name",
            "cycle",
            "ladder",
            "ladder_version",
            "ladder_latest_version",
            "ladder_moved_on",
            "from_level",
            "target_level",
            "state",
            "narratives",
            "narratives_html",
            "items",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields
        list_serializer_class = PacketListSerializer

    def to_representation(self, instance):
        _item_rows_attach([instance])
        return super().to_representation(instance)

    def get_ladder_moved_on(self, packet) -> bool:
        latest = getattr(packet, "ladder_latest_version", None)
        return latest is not None and latest > packet.ladder_version.number

    @extend_schema_field(PacketItemOutSerializer(many=True))
    def get_items(self, packet) -> list[dict]:
        """`[{expectation, evidence, note, withheld}]`; an item withheld from this reader
        (private evidence, not theirs) has `withheld: true` and no note."""
        request = self.context.get("request")
        viewer = request.user if request is not None else AnonymousUser()
        owner_user_id = packet.person.user_id
        out = []
        for item in packet.item_rows:  # _item_rows_attach
            withheld = evidence_withheld(
                viewer=viewer, owner_user_id=owner_user_id, visibility=item.evidence_visibility
            )
            out.append(
                {
                    "expectation": item.expectation_code,
                    "evidence": item.evidence_id,
                    "note": "" if withheld else item.note,
                    "withheld": withheld,
                }
            )
        return out


class PacketCreateSerializer(serializers.Serializer):
    cycle = serializers.PrimaryKeyRelatedField(queryset=PromotionCycle.objects.all())
    target_level = serializers.IntegerField(min_value=1, max_value=20, required=False)


class PacketUpdateSerializer(serializers.Serializer):
    narratives = serializers.DictField(
        child=serializers.CharField(
            allow_blank=True,
            max_length=MARKDOWN_MAX_LENGTH,
            error_messages={"max_length": MARKDOWN_TOO_LONG},
        ),
        required=False,
        help_text=f"Markdown per competency name, at most {MARKDOWN_MAX_LENGTH:,} characters each.",
    )
    items = PacketItemSerializer(many=True, required=False)


class AssessmentInSerializer(serializers.Serializer):
    expectation = serializers.CharField(max_length=32)
    rating = serializers.ChoiceField(choices=Assessment.Rating.choices)
    comment = serializers.CharField(required=False, allow_blank=True, max_length=5000, default="")


class TransitionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10000, default="")


class ReviewSerializer(TransitionSerializer):
    assessments = AssessmentInSerializer(many=True, required=False)


class AssessSerializer(serializers.Serializer):
    assessments = AssessmentInSerializer(many=True)


class DecideSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=["promoted", "not_promoted"])
    rationale = serializers.CharField(allow_blank=True, max_length=10000)


class AssessmentSerializer(serializers.ModelSerializer):
    expectation = serializers.CharField(source="expectation.code")
    reviewer = serializers.CharField(source="reviewer.name")

    class Meta:
        model = Assessment
        fields = ["expectation", "reviewer", "rating", "comment", "updated_at"]


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PacketSnapshot
        fields = ["id", "number", "sha256", "created_at"]


class EventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None, allow_null=True)

    class Meta:
        model = PacketEvent
        fields = ["id", "action", "actor", "from_state", "to_state", "comment", "detail", "at"]
        extra_kwargs = {
            "detail": {
                "help_text": 'For "reassess" (a reviewer changed a saved assessment): '
                "{expectation, reviewer: {id, name}, state, before: {rating, comment}, "
                "after: {rating, comment}}; {} for state changes."
            }
        }


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=["pdf", "md", "json"], default="json")
    snapshot = serializers.IntegerField(min_value=1, required=False)


# Response shapes for the OpenAPI schema only: these bodies are dicts built by the selectors
# (PacketCoverage.as_dict, snapshot_diff, cycle_report_rows) and never go through the
# serializers below. Change them together; tests/test_openapi_responses.py validates real
# responses against them.
class CoverageExpectationSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    text = serializers.CharField(read_only=True)
    competency = serializers.CharField(read_only=True, help_text="The competency's name.")
    covered = serializers.BooleanField(read_only=True)
    evidence = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Ids of the accepted, live evidence offered for it.",
    )


class CoverageDeliverableSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    text = serializers.CharField(read_only=True)


class CoverageSerializer(serializers.Serializer):
    """How far a packet covers the expectations of its target level."""

    overall = serializers.FloatField(read_only=True, help_text="0..1")
    by_competency = serializers.DictField(
        child=serializers.FloatField(), read_only=True, help_text="0..1 by competency name."
    )
    expectations = CoverageExpectationSerializer(many=True, read_only=True)
    gaps = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Codes not covered."
    )
    deliverables = CoverageDeliverableSerializer(many=True, read_only=True)


class SnapshotDetailSerializer(serializers.Serializer):
    """A submission, frozen: `data` is the packet as the reviewers read it."""

    number = serializers.IntegerField(read_only=True)
    sha256 = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    data = serializers.DictField(read_only=True)


class DiffItemSerializer(serializers.Serializer):
    expectation = serializers.CharField(read_only=True)
    evidence = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)


class DiffNoteSerializer(serializers.Serializer):
    expectation = serializers.CharField(read_only=True)
    evidence = serializers.IntegerField(read_only=True)
    before = serializers.CharField(read_only=True)
    after = serializers.CharField(read_only=True)


class DiffCoverageSerializer(serializers.Serializer):
    before = serializers.FloatField(read_only=True)
    after = serializers.FloatField(read_only=True)


class SnapshotDiffSerializer(serializers.Serializer):
    """What changed between two submissions."""

    added = DiffItemSerializer(many=True, read_only=True)
    removed = DiffItemSerializer(many=True, read_only=True)
    notes_changed = DiffNoteSerializer(many=True, read_only=True)
    narratives_changed = serializers.ListField(child=serializers.CharField(), read_only=True)
    coverage = DiffCoverageSerializer(read_only=True)


class CycleReportRowSerializer(serializers.Serializer):
    target_level = serializers.IntegerField(read_only=True)
    state = serializers.ChoiceField(choices=Packet.State.choices, read_only=True)
    count = serializers.IntegerField(read_only=True)


class CycleReportSerializer(serializers.Serializer):
    """Packets of a cycle counted by target level and state."""

    cycle = serializers.IntegerField(read_only=True)
    rows = CycleReportRowSerializer(many=True, read_only=True)
    by_state = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="Counts by state."
    )


# --- cycle analytics (analytics.CycleAnalytics.as_dict): documented shapes, read-only ------


class AnalyticsCycleSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    min_coverage = serializers.FloatField()


class AnalyticsOutcomeSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="promoted, not_promoted, declined, withdrawn or open")
    label = serializers.CharField()


class AnalyticsBucketSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class AnalyticsCoverageSerializer(serializers.Serializer):
    submitted = serializers.IntegerField(help_text="Packets with a snapshot (submitted once).")
    median = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    below_minimum = serializers.IntegerField()
    buckets = AnalyticsBucketSerializer(many=True)


class AnalyticsOutcomeCountsSerializer(serializers.Serializer):
    promoted = serializers.IntegerField()
    not_promoted = serializers.IntegerField()
    declined = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    open = serializers.IntegerField()


class AnalyticsLevelRowSerializer(serializers.Serializer):
    target_level = serializers.IntegerField()
    label = serializers.CharField()
    counts = AnalyticsOutcomeCountsSerializer()
    total = serializers.IntegerField()


class AnalyticsManagerRowSerializer(serializers.Serializer):
    manager = serializers.IntegerField(allow_null=True, help_text="Person id; null: no manager.")
    label = serializers.CharField()
    counts = AnalyticsOutcomeCountsSerializer()
    total = serializers.IntegerField()


class AnalyticsRatingCountsSerializer(serializers.Serializer):
    below = serializers.IntegerField()
    meets = serializers.IntegerField()
    exceeds = serializers.IntegerField()


class AnalyticsRatingCycleSerializer(serializers.Serializer):
    counts = AnalyticsRatingCountsSerializer()
    total = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)


class AnalyticsReviewerSerializer(serializers.Serializer):
    reviewer = serializers.IntegerField(help_text="Person id.")
    name = serializers.CharField()
    counts = AnalyticsRatingCountsSerializer()
    total = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    difference = serializers.FloatField(allow_null=True, help_text="mean − the cycle's mean")


class AnalyticsRatingsSerializer(serializers.Serializer):
    scores = serializers.DictField(child=serializers.IntegerField(), help_text="rating → score")
    cycle = AnalyticsRatingCycleSerializer()
    by_reviewer = AnalyticsReviewerSerializer(many=True)


class AnalyticsStateTimeSerializer(serializers.Serializer):
    state = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField(help_text="Completed stays (entered, then left).")
    current = serializers.IntegerField(help_text="Packets in this state now (not counted).")
    median_seconds = serializers.FloatField(allow_null=True)
    p25_seconds = serializers.FloatField(allow_null=True)
    p75_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)
    max_seconds = serializers.FloatField(allow_null=True)


class CycleAnalyticsSerializer(serializers.Serializer):
    """A cycle's analytics: the numbers of its analytics page."""

    cycle = AnalyticsCycleSerializer()
    packets = serializers.IntegerField()
    outcomes = AnalyticsOutcomeSerializer(many=True)
    coverage_at_submission = AnalyticsCoverageSerializer()
    outcomes_by_level = AnalyticsLevelRowSerializer(many=True)
    outcomes_by_manager = AnalyticsManagerRowSerializer(many=True)
    ratings = AnalyticsRatingsSerializer()
    time_in_state = AnalyticsStateTimeSerializer(many=True)


class VerifySummarySerializer(serializers.Serializer):
    match = serializers.IntegerField(read_only=True)
    changed = serializers.IntegerField(read_only=True)
    deleted = serializers.IntegerField(read_only=True)


class PacketVerificationSerializer(serializers.Serializer):
    """A packet's imported items checked against ServiceNow (services.packet_verify)."""

    packet = serializers.IntegerField(read_only=True)
    snapshot = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The snapshot compared; null: never submitted."
    )
    items = ItemVerificationSerializer(many=True, read_only=True)
    skipped = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Evidence ids not verified: manual items, and items withheld from you.",
    )
    summary = VerifySummarySerializer(read_only=True)


class PacketMoveItemSerializer(serializers.Serializer):
    expectation = serializers.CharField(read_only=True, help_text="Expectation code.")
    evidence = serializers.IntegerField(read_only=True)


class PacketMoveSerializer(serializers.Serializer):
    """A draft moved to the ladder's latest version: items carried by code, the ones whose
    code is gone dropped, and the target level's gaps afterwards."""

    packet = PacketSerializer(read_only=True)
    from_version = serializers.IntegerField(read_only=True)
    to_version = serializers.IntegerField(read_only=True)
    carried = PacketMoveItemSerializer(many=True, read_only=True)
    reworded = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Codes carried whose expectation reads otherwise in the new version.",
    )
    dropped = PacketMoveItemSerializer(many=True, read_only=True)
    narratives_dropped = serializers.ListField(child=serializers.CharField(), read_only=True)
    gaps = serializers.ListField(child=serializers.CharField(), read_only=True)


# The ladder-changes body (selectors.LadderChanges.as_dict), for the schema and its test.
class TouchedEvidenceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    made_against_version = serializers.IntegerField(read_only=True)
    ladder_change = serializers.CharField(
        read_only=True, help_text='The link\'s flag: "", "reworded" or "removed".'
    )


class PersonExpectationChangeSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    change = serializers.ChoiceField(choices=["added", "removed", "reworded"], read_only=True)
    level = serializers.IntegerField(read_only=True)
    competency = serializers.CharField(read_only=True, help_text="Competency code.")
    before = serializers.CharField(read_only=True, allow_null=True)
    after = serializers.CharField(read_only=True, allow_null=True)
    evidence = TouchedEvidenceSerializer(many=True, read_only=True)
    packets = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Your open packets on an older version that offer evidence for it.",
    )


class LevelChangesSerializer(serializers.Serializer):
    level = serializers.IntegerField(read_only=True)
    role = serializers.ChoiceField(choices=["next", "current"], read_only=True)
    added = PersonExpectationChangeSerializer(many=True, read_only=True)
    removed = PersonExpectationChangeSerializer(many=True, read_only=True)
    reworded = PersonExpectationChangeSerializer(many=True, read_only=True)


class PacketBehindSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    state = serializers.ChoiceField(choices=Packet.State.choices, read_only=True)
    target_level = serializers.IntegerField(read_only=True)
    ladder_version = serializers.IntegerField(read_only=True)


class LadderChangesSerializer(serializers.Serializer):
    """What newer ladder versions changed for you: between the oldest version your evidence
    links or open packets were made against (from_version) and the latest (to_version), for
    your next and current level, with the evidence and packets each change touches."""

    ladder = serializers.CharField(read_only=True, allow_null=True)
    from_version = serializers.IntegerField(read_only=True, allow_null=True)
    to_version = serializers.IntegerField(read_only=True, allow_null=True)
    changed = serializers.BooleanField(read_only=True)
    evidence_flagged = serializers.IntegerField(
        read_only=True, help_text="Your items with a removed or reworded link."
    )
    levels = LevelChangesSerializer(many=True, read_only=True)
    packets = PacketBehindSerializer(many=True, read_only=True)
