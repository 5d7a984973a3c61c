from django.urls import path

from . import views

app_name = "ladders"
urlpatterns = [
    path("", views.ladder_list_page, name="list"),
    path("<slug:slug>/", views.ladder_page, name="detail"),
    path("<slug:slug>/diff/", views.ladder_diff_page, name="diff"),
]
