from django.conf import settings
from rest_framework import serializers

from apps.security.models import ApiToken, SecurityEvent
from apps.security.selectors import AUDITED_MODELS


class ApiTokenSerializer(serializers.ModelSerializer):
    expired = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "expired"]
        read_only_fields = fields

    def get_expired(self, token: ApiToken) -> bool:
        return token.is_expired()


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The secret, shown only in this response. Store it now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Days until the token stops working (default API_TOKEN_DEFAULT_DAYS, 90).",
    )

    def validate_expires_in_days(self, value):
        if value > settings.API_TOKEN_MAX_DAYS:
            raise serializers.ValidationError(f"At most {settings.API_TOKEN_MAX_DAYS} days.")
        return value


class SecurityEventSerializer(serializers.ModelSerializer):
    actor = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = SecurityEvent
        fields = ["id", "kind", "at", "actor", "username", "ip_address", "target", "detail"]
        read_only_fields = fields


class HistoryFieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    before = serializers.JSONField(allow_null=True, help_text="null on the object's first row")
    after = serializers.JSONField(allow_null=True)
    secret = serializers.CharField(
        required=False,
        help_text='Only for a secret: "set", "changed" or "cleared" (its value is never kept).',
    )


class HistoryChangeSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The history row's id.")
    model = serializers.CharField(help_text="e.g. people.person")
    object_id = serializers.IntegerField()
    object_repr = serializers.CharField()
    action = serializers.ChoiceField(choices=["created", "changed", "deleted"])
    at = serializers.DateTimeField()
    actor = serializers.SerializerMethodField(
        help_text="The username, or null when the system made the change (see reason)."
    )
    reason = serializers.CharField()
    changes = HistoryFieldChangeSerializer(many=True)

    def get_actor(self, change) -> str | None:
        return change.actor.get_username() if change.actor is not None else None


class HistoryQuerySerializer(serializers.Serializer):
    model = serializers.ChoiceField(
        choices=sorted(AUDITED_MODELS), help_text="app_label.model, e.g. people.person"
    )
    object = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
