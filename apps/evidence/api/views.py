"""Evidence API: CRUD for the owner, read for managers of the owner, triage, attachments."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.evidence import selectors, services
from apps.evidence.uploads import UploadRejected, max_upload_bytes
from apps.people.selectors import person_for_user

from . import serializers as s

# Multipart framing around the file: boundaries and headers, never more than a few KB.
MULTIPART_OVERHEAD = 64 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The upload is too large."
    default_code = "too_large"


def _validation(exc: DjangoValidationError) -> exceptions.ValidationError:
    detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
    return exceptions.ValidationError(detail)


def _link_specs(data: dict) -> list[services.LinkSpec] | None:
    if "expectations" in data:
        return [services.LinkSpec(expectation=code) for code in data["expectations"]]
    if "links" in data:
        return [services.LinkSpec(**link) for link in data["links"]]
    return None


# Requests are read by EvidenceSerializer; every evidence body that goes out is declared by
# EvidenceOutSerializer and built from it by serializers.evidence_bodies.
@extend_schema_view(
    retrieve=extend_schema(responses=s.EvidenceOutSerializer),
    create=extend_schema(responses={201: s.EvidenceOutSerializer}),
    update=extend_schema(responses=s.EvidenceOutSerializer),
    partial_update=extend_schema(responses=s.EvidenceOutSerializer),
)
class EvidenceViewSet(viewsets.ModelViewSet):
    serializer_class = s.EvidenceSerializer
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

    def _owned(self):
        evidence = self.get_object()
        if not selectors.evidence_can_edit(viewer=self.request.user, evidence=evidence):
            raise exceptions.PermissionDenied("Only the owner changes their evidence.")
        return evidence

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
            raise exceptions.PermissionDenied("You have no person profile to add evidence to.")
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        try:
            evidence = services.evidence_create(
                person=person,
                actor=request.user,
                links=_link_specs(data),
                skills=data.pop("skills", None),
                **{k: v for k, v in data.items() if k in services.EDITABLE_FIELDS},
            )
        except DjangoValidationError as exc:
            raise _validation(exc) from exc
        return Response(self._body(evidence.pk), status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        evidence = self._owned()
        partial = kwargs.get("partial", False)
        body = self.get_serializer(evidence, data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        try:
            services.evidence_update(
                evidence=evidence,
                actor=request.user,
                links=_link_specs(data),
                skills=data.pop("skills", None),
                **{k: v for k, v in data.items() if k in services.EDITABLE_FIELDS},
            )
        except DjangoValidationError as exc:
            raise _validation(exc) from exc
        return Response(self._body(evidence.pk))

    def destroy(self, request, *args, **kwargs):
        services.evidence_delete(evidence=self._owned(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def restore(self, request, pk=None):
        evidence = self._owned()
        services.evidence_restore(evidence=evidence, actor=request.user)
        return Response(self._body(evidence.pk))

    @extend_schema(request=s.AcceptSerializer, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        evidence = self._owned()
        body = s.AcceptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            services.evidence_accept(
                evidence=evidence, actor=request.user, links=_link_specs(body.validated_data)
            )
        except DjangoValidationError as exc:
            raise _validation(exc) from exc
        return Response(self._body(evidence.pk))

    @extend_schema(request=None, responses=s.EvidenceOutSerializer)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        evidence = self._owned()
        services.evidence_dismiss(evidence=evidence, actor=request.user)
        return Response(self._body(evidence.pk))

    @extend_schema(request=s.BulkTriageSerializer, responses=s.BulkTriageResultSerializer)
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        body = s.BulkTriageSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = set(body.validated_data["ids"])
        me = person_for_user(user=request.user)
        mine = list(selectors.evidence_scope(viewer=request.user).filter(pk__in=ids, person=me))
        missing = sorted(ids - {e.pk for e in mine})
        if missing:
            raise exceptions.ValidationError({"ids": f"Not your evidence: {missing}"})
        count = services.evidence_bulk_triage(
            evidence=mine, actor=request.user, action=body.validated_data["action"]
        )
        return Response({"updated": count})

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
            raise PayloadTooLarge(
                f"The upload is {declared} bytes; the limit is {max_upload_bytes()} bytes."
            )
        evidence = self._owned()
        body = s.AttachmentUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            attachment = services.attachment_add(
                evidence=evidence, actor=request.user, upload=body.validated_data["file"]
            )
        except UploadRejected as exc:
            if exc.too_large:
                raise PayloadTooLarge(str(exc)) from exc
            raise exceptions.ValidationError({"file": [str(exc)]}) from exc
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
            if not selectors.evidence_can_edit(viewer=request.user, evidence=evidence):
                raise exceptions.PermissionDenied("Only the owner removes attachments.")
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
