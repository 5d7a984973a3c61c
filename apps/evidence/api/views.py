"""Evidence API: CRUD for the owner, read for managers of the owner, triage, attachments.

Scope (404) comes from the selectors; the services refuse anyone but the owner (403) and
raise field errors; ladder_tracker.api.exception_handler answers for both."""

from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.evidence import selectors, services
from apps.evidence.uploads import UploadRejected, max_upload_bytes, too_large_message
from apps.evidence.verification import evidence_verify
from apps.people.selectors import person_for_user
from ladder_tracker.api import ErrorSerializer, conflict_response
from ladder_tracker.errors import ForbiddenError

from . import serializers as s
from .corroborations import EvidenceCorroborationActions

# Multipart framing around the file: boundaries and headers, never more than a few KB.
MULTIPART_OVERHEAD = 64 * 1024


def _link_specs(data: dict) -> list[services.LinkSpec] | None:
    if "expectations" in data:
        return [services.LinkSpec(expectation=code) for code in data["expectations"]]
    if "links" in data:
        return [services.LinkSpec(**link) for link in data["links"]]
    return None


class OwnerChanges(permissions.IsAuthenticated):
    """A change to one item asks the services' owner rule as soon as the item is found, before
    the body is read: someone who may only read it is refused (403) whatever they send.
    Attachment removal is refused by its service once the attachment is found (404 first)."""

    def has_object_permission(self, request, view, obj) -> bool:
        # verify: whoever may see the item may check it against ServiceNow
        if request.method not in permissions.SAFE_METHODS and view.action not in (
            "attachment_detail",
            "verify",
        ):
            services.evidence_require_owner(actor=request.user, evidence=obj)
        return True


