from django.contrib import admin

from .models import NotificationPreference, NotificationSent


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("person", *NotificationPreference.FIELDS, "updated_at")
    list_filter = NotificationPreference.FIELDS
    search_fields = ("person__name", "person__email")
    raw_id_fields = ("person",)


@admin.register(NotificationSent)
class NotificationSentAdmin(admin.ModelAdmin):
    """What beat already mailed (a row deleted here is sent again at the next beat)."""

    list_display = ("sent_at", "kind", "person", "key")
    list_filter = ("kind",)
    search_fields = ("person__name", "person__email", "key")
    raw_id_fields = ("person",)
    readonly_fields = ("sent_at",)
