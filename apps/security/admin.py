"""Admin: tokens show name, prefix, expiry and last use (never the secret or its hash);
the audit trail is read-only."""

from django.contrib import admin, messages
from django.utils import timezone

from . import services
from .models import ApiToken, SecurityEvent


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "state")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    fields = ("user", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "expired" if token.is_expired() else "active"

    def has_add_permission(self, request):
        return False  # the secret must be shown to its owner: tokens are made on their page

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row stays for the audit trail

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = 0
        for token in queryset.filter(revoked_at__isnull=True).select_related("user"):
            services.token_revoke(actor=request.user, token=token)
            count += 1
        messages.success(request, f"Revoked {count} token(s) at {timezone.now():%H:%M} UTC.")


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    list_display = ("at", "kind", "username", "actor", "ip_address", "target")
    list_filter = ("kind",)
    search_fields = ("username", "target", "ip_address")
    date_hierarchy = "at"
    list_select_related = ("actor",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
