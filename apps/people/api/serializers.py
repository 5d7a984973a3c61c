from rest_framework import serializers

from apps.people.models import Person


class PersonSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", default=None, read_only=True)
    ladder = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    manager = serializers.PrimaryKeyRelatedField(read_only=True)

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
