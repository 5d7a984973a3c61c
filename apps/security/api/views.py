"""API tokens (your own) and the audit trail (admins)."""

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.security import selectors, services
from apps.security.models import ApiToken, SecurityEvent

from .serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    HistoryChangeSerializer,
    HistoryQuerySerializer,
    SecurityEventSerializer,
)


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (not revoked); secrets are never shown"),
    destroy=extend_schema(
        summary="Revoke a token", responses={204: OpenApiResponse(description="Revoked.")}
    ),
)
class ApiTokenViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_value_regex = r"[0-9]+"  # anything else is a 404 at the router, not a 500

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular reading the types
            return ApiToken.objects.none()
        return selectors.token_list(viewer=self.request.user)

    def get_object(self):
        return selectors.token_get(viewer=self.request.user, token_id=self.kwargs["pk"])

    @extend_schema(
        summary="Create a token; the secret is in this response only",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    )
    def create(self, request):
        body = ApiTokenCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        token, plain = services.token_create(actor=request.user, **body.validated_data)
        token.token = plain
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.token_revoke(actor=self.request.user, token=instance)


class SecurityEventFilterSet(django_filters.FilterSet):
    since = django_filters.IsoDateTimeFilter(field_name="at", lookup_expr="gte")
    username = django_filters.CharFilter(field_name="username", lookup_expr="iexact")

    class Meta:
        model = SecurityEvent
        fields = ["kind", "actor", "username", "since"]


@extend_schema_view(
    list=extend_schema(summary="The security audit trail, newest first (admins)"),
)
class SecurityEventViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SecurityEventSerializer
    permission_classes = [permissions.IsAdminUser]
    filterset_class = SecurityEventFilterSet

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return SecurityEvent.objects.none()
        return selectors.security_event_list(viewer=self.request.user)


@extend_schema(
    summary="Changes to cycles, people, suggestion rules, ServiceNow sources and connections "
    "(admins)",
    description="Newest first, each with its actor, time and every field's before and after; "
    'a secret shows only "set", "changed" or "cleared". `model` is one of '
    + ", ".join(sorted(selectors.AUDITED_MODELS))
    + "; `object` narrows to one object's history.",
    parameters=[HistoryQuerySerializer],
)
class HistoryChangeListView(generics.ListAPIView):
    serializer_class = HistoryChangeSerializer
    permission_classes = [permissions.IsAdminUser]
    filter_backends = []

    def list(self, request, *args, **kwargs):
        query = HistoryQuerySerializer(data=request.query_params)
        if not query.is_valid():
            raise ValidationError(query.errors)
        rows = selectors.history_queryset(
            viewer=request.user,
            model=query.validated_data["model"],
            object_id=query.validated_data.get("object"),
        )
        page = self.paginate_queryset(rows)
        changes = selectors.history_changes(rows=list(page))
        return self.get_paginated_response(HistoryChangeSerializer(changes, many=True).data)
