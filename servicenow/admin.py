"""Django admin for ServiceNow: secrets are write-only fields; test and sync actions."""

from django import forms
from django.contrib import admin, messages

from . import services
from .api.serializers import FIELD_NAME, TABLE_NAME
from .models import Connection, Source, SuggestionRule, SyncRun, WorkItem


class ConnectionForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored one.",
    )
    client_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Write-only. Leave empty to keep the stored one.",
    )

    class Meta:
        model = Connection
        fields = [
            "name", "instance_url", "auth_type", "username", "password", "client_id",
            "client_secret", "verify_tls", "page_size", "api_path",
        ]  # fmt: skip

    def clean_instance_url(self):
        url = self.cleaned_data["instance_url"]
        services.connection_url_validate(url)
        return url


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ("name", "instance_url", "auth_type", "last_check_ok", "last_checked_at")
    readonly_fields = ("has_password", "has_client_secret", "last_checked_at", "last_check_ok",
                       "last_check_message")  # fmt: skip
    actions = ["test_connection"]

    def save_model(self, request, obj, form, change):
        services.connection_save(
            connection=obj,
            password=form.cleaned_data.get("password") or None,
            client_secret=form.cleaned_data.get("client_secret") or None,
        )

    @admin.action(description="Test connection (reachability and auth)")
    def test_connection(self, request, queryset):
        for connection in queryset:
            result = services.connection_check(connection=connection)
            level = messages.SUCCESS if result["ok"] else messages.ERROR
            self.message_user(request, f"{connection}: {result['message']}", level)


class SourceForm(forms.ModelForm):
    """The API's rules (servicenow.api.serializers), so the admin cannot store what a sync
    would choke on; an emptied JSON box means an empty list, not NULL."""

    class Meta:
        model = Source
        fields = [
            "connection", "name", "table", "kind", "query", "fields", "attribution_fields",
            "enabled", "interval_minutes", "overlap_seconds", "track_deletes",
        ]  # fmt: skip

    def clean_table(self):
        table = self.cleaned_data["table"]
        if not TABLE_NAME.match(table):
            raise forms.ValidationError("Not a ServiceNow table name.")
        return table

    def _field_names(self, name: str) -> list[str]:
        value = self.cleaned_data.get(name)
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise forms.ValidationError('A list of field names, e.g. ["assigned_to"].')
        bad = [v for v in value if not FIELD_NAME.match(v)]
        if bad:
            raise forms.ValidationError(f"Not a ServiceNow field name: {', '.join(bad)}")
        return value

    def clean_fields(self):
        return self._field_names("fields")

    def clean_attribution_fields(self):
        return self._field_names("attribution_fields")

    def clean_interval_minutes(self):
        value = self.cleaned_data.get("interval_minutes")
        if value is not None and not 1 <= value <= 10080:
            raise forms.ValidationError("Between 1 minute and one week.")
        return value

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") == Source.Kind.USERS and cleaned.get("table") != "sys_user":
            self.add_error("table", "A users source reads sys_user.")
        return cleaned


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ("name", "connection", "table", "kind", "enabled", "interval_minutes")
    list_filter = ("connection", "kind", "enabled")
    actions = ["sync_incremental", "sync_full", "sync_reconcile"]

    def save_model(self, request, obj, form, change):
        services.source_save(source=obj)

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


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnly):
    list_display = ("id", "source", "mode", "status", "rows_seen", "created", "updated",
                    "deleted", "created_at", "finished_at")  # fmt: skip
    list_filter = ("status", "mode", "source")


@admin.register(WorkItem)
class WorkItemAdmin(_ReadOnly):
    list_display = ("number", "table", "short_description", "person", "state",
                    "sys_updated_on", "deleted_at")  # fmt: skip
    list_filter = ("table", "source", ("deleted_at", admin.EmptyFieldListFilter))
    search_fields = ("number", "sys_id", "short_description")
    list_select_related = ("person",)


@admin.register(SuggestionRule)
class SuggestionRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "table", "expectation_codes", "skills", "enabled", "position")
    list_editable = ("enabled", "position")
