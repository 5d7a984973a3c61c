from django.urls import path

from . import views

app_name = "packets"
urlpatterns = [
    path("", views.packet_list_page, name="list"),
    path("new/", views.packet_create_view, name="create"),
    path("reviews/", views.review_queue_page, name="reviews"),
    path("committee/", views.committee_page, name="committee"),
    path("cycles/", views.cycle_list_page, name="cycles"),
    path("cycles/new/", views.cycle_edit_page, name="cycle-create"),
    path("cycles/<int:pk>/edit/", views.cycle_edit_page, name="cycle-edit"),
    path("cycles/<int:pk>/report/", views.cycle_report_page, name="cycle-report"),
    path("cycles/<int:pk>/analytics/", views.cycle_analytics_page, name="cycle-analytics"),
    path("<int:pk>/", views.packet_page, name="detail"),
    path("<int:pk>/save/", views.packet_save_view, name="save"),
    path("<int:pk>/submit/", views.packet_submit_view, name="submit"),
    path("<int:pk>/withdraw/", views.packet_withdraw_view, name="withdraw"),
    path("<int:pk>/move-to-latest/", views.packet_move_view, name="move-to-latest"),
    path("<int:pk>/export/", views.packet_export_view, name="export"),
    path("<int:pk>/diff/", views.packet_diff_page, name="diff"),
    path("<int:pk>/verify/", views.packet_verify_view, name="verify"),
    path("<int:pk>/review/", views.packet_review_page, name="review"),
    path("<int:pk>/decide/", views.packet_decide_page, name="decide"),
]
