from django.urls import path

from . import views

app_name = "people"
urlpatterns = [
    path("team/", views.team_page, name="team"),
    path("people/import/", views.people_import_page, name="import"),
]
