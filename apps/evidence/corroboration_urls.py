from django.urls import path

from . import corroboration_views as views

app_name = "corroborations"
urlpatterns = [
    path("", views.corroboration_list_page, name="list"),
    path("<int:pk>/", views.corroboration_detail_page, name="detail"),
]
