from django.urls import path

from . import views

app_name = "security"
urlpatterns = [
    path("tokens/", views.token_page, name="tokens"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke_page, name="token-revoke"),
    path("history/", views.history_page, name="history"),  # admins
]
