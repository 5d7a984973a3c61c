"""Ladder API: list, the published tree, versions, a diff, and draft edits."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.ladders import selectors, services
from ladder_tracker.api import conflict_response

from . import serializers as s

VERSION_PARAM = OpenApiParameter(
    "version", int, description="A version number; default: the current published one."
)


class LadderViewSet(viewsets.GenericViewSet):
    lookup_field = "slug"
    lookup_value_regex = r"[a-z0-9-]+"
    serializer_class = s.LadderSummarySerializer
    pagination_class = None

    def get_queryset(self):
        return selectors.ladder_list(user=self.request.user)

    def list(self, request):
        return Response(s.LadderSummarySerializer(self.get_queryset(), many=True).data)

    @extend_schema(parameters=[VERSION_PARAM], responses=s.LadderTreeSerializer)
    def retrieve(self, request, slug=None):
        ladder = selectors.ladder_get(slug=slug, user=request.user)
        number = _int_param(request, "version")
        version = selectors.ladder_version_get(ladder=ladder, user=request.user, number=number)
        tree = selectors.ladder_version_tree(version=version)
        return Response(s.LadderTreeSerializer(tree).data)

    @extend_schema(responses=s.VersionSummarySerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, slug=None):
        ladder = selectors.ladder_get(slug=slug, user=request.user)
        versions = selectors.ladder_version_list(ladder=ladder, user=request.user)
        return Response(s.VersionSummarySerializer(versions, many=True).data)

    @extend_schema(
        parameters=[
            s.DiffQuerySerializer,  # from, to: integers >= 1
        ],
        responses=s.VersionDiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, slug=None):
        query = s.DiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ladder = selectors.ladder_get(slug=slug, user=request.user)
        from_version = selectors.ladder_version_get(
            ladder=ladder, user=request.user, number=query.validated_data["from"]
        )
        to_version = selectors.ladder_version_get(
            ladder=ladder, user=request.user, number=query.validated_data["to"]
        )
        diff = selectors.ladder_version_diff(from_version=from_version, to_version=to_version)
        return Response(s.VersionDiffSerializer(diff).data)


class ExpectationUpdateApi(APIView):
    """Edit an expectation of a draft version (admins). Published versions answer 409."""

    permission_classes = [permissions.IsAdminUser]

    @extend_schema(
        request=s.ExpectationUpdateSerializer,
        responses={
            200: s.ExpectationSerializer,
            409: conflict_response("The version is published: its expectations are fixed."),
        },
    )
    def patch(self, request, slug: str, number: int, code: str):
        ladder = selectors.ladder_get(slug=slug, user=request.user)
        version = selectors.ladder_version_get(ladder=ladder, user=request.user, number=number)
        expectation = get_object_or_404(
            version.expectations.select_related("level", "competency"), code=code
        )
        body = s.ExpectationUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        # a published version refuses: LadderVersionImmutable, a 409 (the API's handler)
        services.expectation_update(expectation=expectation, text=body.validated_data["text"])
        return Response(s.ExpectationSerializer(expectation).data)


def _int_param(request, name: str) -> int | None:
    query = s.VersionQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data.get(name)
