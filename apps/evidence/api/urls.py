from rest_framework.routers import DefaultRouter

from .corroborations import CorroborationViewSet
from .views import EvidenceViewSet

router = DefaultRouter(trailing_slash=True)
router.register("evidence", EvidenceViewSet, basename="evidence")
router.register("corroborations", CorroborationViewSet, basename="corroboration")
urlpatterns = router.urls
