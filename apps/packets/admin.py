from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    Assessment,
    Decision,
    Packet,
    PacketEvent,
    PacketItem,
    PacketSnapshot,
    PromotionCycle,
)


@admin.register(PromotionCycle)
class PromotionCycleAdmin(SimpleHistoryAdmin):  # "History": who changed what
    list_display = ("name", "opens_on", "submission_deadline", "decision_on", "min_coverage")


class PacketItemInline(admin.TabularInline):
    model = PacketItem
    extra = 0
    raw_id_fields = ("expectation", "evidence")


class PacketEventInline(admin.TabularInline):
    model = PacketEvent
    extra = 0
    readonly_fields = ("action", "actor", "from_state", "to_state", "comment", "at")
    can_delete = False


@admin.register(Packet)
class PacketAdmin(admin.ModelAdmin):
    """Read-mostly: states move only through the app's rules (services), never here."""

    list_display = ("person", "cycle", "target_level", "state", "updated_at")
    list_filter = ("cycle", "state", "target_level")
    search_fields = ("person__name",)
    readonly_fields = (
        "state",
        "person",
        "cycle",
        "ladder_version",
        "from_level",
        "target_level",
        "submitted_at",
    )
    inlines = [PacketItemInline, PacketEventInline]


@admin.register(PacketSnapshot)
class PacketSnapshotAdmin(admin.ModelAdmin):
    list_display = ("packet", "number", "sha256", "created_at")

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(Assessment)
admin.site.register(Decision)
