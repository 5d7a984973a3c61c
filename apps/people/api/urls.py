from rest_framework.routers import DefaultRouter

from .views import PersonViewSet

router = DefaultRouter(trailing_slash=True)
router.register("people", PersonViewSet, basename="person")
urlpatterns = router.urls
