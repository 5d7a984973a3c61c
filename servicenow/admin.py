"""Django admin for ServiceNow: the setup forms (servicenow/forms.py: secrets write-only,
credentials that follow the auth type), test and sync actions, read-only runs."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .forms import ConnectionForm, SourceForm
from .models import (
    Connection,
    Source,
    SuggestionRule,
    SyncRun,
    SyncRunHttpCount,
    SyncWindow,
    WorkItem,
)


@admin.register(Connection)
class ConnectionAdmin(SimpleHistoryAdmin):  # "History": who changed what
    history_list_display = ["secrets_changed"]  # "password: changed", never a value
    form = ConnectionForm
    list_display = ("name", "instance_url", "auth_type", "last_check_ok", "last_checked_at")
    readonly_fields = (
        "has_password",
        "has_client_secret",
        "last_checked_at",
        "last_check_ok",
        "last_check_message",
    )
    actions = ["test_connection"]
    # The change page's "Test connection" button (object tools) posts to test_view.
    change_form_template = "admin/servicenow/connection/change_form.html"

    def save_model(self, request, obj, form, change):
        services.connection_save(connection=obj, actor=request.user, **form.secret_changes())

    def get_urls(self):
        test = self.admin_site.admin_view(self.test_view)
        return [
            path("<int:pk>/test/", test, name="servicenow_connection_test"),
            *super().get_urls(),
        ]

    def _report_check(self, request, connection) -> None:
        result = services.connection_check(connection=connection)
        if result["ok"]:
            self.message_user(request, f"{connection}: {result['message']}", messages.SUCCESS)
        else:
            self.message_user(
                request, f"{connection}: {result['problem']}. {result['message']}", messages.ERROR
            )

    def test_view(self, request, pk: int):
        """The change page's Test button: the saved connection's check, as a message."""
        connection = get_object_or_404(Connection, pk=pk)
        if not self.has_change_permission(request, connection):
            raise PermissionDenied
        if request.method == "POST":
            self._report_check(request, connection)
        return redirect(reverse("admin:servicenow_connection_change", args=[pk]))

    @admin.action(description="Test connection (reachability and auth)")
    def test_connection(self, request, queryset):
        for connection in queryset:
            self._report_check(request, connection)


@admin.register(Source)
class SourceAdmin(SimpleHistoryAdmin):  # "History": who changed what
    form = SourceForm
    list_display = (
        "name",
        "connection",
        "table",
        "kind",
        "enabled",
        "interval_minutes",
        "failure_alerted_at",
    )
    list_filter = ("connection", "kind", "enabled")
    readonly_fields = ("failure_alerted_at",)  # set and cleared by the sync (sync/health.py)
    actions = ["sync_incremental", "sync_full", "sync_reconcile"]

    def save_model(self, request, obj, form, change):
        services.source_save(source=obj, actor=request.user)

    def delete_model(self, request, obj):
        services.source_delete(source=obj)

    def delete_queryset(self, request, queryset):
        for source in queryset:
            services.source_delete(source=source)

    def _sync(self, request, queryset, mode):
        for source in queryset:
            try:
                run = services.sync_run_request(source=source, mode=mode, requested_by=request.user)
                self.message_user(request, f"{source}: run {run.pk} queued ({mode}).")
            except (services.RunAlreadyActive, services.SourceDisabled) as exc:
                self.message_user(request, f"{source}: {exc}", messages.WARNING)

    @admin.action(description="Sync now (incremental)")
    def sync_incremental(self, request, queryset):
        self._sync(request, queryset, "incremental")

    @admin.action(description="Sync now (full)")
    def sync_full(self, request, queryset):
        self._sync(request, queryset, "full")

    @admin.action(description="Reconcile deletes")
    def sync_reconcile(self, request, queryset):
        self._sync(request, queryset, "reconcile")


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SyncRunHttpCountInline(admin.TabularInline):
    model = SyncRunHttpCount
    fields = ("status", "requests", "retries")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class SyncWindowInline(admin.TabularInline):
    """A backfill's windows (sync/backfill.py), read-only like the run."""

    model = SyncWindow
    fields = (
        "index",
        "created_from",
        "created_to",
        "status",
        "attempts",
        "pages",
        "rows_seen",
        "created",
        "updated",
        "heartbeat_at",
        "error",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnly):
    inlines = [SyncRunHttpCountInline, SyncWindowInline]
    list_display = (
        "id",
        "source",
        "mode",
        "status",
        "rows_seen",
        "created",
        "updated",
        "deleted",
        "attempts",
        "created_at",
        "heartbeat_at",
        "finished_at",
    )
    list_filter = ("status", "mode", "source")


@admin.register(WorkItem)
class WorkItemAdmin(_ReadOnly):
    list_display = (
        "number",
        "table",
        "short_description",
        "person",
        "state",
        "sys_updated_on",
        "deleted_at",
    )
    list_filter = ("table", "source", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("number", "sys_id", "short_description")
    list_select_related = ("person",)


@admin.register(SuggestionRule)
class SuggestionRuleAdmin(SimpleHistoryAdmin):  # "History": who changed what
    list_display = ("name", "table", "expectation_codes", "skills", "enabled", "position")
    list_editable = ("enabled", "position")
