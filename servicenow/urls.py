from django.urls import path

from . import setup_views, views

app_name = "servicenow"
urlpatterns = [
    path("", views.sync_page, name="sync"),
    path("runs/", views.runs_partial, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run-progress"),
    path("connections/<int:pk>/test/", views.connection_test, name="connection-test"),
    path("sources/<int:pk>/sync/", views.source_sync, name="source-sync"),
    # setup (setup_views.py)
    path("setup/", setup_views.setup_page, name="setup"),
    path("setup/connections/new/", setup_views.connection_create, name="connection-create"),
    path("setup/connections/try/", setup_views.connection_try, name="connection-try-new"),
    path("setup/connections/<int:pk>/", setup_views.connection_edit, name="connection-edit"),
    path("setup/connections/<int:pk>/try/", setup_views.connection_try, name="connection-try"),
    path("setup/sources/new/", setup_views.source_create, name="source-create"),
    path("setup/sources/<int:pk>/", setup_views.source_edit, name="source-edit"),
    path("setup/sources/<int:pk>/runs/", setup_views.source_runs, name="source-runs"),
]
