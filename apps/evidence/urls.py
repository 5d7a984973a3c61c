from django.urls import path

from . import corroboration_views, views

app_name = "evidence"
urlpatterns = [
    path("", views.evidence_list_page, name="list"),
    path("new/", views.evidence_create_page, name="create"),
    path("inbox/", views.inbox_page, name="inbox"),
    path("inbox/bulk/", views.inbox_bulk, name="inbox-bulk"),
    path("trash/", views.trash_page, name="trash"),
    path("brag.md", views.brag_download, name="brag"),
    path("<int:pk>/", views.evidence_detail_page, name="detail"),
    path(
        "<int:pk>/corroborators/",
        corroboration_views.corroborators_panel,
        name="corroborators",
    ),
    path("<int:pk>/corroborations/", corroboration_views.corroboration_ask, name="corroborate"),
    path("<int:pk>/edit/", views.evidence_edit_page, name="edit"),
    path("<int:pk>/delete/", views.evidence_delete_view, name="delete"),
    path("<int:pk>/restore/", views.evidence_restore_view, name="restore"),
    path("<int:pk>/accept/", views.evidence_accept_view, name="accept"),
    path("<int:pk>/dismiss/", views.evidence_dismiss_view, name="dismiss"),
    path("<int:pk>/verify/", views.evidence_verify_view, name="verify"),
    path("<int:pk>/confirm-link/", views.evidence_link_confirm_view, name="link-confirm"),
    path(
        "<int:pk>/attachments/<int:attachment_id>/",
        views.attachment_download,
        name="attachment",
    ),
    path(
        "<int:pk>/attachments/<int:attachment_id>/remove/",
        views.attachment_remove,
        name="attachment-remove",
    ),
]
