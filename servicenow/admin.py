"""Django admin for ServiceNow: secrets are write-only fields; test and sync actions."""

from django import forms
from django.contrib import admin, messages
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .api.serializers import FIELD_NAME, TABLE_NAME
from .models import Connection, Source, SuggestionRule, SyncRun, SyncRunHttpCount, WorkItem

# form field -> (Connection property saying one is stored, what to call it in messages)
SECRET_FIELDS = {
    "password": ("has_password", "password"),
    "client_secret": ("has_client_secret", "client secret"),
}


def _secret_field() -> forms.CharField:
    return forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )


class ConnectionForm(forms.ModelForm):
    """Secrets are write-only: empty keeps the stored one, a value replaces it, and the
    "clear stored" box removes it (through connection_save, as the API's "" does). The form
    says whether one is stored, never what it is."""

    password = _secret_field()
    clear_password = forms.BooleanField(required=False, label="Clear stored password")
    client_secret = _secret_field()
    clear_client_secret = forms.BooleanField(required=False, label="Clear stored client secret")

    class Meta:
        model = Connection
        fields = [
            "name",
            "instance_url",
            "auth_type",
            "username",
            "password",
            "clear_password",
            "client_id",
            "client_secret",
            "clear_client_secret",
            "verify_tls",
            "ca_certificate",
            "proxy_url",
            "page_size",
            "api_path",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, (has_stored, label) in SECRET_FIELDS.items():
            stored = self.instance.pk is not None and getattr(self.instance, has_stored)
            clear = self.fields[f"clear_{name}"]
            if stored:
                self.fields[name].help_text = (
                    f"A {label} is stored (write-only, never shown). Leave empty to keep it, "
                    f"type a new one to replace it."
                )
                clear.help_text = f"Remove the stored {label}."
            else:
                self.fields[name].help_text = f"No {label} stored. Write-only."
                # Nothing to clear: a disabled box keeps its initial False whatever is posted.
                clear.disabled = True
                clear.help_text = f"No {label} stored."

    def clean_instance_url(self):
        url = self.cleaned_data["instance_url"]
        services.connection_url_validate(url)
        return url

    def clean_proxy_url(self):
        url = self.cleaned_data["proxy_url"].strip().rstrip("/")
        services.connection_proxy_url_validate(url)
        return url

    def clean_ca_certificate(self):
        pem = self.cleaned_data["ca_certificate"].strip()
        services.connection_ca_certificate_validate(pem)
        return pem

    def clean(self):
        cleaned = super().clean()
        for name, (_, label) in SECRET_FIELDS.items():
            if cleaned.get(name) and cleaned.get(f"clear_{name}"):
                self.add_error(
                    f"clear_{name}",
                    f"Either type a new {label} or tick “Clear stored {label}”, not both.",
                )
        return cleaned

    def secret_changes(self) -> dict[str, str | None]:
        """connection_save's arguments: None keeps the stored secret, "" clears it."""
        changes = {}
        for name in SECRET_FIELDS:
            if self.cleaned_data.get(f"clear_{name}"):
                changes[name] = ""
            else:
                changes[name] = self.cleaned_data.get(name) or None
        return changes


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

    def save_model(self, request, obj, form, change):
        services.connection_save(connection=obj, actor=request.user, **form.secret_changes())

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
            "connection",
            "name",
            "table",
            "kind",
            "query",
            "fields",
            "attribution_fields",
            "enabled",
            "interval_minutes",
            "overlap_seconds",
            "track_deletes",
        ]

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


@admin.register(SyncRun)
class SyncRunAdmin(_ReadOnly):
    inlines = [SyncRunHttpCountInline]
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
