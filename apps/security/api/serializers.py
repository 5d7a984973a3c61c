from django.conf import settings
from rest_framework import serializers

from apps.security.models import ApiToken, SecurityEvent


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
