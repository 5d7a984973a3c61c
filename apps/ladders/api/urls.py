from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import ExpectationUpdateApi, LadderViewSet

router = DefaultRouter(trailing_slash=True)
router.register("ladders", LadderViewSet, basename="ladder")
urlpatterns = [
    path(
        "ladders/<slug:slug>/versions/<int:number>/expectations/<str:code>/",
        ExpectationUpdateApi.as_view(),
        name="ladder-expectation-update",
    ),
    *router.urls,
]
