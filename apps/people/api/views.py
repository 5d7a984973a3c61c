"""People API: visibility-scoped reads; admins create, edit and import people."""

from drf_spectacular.utils import (
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response

from apps.people.imports import people_import
from apps.people.selectors import person_for_user, person_list
from apps.people.services import person_create, person_update
from ladder_tracker.api import ErrorSerializer

from .serializers import (
    ImportReportSerializer,
    ImportRequestSerializer,
    LevelChangeSerializer,
    PersonSerializer,
    PersonWriteSerializer,
)

# A 400 from the import is either the report of a run that found errors, or the usual error
# body when the request itself is wrong (no file, not UTF-8).
IMPORT_FAILED = OpenApiResponse(
    PolymorphicProxySerializer(
        component_name="ImportFailure",
        serializers=[ImportReportSerializer, ErrorSerializer],
        resource_type_field_name=None,
    ),
    description="The report of a run with errors (nothing written), or a malformed request.",
)


class IsAdminForWrites(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


class PersonViewSet(viewsets.ModelViewSet):
    """People you may see: yourself, your reports at any depth; admins see and edit everyone."""

    serializer_class = PersonSerializer
    permission_classes = [permissions.IsAuthenticated, IsAdminForWrites]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return person_list(viewer=self.request.user)

    @extend_schema(request=PersonWriteSerializer, responses={201: PersonSerializer})
    def create(self, request, *args, **kwargs):
        body = PersonWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        person = person_create(**body.validated_data, is_admin=False, actor=request.user)
        return Response(PersonSerializer(person).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PersonWriteSerializer, responses=PersonSerializer)
    def partial_update(self, request, *args, **kwargs):
        person = self.get_object()
        body = PersonWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        if "username" in fields or "password" in fields:
            raise exceptions.ValidationError(
                {"username": "Usernames and passwords change in the admin, not here."}
            )
        person = person_update(person=person, actor=request.user, **fields)
        return Response(PersonSerializer(person).data)

    @extend_schema(responses=PersonSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        person = person_for_user(user=request.user)
        if person is None:
            raise exceptions.NotFound("You have no person profile; ask an admin to create one.")
        return Response(PersonSerializer(person).data)

    # A plain list, never paginated (pagination_class=None keeps the schema from saying so).
    @extend_schema(responses=LevelChangeSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="level-history", pagination_class=None)
    def level_history(self, request, pk=None):
        person = self.get_object()
        changes = person.level_changes.select_related("changed_by").order_by("effective_on", "id")
        return Response(LevelChangeSerializer(changes, many=True).data)

    @extend_schema(
        request={"multipart/form-data": ImportRequestSerializer},
        responses={200: ImportReportSerializer, 400: IMPORT_FAILED},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, JSONParser],
    )
    def import_csv(self, request):
        body = ImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        raw = body.validated_data["file"].read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise exceptions.ValidationError({"file": "The CSV must be UTF-8."}) from exc
        report = people_import(
            text=text, dry_run=body.validated_data["dry_run"], actor=request.user
        )
        data = ImportReportSerializer(report).data
        return Response(data, status=status.HTTP_200_OK if report.ok else 400)
