from rest_framework.routers import DefaultRouter

from .views import CycleViewSet, PacketViewSet

router = DefaultRouter(trailing_slash=True)
router.register("cycles", CycleViewSet, basename="cycle")
router.register("packets", PacketViewSet, basename="packet")
urlpatterns = router.urls
