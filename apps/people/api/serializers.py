from rest_framework import serializers

from apps.ladders.models import Ladder
from apps.people.models import LevelChange, Person


class PersonSerializer(serializers.ModelSerializer):
    username = serializers.CharField(
        source="user.username", default=None, read_only=True, allow_null=True
    )
    # Not an EmailField: a person may have no email, and "" is no `format: email`.
    email = serializers.CharField(read_only=True, help_text="An email address, or empty.")
    ladder = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    manager = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)

    class Meta:
        model = Person
        fields = [
            "id",
            "username",
            "email",
            "name",
            "title",
            "ladder",
            "level",
            "manager",
            "servicenow_sys_id",
            "is_active",
            "is_committee",
        ]
        read_only_fields = fields


class PersonWriteSerializer(serializers.Serializer):
    """What admins send; on update every field is optional and only those sent change."""

    username = serializers.RegexField(r"^[\w.@+-]{1,150}$", required=True)
    email = serializers.EmailField()
    name = serializers.CharField(max_length=200)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    ladder = serializers.SlugRelatedField(
        slug_field="slug", queryset=Ladder.objects.all(), required=False, allow_null=True
    )
    level = serializers.IntegerField(min_value=1, max_value=20, required=False, allow_null=True)
    manager = serializers.PrimaryKeyRelatedField(
        queryset=Person.objects.all(), required=False, allow_null=True
    )
    is_committee = serializers.BooleanField(required=False)
    is_active = serializers.BooleanField(required=False)
    password = serializers.CharField(
        write_only=True, required=False, min_length=8, style={"input_type": "password"}
    )


class LevelChangeSerializer(serializers.ModelSerializer):
    changed_by = serializers.CharField(source="changed_by.username", default=None, allow_null=True)

    class Meta:
        model = LevelChange
        fields = [
            "id",
            "from_level",
            "to_level",
            "effective_on",
            "reason",
            "packet_id",
            "changed_by",
            "created_at",
        ]


class ImportErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField()
    field = serializers.CharField()
    message = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    rows = serializers.IntegerField()
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    errors = ImportErrorSerializer(many=True)


class ImportRequestSerializer(serializers.Serializer):
    file = serializers.FileField()
    dry_run = serializers.BooleanField(default=True)
