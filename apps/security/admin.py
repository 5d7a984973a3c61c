"""Admin: tokens show name, prefix, expiry and last use (never the secret or its hash);
the audit trail is read-only."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
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


# --- roles granted in the admin ------------------------------------------------------------

User = get_user_model()
# the user fields that make someone an admin or let them in at all
AUDITED_USER_FIELDS = ("is_staff", "is_superuser", "is_active")


class AuditedUserAdmin(UserAdmin):
    """Django's user admin, recording admin-role changes in the audit trail."""

    def save_model(self, request, obj, form, change):
        before = (
            User.objects.filter(pk=obj.pk).values(*AUDITED_USER_FIELDS).first() if change else None
        )
        super().save_model(request, obj, form, change)
        if before is None:
            return
        changed = {
            name: {"from": before[name], "to": getattr(obj, name)}
            for name in AUDITED_USER_FIELDS
            if before[name] != getattr(obj, name)
        }
        if changed:
            services.security_event_record(
                kind=SecurityEvent.Kind.ROLE_CHANGED,
                actor=request.user,
                target=f"user {obj.pk} {obj.get_username()}",
                detail=changed,
            )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
