from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from servicenow import selectors, services
from servicenow.models import (
    Connection,
    Source,
    SuggestionRule,
    SyncRun,
    SyncWindow,
    WorkItem,
)

FIELD_NAME = services.FIELD_NAME
TABLE_NAME = services.TABLE_NAME


def _field_names(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise serializers.ValidationError(f"{what} must be a list of field names.")
    if problem := services.source_field_names_problem(value):
        raise serializers.ValidationError(problem)
    return value


class ConnectionSerializer(serializers.ModelSerializer):
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
    )
    client_secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        style={"input_type": "password"},
    )

    class Meta:
        model = Connection
        fields = [
            "id",
            "name",
            "instance_url",
            "auth_type",
            "username",
            "password",
            "client_id",
            "client_secret",
            "has_password",
            "has_client_secret",
            "verify_tls",
            "ca_certificate",
            "proxy_url",
            "page_size",
            "api_path",
            "backfill_workers",
            "last_checked_at",
            "last_check_ok",
            "last_check_message",
        ]
        read_only_fields = [
            "has_password",
            "has_client_secret",
            "last_checked_at",
            "last_check_ok",
            "last_check_message",
        ]

    def validate_instance_url(self, value: str) -> str:
        services.connection_url_validate(value)
        return value

    def validate_proxy_url(self, value: str) -> str:
        value = value.strip().rstrip("/")
        services.connection_proxy_url_validate(value)
        return value

    def validate_ca_certificate(self, value: str) -> str:
        value = value.strip()
        services.connection_ca_certificate_validate(value)
        return value

    def validate_page_size(self, value: int) -> int:
        services.connection_page_size_validate(value)
        return value

    def validate_api_path(self, value: str) -> str:
        services.connection_api_path_validate(value)
        return value

    def validate_backfill_workers(self, value: int | None) -> int | None:
        services.connection_backfill_workers_validate(value)
        return value

    def validate(self, attrs):
        def current(name):
            return attrs.get(name, getattr(self.instance, name, ""))

        problems = services.connection_auth_problems(
            auth_type=current("auth_type") or Connection.AuthType.BASIC,
            username=current("username"),
            client_id=current("client_id"),
        )
        if problems:  # one at a time, as before: client id first
            field = next(iter(problems))
            raise serializers.ValidationError({field: problems[field]})
        return attrs


class RecentRunSerializer(serializers.ModelSerializer):
    """A run as a source's health shows it."""

    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "mode",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "rows_seen",
            "created",
            "updated",
            "deleted",
            "requests",
            "error",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, run) -> float | None:
        return selectors.run_duration_seconds(run)


class SourceSerializer(serializers.ModelSerializer):
    """A source and, read-only, its health (selectors.source_list computes it)."""

    last_run = serializers.SerializerMethodField()
    last_success_at = serializers.DateTimeField(read_only=True, allow_null=True)
    cursor_at = serializers.SerializerMethodField(
        help_text="How far the source has been read: the later of its cursor and the upper "
        "bound of its last succeeded run."
    )
    lag_seconds = serializers.SerializerMethodField(help_text="now − cursor_at, in seconds.")
    last_error = serializers.CharField(
        read_only=True, allow_null=True, help_text="The newest failed run's error."
    )
    last_error_at = serializers.DateTimeField(read_only=True, allow_null=True)
    consecutive_failures = serializers.IntegerField(
        read_only=True, help_text="Failed runs since the last success."
    )
    failure_alerted_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the admins were mailed that this source keeps failing; null again "
        "once it recovered.",
    )
    recent_runs = RecentRunSerializer(many=True, read_only=True)

    class Meta:
        model = Source
        fields = [
            "id",
            *Source.SETTINGS,
            "last_run",
            "last_success_at",
            "cursor_at",
            "lag_seconds",
            "last_error",
            "last_error_at",
            "consecutive_failures",
            "failure_alerted_at",
            "recent_runs",
        ]

    def get_cursor_at(self, source) -> datetime | None:
        return selectors.source_cursor_at(source)

    def get_lag_seconds(self, source) -> float | None:
        return selectors.source_lag_seconds(source)

    def get_last_run(self, source) -> int | None:
        if hasattr(source, "last_run_id"):  # annotated by selectors.source_list
            return source.last_run_id
        return source.runs.order_by("-created_at", "-id").values_list("pk", flat=True).first()

    def validate_fields(self, value):
        return _field_names(value, "fields")

    def validate_attribution_fields(self, value):
        return _field_names(value, "attribution_fields")

    def validate_query(self, value: str) -> str:
        return value.strip()

    def validate(self, attrs):
        """The rules the admin and the setup page apply too (services.source_problems),
        on the source as it would be saved."""

        def current(name, default):
            return attrs.get(name, getattr(self.instance, name, default))

        trial = Source(
            table=current("table", ""),
            kind=current("kind", Source.Kind.WORK_ITEMS),
            query=current("query", ""),
            fields=current("fields", []),
            attribution_fields=current("attribution_fields", []),
            interval_minutes=current("interval_minutes", None),
        )
        if problems := services.source_problems(source=trial):
            raise serializers.ValidationError(problems)
        return attrs


class SyncRequestSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=SyncRun.Mode.choices, default=SyncRun.Mode.INCREMENTAL)
    windows = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=1000,
        help_text="A full run of a work-items source only: 1 keeps it one stream, more splits "
        "it into about that many sys_created_on windows run in parallel (a backfill). "
        "Empty: the run decides by the table's size.",
    )
    workers = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=services.BACKFILL_WORKERS_MAX,
        help_text="A backfill's window tasks at once (empty: the connection's setting).",
    )


class SyncAcceptedSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.CharField(help_text="The run's status when accepted (queued).")
    url = serializers.URLField(help_text="The run to poll for its progress until it ends.")


class SyncWindowSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncWindow
        fields = [
            "index",
            "created_from",
            "created_to",
            "status",
            "attempts",
            "pages",
            "requests",
            "rows_seen",
            "created",
            "updated",
            "skipped_stale",
            "total_estimate",
            "heartbeat_at",
            "retry_at",
            "error",
        ]
        read_only_fields = fields


class SyncRunSerializer(serializers.ModelSerializer):
    windows = SyncWindowSerializer(
        many=True,
        read_only=True,
        help_text="A backfill's windows (sys_created_on from, to; null: open), whose counters "
        "the run's add up; empty for a run read as one stream.",
    )
    progress = serializers.FloatField(allow_null=True, read_only=True)
    reclaim_at = serializers.SerializerMethodField(
        help_text="While active: when, with no sign of life until then, the run counts as "
        "abandoned and is resumed by another worker. Null once finished."
    )

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_reclaim_at(self, run: SyncRun):
        when = run.reclaim_at(services.stale_run_after())
        return serializers.DateTimeField().to_representation(when) if when else None

    duration_seconds = serializers.SerializerMethodField()
    requests_by_status = serializers.SerializerMethodField(
        help_text='HTTP requests sent by finished attempts, by status code ("error": no '
        'response), e.g. {"200": 12, "503": 2}.'
    )
    retries_by_status = serializers.SerializerMethodField(
        help_text="Of those, the retries, by the status code that caused them."
    )

    class Meta:
        model = SyncRun
        fields = [
            "id",
            "source",
            "mode",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
            "pages",
            "requests",
            "rows_seen",
            "created",
            "updated",
            "skipped_stale",
            "deleted",
            "evidence_created",
            "total_estimate",
            "progress",
            "duration_seconds",
            "requests_by_status",
            "retries_by_status",
            "error",
            "log",
            "heartbeat_at",
            "retry_at",
            "reclaim_at",
            "failures_in_a_row",
            "resume_ts",
            "resume_sys_id",
            "window_count",
            "windows",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, run) -> float | None:
        return selectors.run_duration_seconds(run)

    def get_requests_by_status(self, run) -> dict[str, int]:
        return {c.status: c.requests for c in run.http_counts.all()}

    def get_retries_by_status(self, run) -> dict[str, int]:
        return {c.status: c.retries for c in run.http_counts.all() if c.retries}


class WorkItemSerializer(serializers.ModelSerializer):
    person = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    deleted = serializers.SerializerMethodField()
    url = serializers.CharField(source="record_url", read_only=True)

    class Meta:
        model = WorkItem
        fields = [
            "id",
            "source",
            "sys_id",
            "number",
            "table",
            "short_description",
            "state",
            "priority",
            "person",
            "attributions",
            "opened_at",
            "resolved_at",
            "closed_at",
            "sys_updated_on",
            "sys_mod_count",
            "deleted",
            "deleted_at",
            "url",
        ]
        read_only_fields = fields

    def get_deleted(self, item) -> bool:
        return item.deleted_at is not None


# The body of POST connections/{id}/test/ (services.connection_check's dict), for the schema.
class ConnectionCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()
    reachable = serializers.BooleanField(required=False)
    authenticated = serializers.BooleanField(required=False)
    elapsed_ms = serializers.IntegerField(required=False, help_text="When ok.")
    api = serializers.CharField(required=False, help_text="The table API path used, when ok.")
    error = serializers.CharField(
        required=False, help_text="When not ok: the kind of failure, e.g. AuthenticationError."
    )
    problem = serializers.CharField(
        required=False,
        help_text="When not ok: what kind of failure, for a person (auth refused, TLS, "
        "unreachable, blocked by the outbound URL policy, …).",
    )


class SuggestionRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = SuggestionRule
        fields = [
            "id",
            "name",
            "table",
            "conditions",
            "expectation_codes",
            "skills",
            "rationale",
            "enabled",
            "position",
        ]

    def validate_conditions(self, value):
        if not isinstance(value, list):
            raise serializers.ValidationError("A list of {field, op, value}.")
        for i, cond in enumerate(value):
            if not isinstance(cond, dict) or not FIELD_NAME.match(str(cond.get("field", ""))):
                raise serializers.ValidationError(f"[{i}]: needs a field name.")
            if cond.get("op", "=") not in ("=", "!=", "contains", "startswith", "in"):
                raise serializers.ValidationError(
                    f"[{i}]: op is one of = != contains startswith in"
                )
            if cond.get("op") == "in" and not isinstance(cond.get("value"), list):
                raise serializers.ValidationError(f"[{i}]: 'in' takes a list.")
        return value
