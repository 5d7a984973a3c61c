from rest_framework.routers import DefaultRouter

from .views import EvidenceViewSet

router = DefaultRouter(trailing_slash=True)
router.register("evidence", EvidenceViewSet, basename="evidence")
urlpatterns = router.urls
