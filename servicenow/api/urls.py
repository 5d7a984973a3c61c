from rest_framework.routers import DefaultRouter

from .views import (
    ConnectionViewSet,
    SourceViewSet,
    SuggestionRuleViewSet,
    SyncRunViewSet,
    WorkItemViewSet,
)

router = DefaultRouter(trailing_slash=True)
router.register("servicenow/connections", ConnectionViewSet, basename="sn-connection")
router.register("servicenow/sources", SourceViewSet, basename="sn-source")
router.register("servicenow/runs", SyncRunViewSet, basename="sn-run")
router.register("servicenow/work-items", WorkItemViewSet, basename="sn-work-item")
router.register("servicenow/rules", SuggestionRuleViewSet, basename="sn-rule")
urlpatterns = router.urls