# Requests are read by EvidenceSerializer; every evidence body that goes out is declared by
# EvidenceOutSerializer and built from it by serializers.evidence_bodies.
@extend_schema_view(
    retrieve=extend_schema(responses=s.EvidenceOutSerializer),
    create=extend_schema(responses={201: s.EvidenceOutSerializer}),
    update=extend_schema(responses=s.EvidenceOutSerializer),
    partial_update=extend_schema(responses=s.EvidenceOutSerializer),
)
class EvidenceViewSet(EvidenceCorroborationActions, viewsets.ModelViewSet):
    serializer_class = s.EvidenceSerializer
    permission_classes = [OwnerChanges]
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    def _query(self) -> dict:
        query = s.EvidenceQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def get_queryset(self):
        if self.action == "list":
            params = self._query()
            trash = params.pop("deleted", False)
            return selectors.evidence_list(
                viewer=self.request.user, filters=selectors.EvidenceFilters(**params), trash=trash
            )
        # One row for the scope check; bodies come from _body (serializers.evidence_body),
        # so prefetching links, skills and files here would be read and thrown away.
        return selectors.evidence_scope(viewer=self.request.user, trash=self.action == "restore")

    @staticmethod
    def _body(pk: int) -> dict:
        return s.evidence_body(pk=pk)

    @extend_schema(
        parameters=[s.EvidenceQuerySerializer], responses=s.EvidenceOutSerializer(many=True)
    )
    def list(self, request, *args, **kwargs):
        page = selectors.EvidenceRowsPage(self.get_queryset(), columns=s.evidence_columns())
        return self.get_paginated_response(s.evidence_bodies(list(self.paginate_queryset(page))))

    def retrieve(self, request, *args, **kwargs):
        return Response(self._body(self.get_object().pk))

    def create(self, request, *args, **kwargs):
        person = person_for_user(user=request.user)
        if person is None:
            raise ForbiddenError("You have no person profile to add evidence to.")
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        evidence = services.evidence_create(
            person=person,
            actor=request.user,
            links=_link_specs(data),
            skills=data.pop("skills", None),
            **{k: v for k, v in data.items() if k in services.EDITABLE_FIELDS},
        )
        return Response(self._body(evidence.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        evidence = self.get_object()
        partial = kwargs.get("partial", False)
        body = self.get_serializer(evidence, data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        services.evidence_update(
            evidence=evidence,
            actor=request.user,
            links=_link_specs(data),
            skills=data.pop("skills", None),
            **{k: v for k, v in data.items() if k in services.EDITABLE_FIELDS},
        )
        return Response(self._body(evidence.pk))

    def destroy(self, request, *args, **kwargs):
        services.evidence_delete(evidence=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        evidence = self.get_object()
        services.evidence_restore(evidence=evidence, actor=request.user)
        return Response(self._body(evidence.pk))

    @extend_schema(request=s.AcceptSerializer, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        evidence = self.get_object()
        body = s.AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.evidence_accept(
            evidence=evidence, actor=request.user, links=_link_specs(body.validated_data)
        )
        return Response(self._body(evidence.pk))

    @extend_schema(request=None, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        evidence = self.get_object()
        services.evidence_dismiss(evidence=evidence, actor=request.user)
        return Response(self._body(evidence.pk))

    @extend_schema(request=s.BulkTriageSerializer, responses=s.BulkTriageResultSerializer)
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        body = s.BulkTriageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        done = services.evidence_bulk_triage(
            actor=request.user,
            ids=body.validated_data["ids"],
            action=body.validated_data["action"],
            expectations=body.validated_data.get("expectations", ()),
        )
        return Response({"updated": done.updated})

    @extend_schema(
        request=None,
        responses={
            200: s.ItemVerificationSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="Manual evidence: nothing to verify."
            ),
            409: conflict_response(
                "The item's ServiceNow connection is gone or its source disabled: nothing "
                "was sent or stored."
            ),
            502: OpenApiResponse(
                ErrorSerializer, description="ServiceNow did not answer; nothing was stored."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Re-read the item's record from ServiceNow and compare it with its snapshot:
        match, changed (with the field diff) or deleted. Stored as its last verification."""
        return Response(evidence_verify(evidence=self.get_object(), actor=request.user))

    @extend_schema(request=s.ConfirmLinkSerializer, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"], url_path="confirm-link")
    def confirm_link(self, request, pk=None):
        """Keep a link whose expectation a newer ladder version reworded: it is then made
        against the expectation as it reads now, and its ladder_change flag goes."""
        evidence = self.get_object()
        body = s.ConfirmLinkSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.evidence_link_confirm(
            evidence=evidence, actor=request.user, code=body.validated_data["code"]
        )
        return Response(self._body(evidence.pk))

    # The whole history in one plain list: no page wrapper (pagination_class=None here only
    # keeps the schema from documenting one; the action never paginates).
    @extend_schema(responses=s.EvidenceEventSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def history(self, request, pk=None):
        evidence = self.get_object()
        events = evidence.events.select_related("actor").order_by("at", "id")
        return Response(s.EvidenceEventSerializer(events, many=True).data)

    @extend_schema(
        request={"multipart/form-data": s.AttachmentUploadSerializer},
        responses={201: s.AttachmentSerializer},
    )
    @action(detail=True, methods=["post"], url_path="attachments", parser_classes=[MultiPartParser])
    def attachments(self, request, pk=None):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise exceptions.ParseError("The Content-Length header is not a number.") from None
        if declared > max_upload_bytes() + MULTIPART_OVERHEAD:
            raise UploadRejected(
                too_large_message("The upload", declared),
                too_large=True,
            )
        evidence = self.get_object()
        body = s.AttachmentUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        attachment = services.attachment_add(
            evidence=evidence, actor=request.user, upload=body.validated_data["file"]
        )
        return Response(s.AttachmentSerializer(attachment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["GET"],
        responses={
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its uploaded content type."
            )
        },
    )
    @extend_schema(methods=["DELETE"], responses={204: OpenApiResponse(description="Removed.")})
    @action(
        detail=True,
        methods=["get", "delete"],
        url_path=r"attachments/(?P<attachment_id>\d+)",
        url_name="attachment-detail",
    )
    def attachment_detail(self, request, pk=None, attachment_id=None):
        evidence = self.get_object()  # 404 unless the viewer may see the evidence
        attachment = get_object_or_404(evidence.attachments.all(), pk=attachment_id)
        if request.method == "DELETE":
            with transaction.atomic():
                services.attachment_remove(attachment=attachment, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        return attachment_response(attachment)


def attachment_response(attachment) -> FileResponse:
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("The file is missing from storage.") from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
