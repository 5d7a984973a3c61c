"""Output shapes of the ladder API. The tree comes from selectors.ladder_version_tree."""

from rest_framework import serializers

from ladder_tracker.api import DiffQuerySerializer  # noqa: F401 (re-exported for views)


class LevelSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    title = serializers.CharField()
    title_inferred = serializers.BooleanField()
    summary = serializers.CharField()


class CompetencySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()


class ExpectationSerializer(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()
    level = serializers.IntegerField(source="level.number")
    competency = serializers.CharField(source="competency.code")
    level_inferred = serializers.BooleanField()


class DeliverableSerializer(serializers.Serializer):
    level = serializers.IntegerField(source="level.number")
    text = serializers.CharField()
    level_inferred = serializers.BooleanField()


class StatementSerializer(serializers.Serializer):
    text = serializers.CharField()
    level = serializers.IntegerField(source="level.number", allow_null=True, default=None)
    level_inferred = serializers.BooleanField()


class SkillListSerializer(StatementSerializer):
    category = serializers.CharField()


class RequirementsSerializer(serializers.Serializer):
    education = StatementSerializer(many=True)
    experience = StatementSerializer(many=True)
    skills = SkillListSerializer(many=True)
    general = StatementSerializer(many=True)


class SkillSerializer(serializers.Serializer):
    name = serializers.CharField()
    category = serializers.CharField()
    qualifier = serializers.CharField()


class VersionSummarySerializer(serializers.Serializer):
    number = serializers.IntegerField()
    status = serializers.CharField()
    published_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    content_sha256 = serializers.CharField()


class LadderSummarySerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    description = serializers.CharField()
    published_version = serializers.IntegerField(
        source="published_number", read_only=True, allow_null=True
    )  # annotated by selectors.ladder_list


class LadderTreeSerializer(serializers.Serializer):
    """A version's full tree (input: selectors.VersionTree)."""

    slug = serializers.CharField(source="version.ladder.slug")
    name = serializers.CharField(source="version.ladder.name")
    description = serializers.CharField(source="version.ladder.description")
    version = VersionSummarySerializer()
    source = serializers.CharField(source="version.source")
    competency_intro = serializers.CharField(source="version.competency_intro")
    levels = serializers.SerializerMethodField()
    competencies = CompetencySerializer(many=True)
    expectations = ExpectationSerializer(many=True)
    deliverables = DeliverableSerializer(many=True)
    scope = StatementSerializer(many=True)
    duties = StatementSerializer(many=True)
    requirements = RequirementsSerializer()
    skills = SkillSerializer(many=True)

    def get_levels(self, tree) -> list[dict]:
        return LevelSerializer([lt.level for lt in tree.levels], many=True).data


class ExpectationFactsSerializer(serializers.Serializer):
    code = serializers.CharField()
    text = serializers.CharField()
    level = serializers.IntegerField()
    competency = serializers.CharField()


class ExpectationChangeSerializer(serializers.Serializer):
    code = serializers.CharField()
    before = ExpectationFactsSerializer(allow_null=True)
    after = ExpectationFactsSerializer(allow_null=True)
    fields = serializers.ListField(child=serializers.CharField())


class VersionDiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField(source="from_version.number")
    to_version = serializers.IntegerField(source="to_version.number")
    added = ExpectationChangeSerializer(many=True)
    removed = ExpectationChangeSerializer(many=True)
    changed = ExpectationChangeSerializer(many=True)


class ExpectationUpdateSerializer(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=True, min_length=1)


class VersionQuerySerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, required=False)
