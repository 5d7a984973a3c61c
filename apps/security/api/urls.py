from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import ApiTokenViewSet, HistoryChangeListView, SecurityEventViewSet

router = DefaultRouter(trailing_slash=True)
router.register("tokens", ApiTokenViewSet, basename="api-token")
router.register("security-events", SecurityEventViewSet, basename="security-event")
urlpatterns = [
    path("audit/", HistoryChangeListView.as_view(), name="audit-history"),
    *router.urls,
]
