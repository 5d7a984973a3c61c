from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.evidence import views as evidence_views
from apps.ladders import views as ladder_views

from . import errors, health

api_v1 = [
    path("", include("apps.ladders.api.urls")),
    path("", include("apps.people.api.urls")),
    path("", include("servicenow.api.urls")),
    path("", include("apps.evidence.api.urls")),
    path("", include("apps.packets.api.urls")),
]

urlpatterns = [
    path("", ladder_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("ladders/", include("apps.ladders.urls")),
    path("evidence/", include("apps.evidence.urls")),
    path("packets/", include("apps.packets.urls")),
    path("team/", evidence_views.team_page, name="team"),
    path("", include("apps.people.urls")),  # /people/import/
    path("servicenow/", include("servicenow.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # the split view serves its init script as a file (no inline <script>: the CSP)
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api_docs.html"),
        name="api-docs",
    ),
]

handler400 = errors.bad_request
handler403 = errors.permission_denied
handler404 = errors.not_found
handler500 = errors.server_error
