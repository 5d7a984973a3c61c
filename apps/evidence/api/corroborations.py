"""Corroboration API: who saw an imported item, asking one of them, their answer.

`GET evidence/{id}/corroborators/` and `POST evidence/{id}/corroborations/` are actions of
the evidence viewset (the item's scope first, then the owner rule); `corroborations/` lists
the requests to me and the ones I asked, and takes the corroborator's answer."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.evidence import corroboration as c
from apps.evidence.models import Corroboration
from ladder_tracker.api import ErrorSerializer, forbidden_response


class CorroboratorSerializer(serializers.Serializer):
    person = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    reasons = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Why: co-assignee, wrote a work note, wrote a comment, approver (state), "
        "caller, opened it.",
    )
    corroboration = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The request already made, if any."
    )
    state = serializers.ChoiceField(
        choices=Corroboration.State.choices, read_only=True, allow_null=True
    )


class CorroborationAskSerializer(serializers.Serializer):
    person = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    reasons = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, max_length=10
    )


class CorroborationAnswerSerializer(serializers.Serializer):
    comment = serializers.CharField(
        required=False, allow_blank=True, max_length=c.COMMENT_MAX, default=""
    )


class CorroborationSerializer(serializers.ModelSerializer):
    """A request: the item's title and snapshot (all a corroborator sees of it)."""

    evidence_title = serializers.CharField(source="evidence.title", read_only=True)
    snapshot = serializers.JSONField(source="evidence.snapshot", read_only=True)
    name = serializers.CharField(source="person.name", read_only=True)
    asked_by_name = serializers.CharField(source="asked_by.name", read_only=True)

    class Meta:
        model = Corroboration
        fields = [
            "id",
            "evidence",
            "evidence_title",
            "snapshot",
            "person",
            "name",
            "asked_by",
            "asked_by_name",
            "reasons",
            "state",
            "comment",
            "created_at",
            "answered_at",
        ]
        read_only_fields = fields


class CorroborationQuerySerializer(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=["to_me", "asked"], required=False, help_text="Default: both."
    )


class EvidenceCorroborationActions:
    """Mixed into EvidenceViewSet (get_object gives the item's scope: 404 outside it)."""

    @extend_schema(
        responses={
            200: CorroboratorSerializer(many=True),
            400: OpenApiResponse(ErrorSerializer, description="The item is not imported."),
            403: forbidden_response("Only the item's owner asks who saw the work."),
            502: OpenApiResponse(ErrorSerializer, description="ServiceNow could not be read."),
        }
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def corroborators(self, request, pk=None):
        suggestions = c.corroborators_suggest(viewer=request.user, evidence=self.get_object())
        return Response([s.as_dict() for s in suggestions])

    @extend_schema(request=CorroborationAskSerializer, responses={201: CorroborationSerializer})
    @action(detail=True, methods=["post"], url_path="corroborations")
    def corroborations(self, request, pk=None):
        evidence = self.get_object()
        body = CorroborationAskSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made = c.corroboration_request(
            actor=request.user,
            evidence=evidence,
            person_id=body.validated_data["person"],
            reasons=body.validated_data.get("reasons"),
        )
        made = c.corroboration_get(viewer=request.user, pk=made.pk)
        return Response(CorroborationSerializer(made).data, status=201)


class CorroborationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CorroborationSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]{1,18}"  # anything else is a 404 at the router, not a 500

    def get_queryset(self):
        if self.action == "list":
            params = self.request.query_params
            if "role" in params and params["role"] not in ("to_me", "asked"):
                # a form-style empty value would pass the ChoiceField as "not given"
                raise serializers.ValidationError({"role": ["Pick to_me or asked."]})
            query = CorroborationQuerySerializer(data=params)
            query.is_valid(raise_exception=True)
            return c.corroboration_list(
                viewer=self.request.user, role=query.validated_data.get("role")
            )
        return Corroboration.objects.none()

    def get_object(self):
        return c.corroboration_get(viewer=self.request.user, pk=int(self.kwargs["pk"]))

    @extend_schema(parameters=[CorroborationQuerySerializer])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    def _answer(self, request, confirm: bool):
        body = CorroborationAnswerSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = c.corroboration_answer(
            actor=request.user,
            corroboration=self.get_object(),
            confirm=confirm,
            comment=body.validated_data["comment"],
        )
        fresh = c.corroboration_get(viewer=request.user, pk=done.pk)
        return Response(self.get_serializer(fresh).data)

    @extend_schema(request=CorroborationAnswerSerializer, responses=CorroborationSerializer)
    @action(detail=True, methods=["post"])
    def confirm(self, request, pk=None):
        return self._answer(request, True)

    @extend_schema(request=CorroborationAnswerSerializer, responses=CorroborationSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return self._answer(request, False)
