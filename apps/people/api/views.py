from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from apps.people.selectors import person_for_user, person_list

from .serializers import PersonSerializer


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    """People you may see: yourself, your reports at any depth; admins see everyone."""

    serializer_class = PersonSerializer

    def get_queryset(self):
        return person_list(viewer=self.request.user)

    @extend_schema(responses=PersonSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        person = person_for_user(user=request.user)
        if person is None:
            raise NotFound("You have no person profile; ask an admin to create one.")
        return Response(PersonSerializer(person).data)
