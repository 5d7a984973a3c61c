from django.urls import path

from . import views

app_name = "servicenow"
urlpatterns = [
    path("", views.sync_page, name="sync"),
    path("runs/", views.runs_partial, name="runs"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/progress/", views.run_progress, name="run-progress"),
    path("connections/<int:pk>/test/", views.connection_test, name="connection-test"),
    path("sources/<int:pk>/sync/", views.source_sync, name="source-sync"),
]
