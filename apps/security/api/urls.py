from rest_framework.routers import DefaultRouter

from .views import ApiTokenViewSet, SecurityEventViewSet

router = DefaultRouter(trailing_slash=True)
router.register("tokens", ApiTokenViewSet, basename="api-token")
router.register("security-events", SecurityEventViewSet, basename="security-event")
urlpatterns = router.urls
