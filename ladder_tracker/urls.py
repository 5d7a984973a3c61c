from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from mozilla_django_oidc.views import OIDCLogoutView

from apps.evidence import views as evidence_views
from apps.ladders import views as ladder_views
from apps.notifications.api.views import MyNotificationsView
from apps.packets import views as packet_views
from apps.packets.api.views import MyLadderChangesView
from apps.people import views as people_views
from apps.team import views as team_views
from apps.team.api import TeamView

from . import errors, health, metrics

api_v1 = [
    path("", include("apps.ladders.api.urls")),
    path("people/me/notifications/", MyNotificationsView.as_view(), name="my-notifications"),
    path("people/me/ladder-changes/", MyLadderChangesView.as_view(), name="my-ladder-changes"),
    path("", include("apps.people.api.urls")),
    path("", include("servicenow.api.urls")),
    path("", include("apps.evidence.api.urls")),
    path("", include("apps.packets.api.urls")),
    path("team/", TeamView.as_view(), name="team-api"),
    path("", include("apps.security.api.urls")),  # tokens/, security-events/, audit/
]

urlpatterns = [
    path("", ladder_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("login/", people_views.SignInView.as_view(), name="login"),
    # Signs out here, and at the identity provider too for an SSO session (apps/people/sso.py)
    path("logout/", OIDCLogoutView.as_view(), name="logout"),
    path("oidc/", include("mozilla_django_oidc.urls")),  # SSO: authenticate/, callback/
    path("ladders/", include("apps.ladders.urls")),
    path("evidence/", include("apps.evidence.urls")),
    path("packets/", include("apps.packets.urls")),
    path("ladder-changes/", packet_views.ladder_changes_page, name="ladder-changes"),
    path("corroborations/", include("apps.evidence.corroboration_urls")),
    path("team/", team_views.team_page, name="team"),
    path("team/evidence/", evidence_views.team_page, name="team-evidence"),
    path("team/<int:person_id>/", team_views.team_person_page, name="team-person"),
    path("", include("apps.people.urls")),  # /people/import/
    path("servicenow/", include("servicenow.urls")),
    path("account/", include("apps.security.urls")),  # /account/tokens/
    path("settings/", include("apps.notifications.urls")),  # /settings/notifications/
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
