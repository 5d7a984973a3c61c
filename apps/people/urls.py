from django.urls import path

from . import views

app_name = "people"
urlpatterns = [
    path("people/import/", views.people_import_page, name="import"),
]
