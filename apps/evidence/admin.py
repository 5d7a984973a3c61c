from django.contrib import admin

from .models import Corroboration, Evidence, EvidenceLink


class EvidenceLinkInline(admin.TabularInline):
    model = EvidenceLink
    extra = 0
    raw_id_fields = ("expectation", "deliverable")


@admin.register(Evidence)
class EvidenceAdmin(admin.ModelAdmin):
    list_display = ("title", "person", "source", "status", "visibility", "occurred_on")
    list_filter = ("source", "status", "visibility")
    search_fields = ("title", "person__name", "work_item__number")
    list_select_related = ("person",)
    raw_id_fields = ("person", "work_item")
    readonly_fields = ("snapshot", "snapshot_updated_at", "created_at", "updated_at")
    inlines = [EvidenceLinkInline]


@admin.register(Corroboration)
class CorroborationAdmin(admin.ModelAdmin):
    list_display = ("evidence", "person", "asked_by", "state", "created_at", "answered_at")
    list_filter = ("state",)
    search_fields = ("evidence__title", "person__name", "asked_by__name")
    list_select_related = ("evidence", "person", "asked_by")
    raw_id_fields = ("evidence", "person", "asked_by")
    readonly_fields = ("created_at", "answered_at")
