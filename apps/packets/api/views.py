"""Packets API: cycles, packets within the rules, coverage, transitions, snapshots, export.

The services decide what may happen (apps/packets/transitions.py) and raise the error
family; ladder_tracker.api.exception_handler answers for them, so no view catches them."""

from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.ladders.models import LadderVersion
from apps.packets import selectors, services
from apps.packets.analytics import cycle_analytics
from apps.packets.exports import cycle_report_csv_response, export_response, packet_export_data
from apps.packets.models import PromotionCycle
from apps.people.selectors import person_for_user
from ladder_tracker.api import ErrorSerializer, conflict_response, forbidden_response
from ladder_tracker.errors import ForbiddenError, InvalidError, NotFoundError

from . import serializers as s


class AdminWrites(permissions.BasePermission):
    def has_permission(self, request, view):
        return request.method in permissions.SAFE_METHODS or request.user.is_staff


# Documented on every operation that can raise services.PacketConflict.
STATE_CONFLICT = conflict_response("The packet's state does not allow this (now).")


def _transition_schema(request):
    """The schema of a state transition: the packet as it is afterwards, or a 409."""
    return extend_schema(request=request, responses={200: s.PacketSerializer, 409: STATE_CONFLICT})


# Lists that an action returns whole, for one packet: no page wrapper (pagination_class=None
# on the action keeps the schema from documenting one; the actions never paginate), and not
# the packet list's filters (state, cycle, person), which do not filter these rows.
def _plain_list_schema(serializer):
    return extend_schema(responses=serializer(many=True), filters=False)


class CycleViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = s.CycleSerializer
    permission_classes = [permissions.IsAuthenticated, AdminWrites]
    http_method_names = ["get", "post", "patch", "head", "options"]
    queryset = PromotionCycle.objects.all()

    def perform_create(self, serializer):
        self._save(PromotionCycle(**serializer.validated_data), serializer)

    def perform_update(self, serializer):
        cycle = serializer.instance
        for key, value in serializer.validated_data.items():
            setattr(cycle, key, value)
        self._save(cycle, serializer)

    def _save(self, cycle, serializer):
        serializer.instance = services.cycle_save(cycle=cycle, actor=self.request.user)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["json", "csv"])],
        responses={
            (200, "application/json"): s.CycleReportSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="With ?format=csv: target_level,state,count"
            ),
            403: forbidden_response("Cycle reports are for admins and the committee."),
        },
    )
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        cycle = self.get_object()
        if not selectors.cycle_report_allowed(viewer=request.user):
            raise ForbiddenError("Cycle reports are for admins and the committee.")
        report_format = request.query_params.get("format", "json")
        if report_format not in ("json", "csv"):
            raise InvalidError("Unknown format.", {"format": "json or csv"})
        rows = selectors.cycle_report_rows(cycle=cycle)
        if report_format == "csv":
            return cycle_report_csv_response(cycle, rows)
        by_state: dict[str, int] = {}
        for row in rows:
            by_state[row["state"]] = by_state.get(row["state"], 0) + row["count"]
        return Response({"cycle": cycle.pk, "rows": rows, "by_state": by_state})

    @extend_schema(
        responses={
            200: s.CycleAnalyticsSerializer,
            403: forbidden_response("Cycle reports are for admins and the committee."),
        },
    )
    @action(detail=True, methods=["get"])
    def analytics(self, request, pk=None):
        """Coverage at submission, outcomes by target level and by reviewing manager, each
        reviewer's ratings beside the cycle's, and time in each state (the analytics page's
        numbers)."""
        cycle = self.get_object()
        if not selectors.cycle_report_allowed(viewer=request.user):
            raise ForbiddenError("Cycle reports are for admins and the committee.")
        return Response(cycle_analytics(cycle=cycle).as_dict())


class PacketViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = s.PacketSerializer
    filterset_fields = ["state", "cycle", "person"]

    def get_queryset(self):
        qs = selectors.packet_scope(viewer=self.request.user)
        if self.action in ("list", "retrieve"):
            # the items come with the serializer, one query for the page (packet_item_rows)
            return self._with_latest_version(qs)
        # Every other action reads the packet row (the scope check) and answers with
        # _packet_body when it returns the packet.
        return qs

    def _packet_body(self, pk) -> dict:
        qs = self._with_latest_version(selectors.packet_scope(viewer=self.request.user))
        return s.PacketSerializer(qs.get(pk=pk), context={"request": self.request}).data

    @staticmethod
    def _with_latest_version(qs):
        latest = (
            LadderVersion.objects.filter(
                ladder_id=OuterRef("ladder_version__ladder_id"),
                status=LadderVersion.Status.PUBLISHED,
            )
            .order_by("-number")
            .values("number")[:1]
        )
        return qs.annotate(ladder_latest_version=Subquery(latest))

    @extend_schema(
        request=s.PacketCreateSerializer,
        responses={
            201: s.PacketSerializer,
            409: conflict_response("The person already has an open packet in this cycle."),
        },
    )
    def create(self, request):
        me = person_for_user(user=request.user)
        if me is None:
            raise ForbiddenError("You have no person profile.")
        body = s.PacketCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        packet = services.packet_create(person=me, actor=request.user, **body.validated_data)
        return Response(self._packet_body(packet.pk), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.PacketUpdateSerializer,
        responses={200: s.PacketSerializer, 409: STATE_CONFLICT},
    )
    def partial_update(self, request, pk=None):
        packet = self.get_object()
        services.packet_require_role(packet=packet, actor=request.user, action="edit")
        body = s.PacketUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        items = None
        if "items" in data:
            items = [services.ItemSpec(**i) for i in data["items"]]
        services.packet_update(
            packet=packet, actor=request.user, narratives=data.get("narratives"), items=items
        )
        return Response(self._packet_body(packet.pk))

    @extend_schema(responses=s.CoverageSerializer)
    @action(detail=True, methods=["get"])
    def coverage(self, request, pk=None):
        return Response(selectors.packet_coverage(packet=self.get_object()).as_dict())

    def _transition(self, request, pk, fn, body_cls, **extra):
        packet = self.get_object()  # 404 outside scope, before any rule
        body = body_cls(data=request.data)
        body.is_valid(raise_exception=True)
        kwargs = dict(body.validated_data)
        if "assessments" in kwargs:
            kwargs["assessments"] = [services.AssessmentSpec(**a) for a in kwargs["assessments"]]
        fn(packet_id=packet.pk, actor=request.user, **kwargs, **extra)
        return Response(self._packet_body(packet.pk))

    @_transition_schema(s.TransitionSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._transition(request, pk, services.packet_submit, s.TransitionSerializer)

    @_transition_schema(s.TransitionSerializer)
    @action(detail=True, methods=["post"], url_path="request-changes")
    def request_changes(self, request, pk=None):
        return self._transition(
            request, pk, services.packet_request_changes, s.TransitionSerializer
        )

    @_transition_schema(s.ReviewSerializer)
    @action(detail=True, methods=["post"])
    def endorse(self, request, pk=None):
        return self._transition(request, pk, services.packet_endorse, s.ReviewSerializer)

    @_transition_schema(s.ReviewSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        return self._transition(request, pk, services.packet_decline, s.ReviewSerializer)

    @_transition_schema(s.AssessSerializer)
    @action(detail=True, methods=["post"])
    def assess(self, request, pk=None):
        return self._transition(request, pk, services.packet_assess, s.AssessSerializer)

    @_transition_schema(s.DecideSerializer)
    @action(detail=True, methods=["post"])
    def decide(self, request, pk=None):
        return self._transition(request, pk, services.packet_decide, s.DecideSerializer)

    @extend_schema(
        request=None,
        responses={
            200: s.PacketMoveSerializer,
            409: conflict_response("Only a draft moves to a newer ladder version."),
        },
    )
    @action(detail=True, methods=["post"], url_path="move-to-latest")
    def move_to_latest(self, request, pk=None):
        packet = self.get_object()
        moved = services.packet_move_to_latest(packet_id=packet.pk, actor=request.user)
        return Response(
            {
                "packet": self._packet_body(packet.pk),
                "from_version": moved.from_version,
                "to_version": moved.to_version,
                "carried": moved.carried,
                "reworded": moved.reworded,
                "dropped": moved.dropped,
                "narratives_dropped": moved.narratives_dropped,
                "gaps": moved.gaps,
            }
        )

    @_transition_schema(s.TransitionSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        return self._transition(request, pk, services.packet_withdraw, s.TransitionSerializer)

    @_plain_list_schema(s.AssessmentSerializer)
    @action(detail=True, methods=["get"], pagination_class=None)
    def assessments(self, request, pk=None):
        packet = self.get_object()
        rows = packet.assessments.select_related("expectation", "reviewer").order_by(
            "expectation__position", "reviewer__name"
        )
        return Response(s.AssessmentSerializer(rows, many=True).data)

    @_plain_list_schema(s.EventSerializer)
    @action(detail=True, methods=["get"], pagination_class=None)
    def events(self, request, pk=None):
        packet = self.get_object()
        return Response(s.EventSerializer(packet.events.select_related("actor"), many=True).data)

    @_plain_list_schema(s.SnapshotSerializer)
    @action(detail=True, methods=["get"], pagination_class=None)
    def snapshots(self, request, pk=None):
        packet = self.get_object()
        return Response(s.SnapshotSerializer(packet.snapshots.order_by("number"), many=True).data)

    @extend_schema(responses=s.SnapshotDetailSerializer)
    @action(detail=True, methods=["get"], url_path=r"snapshots/(?P<number>\d+)")
    def snapshot(self, request, pk=None, number=None):
        packet = self.get_object()
        snap = get_object_or_404(packet.snapshots, number=number)
        return Response(
            {
                "number": snap.number,
                "sha256": snap.sha256,
                "created_at": snap.created_at,
                "data": selectors.packet_data_for_reader(
                    viewer=request.user, packet=packet, data=snap.data
                ),
            }
        )

    @extend_schema(
        parameters=[
            s.DiffQuerySerializer,  # from, to: integers >= 1
        ],
        responses=s.SnapshotDiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request, pk=None):
        packet = self.get_object()
        query = s.DiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        before = get_object_or_404(packet.snapshots, number=query.validated_data["from"])
        after = get_object_or_404(packet.snapshots, number=query.validated_data["to"])
        before, after = (
            selectors.packet_data_for_reader(viewer=request.user, packet=packet, data=snap.data)
            for snap in (before, after)
        )
        return Response(selectors.snapshot_diff(before=before, after=after))

    @extend_schema(
        request=None,
        responses={
            200: s.PacketVerificationSerializer,
            409: conflict_response(
                "An item's ServiceNow connection is gone or its source disabled: nothing was "
                "sent or stored (error.detail.items names them)."
            ),
            502: OpenApiResponse(
                ErrorSerializer, description="ServiceNow did not answer; nothing was stored."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """Re-read from ServiceNow the record behind each imported item and compare it with
        the copy the latest snapshot froze: match, changed (with the field diff) or deleted
        per item. Anyone who may see the packet may verify it; items withheld from them are
        skipped."""
        return Response(services.packet_verify(packet=self.get_object(), actor=request.user))

    @extend_schema(
        parameters=[s.ExportQuerySerializer],
        responses={
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT, description="The packet's data (?format=json, the default)"
            ),
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="?format=pdf"
            ),
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="?format=md"),
        },
    )
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        packet = self.get_object()
        query = s.ExportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data, sha, label = packet_export_data(
            packet, query.validated_data.get("snapshot"), viewer=request.user
        )
        return export_response(data, sha, label, query.validated_data["format"])


class MyLadderChangesView(APIView):
    """`GET /api/v1/people/me/ladder-changes/`: what newer ladder versions changed for your
    next (and current) level, and which of your evidence and packets each change touches."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: s.LadderChangesSerializer, 404: ErrorSerializer})
    def get(self, request):
        person = person_for_user(user=request.user)
        if person is None:
            raise NotFoundError("You have no person profile; ask an admin to create one.")
        return Response(selectors.ladder_changes_for_person(person=person).as_dict())
