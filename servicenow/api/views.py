"""ServiceNow API: configuration for admins, sync commands, runs, work items.

The services refuse (ConfigurationInUse, RunAlreadyActive, SourceDisabled: 409s) and
ladder_tracker.api.exception_handler answers for them."""

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse

from ladder_tracker.api import conflict_response
from servicenow import selectors, services
from servicenow.filters import WorkItemFilterSet
from servicenow.models import Connection, Source, SuggestionRule

from . import serializers as s


class _AdminViewSet(viewsets.ModelViewSet):
    permission_classes = [permissions.IsAdminUser]


@extend_schema_view(
    destroy=extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: conflict_response("The connection still has sources or work items."),
        }
    )
)
class ConnectionViewSet(_AdminViewSet):
    serializer_class = s.ConnectionSerializer

    def get_queryset(self):
        return selectors.connection_list()

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer)

    def perform_destroy(self, instance):
        services.connection_delete(connection=instance)

    def _save(self, serializer):
        data = dict(serializer.validated_data)
        password = data.pop("password", None)
        client_secret = data.pop("client_secret", None)
        connection = serializer.instance or Connection()
        for key, value in data.items():
            setattr(connection, key, value)
        serializer.instance = services.connection_save(
            connection=connection,
            password=password,
            client_secret=client_secret,
            actor=self.request.user,
        )

    @extend_schema(request=None, responses=s.ConnectionCheckSerializer)
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        result = services.connection_check(connection=self.get_object())
        return Response(result)


@extend_schema_view(
    destroy=extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: conflict_response("The source has imported work items; disable it instead."),
        }
    )
)
class SourceViewSet(_AdminViewSet):
    serializer_class = s.SourceSerializer

    def get_queryset(self):
        return selectors.source_list()

    def perform_create(self, serializer):
        source = services.source_save(
            source=Source(**serializer.validated_data), actor=self.request.user
        )
        serializer.instance = selectors.source_list().get(pk=source.pk)  # with its health

    def perform_update(self, serializer):
        source = serializer.instance
        for key, value in serializer.validated_data.items():
            setattr(source, key, value)
        source = services.source_save(source=source, actor=self.request.user)
        serializer.instance = selectors.source_list().get(pk=source.pk)

    def perform_destroy(self, instance):
        services.source_delete(source=instance)

    @extend_schema(
        request=s.SyncRequestSerializer,
        responses={
            202: OpenApiResponse(s.SyncAcceptedSerializer, description="Queued; poll the run."),
            409: conflict_response("A run is already active, or the source is disabled."),
        },
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        source = self.get_object()
        body = s.SyncRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            run = services.sync_run_request(
                source=source,
                mode=body.validated_data["mode"],
                requested_by=request.user,
                windows=body.validated_data.get("windows"),
                workers=body.validated_data.get("workers"),
            )
        except ValueError as exc:  # windows asked of a run that is never split
            raise ValidationError({"windows": [str(exc)]}) from None
        # Only requested: a worker (or, eager, a thread) runs it; the answer never waits.
        url = request.build_absolute_uri(reverse("sn-run-detail", args=[run.pk]))
        return Response(
            {"run": run.pk, "status": run.status, "url": url}, status=status.HTTP_202_ACCEPTED
        )


class SyncRunViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [permissions.IsAdminUser]
    serializer_class = s.SyncRunSerializer
    filterset_fields = ["source", "status", "mode"]

    def get_queryset(self):
        return selectors.sync_run_list().prefetch_related("windows")


class WorkItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Work items follow the visibility of the evidence made from them
    (selectors.work_item_list): outside it, a detail is a 404 and a list never counts it."""

    serializer_class = s.WorkItemSerializer
    filterset_class = WorkItemFilterSet

    def get_queryset(self):
        return selectors.work_item_list(viewer=self.request.user)


class SuggestionRuleViewSet(_AdminViewSet):
    serializer_class = s.SuggestionRuleSerializer

    def get_queryset(self):
        return SuggestionRule.objects.all()
