"""`GET/PATCH /api/v1/people/me/notifications/`: which mails the signed-in person gets."""

from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.people.selectors import person_for_user
from ladder_tracker.api import ErrorSerializer
from ladder_tracker.errors import NotFoundError

from ..models import NotificationPreference
from ..selectors import notification_preferences_get
from ..services import notification_preferences_update


class NotificationPreferenceSerializer(serializers.ModelSerializer):
    # null until the person first changes a preference (the defaults are not stored)
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = NotificationPreference
        fields = [*NotificationPreference.FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]


class MyNotificationsView(APIView):
    """Your notification preferences: every mail is on until you turn it off."""

    permission_classes = [permissions.IsAuthenticated]

    def _person(self, request):
        person = person_for_user(user=request.user)
        if person is None:
            raise NotFoundError("You have no person profile; ask an admin to create one.")
        return person

    @extend_schema(responses={200: NotificationPreferenceSerializer, 404: ErrorSerializer})
    def get(self, request):
        preference = notification_preferences_get(person=self._person(request))
        return Response(NotificationPreferenceSerializer(preference).data)

    @extend_schema(
        request=NotificationPreferenceSerializer(partial=True),
        responses={
            200: NotificationPreferenceSerializer,
            400: ErrorSerializer,
            404: ErrorSerializer,
        },
    )
    def patch(self, request):
        self._person(request)
        body = NotificationPreferenceSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        # names the serializer does not know go to the service, which refuses them by name
        unknown = {k: request.data[k] for k in request.data if k not in body.fields}
        preference = notification_preferences_update(
            actor=request.user, **unknown, **body.validated_data
        )
        return Response(NotificationPreferenceSerializer(preference).data)
