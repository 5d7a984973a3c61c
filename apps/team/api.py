"""GET /api/v1/team/: the team overview (apps.team.selectors) as JSON rows."""

from functools import cached_property

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.packets.models import Packet
from ladder_tracker.api import ErrorSerializer

from .selectors import SORTS, TeamFilters, TeamRow, team_overview


class TeamQuerySerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200)
    manager = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    level = serializers.IntegerField(required=False, min_value=1, max_value=99)
    packet_state = serializers.ChoiceField(
        choices=[*Packet.State.values, "none"], required=False, allow_blank=True
    )
    sort = serializers.ChoiceField(
        choices=[*SORTS, *(f"-{key}" for key in SORTS)], required=False, default="name"
    )

    def filters(self) -> TeamFilters:
        return TeamFilters(**self.validated_data)


class PersonRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class PacketRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Packet.State.choices)


class TeamRowSerializer(serializers.Serializer):
    person = serializers.IntegerField(source="person.pk")
    name = serializers.CharField(source="person.name")
    manager = PersonRefSerializer(allow_null=True, help_text="The direct manager.")
    level = serializers.IntegerField(source="person.level", allow_null=True)
    next_level = serializers.IntegerField(allow_null=True)
    coverage = serializers.FloatField(
        help_text="0-1: the packet builder's figure when there is a packet this cycle, else "
        "the share of the next level's expectations with accepted evidence you may read."
    )
    packet = PacketRefSerializer(allow_null=True, help_text="The packet of the current cycle.")
    candidates_waiting = serializers.IntegerField()
    evidence_90d = serializers.IntegerField()
    last_activity = serializers.DateTimeField(allow_null=True)

    def to_representation(self, instance: TeamRow):
        # Written out by hand: the declared fields above are the schema, and a department's
        # few hundred rows through DRF's field machinery cost more than reading them.
        person, packet, manager = instance.person, instance.packet, instance.manager
        last = instance.last_activity
        return {
            "person": person.id,
            "name": person.name,
            "manager": {"id": manager.id, "name": manager.name} if manager else None,
            "level": person.level,
            "next_level": instance.next_level,
            "coverage": round(instance.coverage, 4),
            "packet": {"id": packet.pk, "state": packet.state} if packet else None,
            "candidates_waiting": instance.candidates_waiting,
            "evidence_90d": instance.evidence_90d,
            "last_activity": self._datetime(last) if last else None,
        }

    @cached_property
    def _timezone(self):
        return timezone.get_current_timezone()

    def _datetime(self, value) -> str:
        # DateTimeField.to_representation (current time zone, ISO 8601, "Z" for UTC) for
        # one time zone read per page rather than per row
        text = value.astimezone(self._timezone).isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text


class TeamView(APIView):
    """One row per person you oversee (reports at any depth; admins: everyone; anyone else:
    an empty list). Filter with `q`, `manager`, `level`, `packet_state` (`none` for no packet
    this cycle); order with `sort` (a field, `-` in front for descending)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="team_list",
        parameters=[TeamQuerySerializer],
        responses={200: TeamRowSerializer(many=True), 400: OpenApiResponse(ErrorSerializer)},
    )
    def get(self, request):
        query = TeamQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = team_overview(viewer=request.user, filters=query.filters())
        return Response(TeamRowSerializer(rows, many=True).data)
