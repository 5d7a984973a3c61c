"""ServiceNow connections, sources, cursors, runs and the work items they bring in."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models

from ladder_tracker.history import SecretsHistory, audited_history, history_secrets_track

from .client import record_url  # noqa: F401 (imported from here too)


class Connection(models.Model):
    class AuthType(models.TextChoices):
        BASIC = "basic", "Basic"
        OAUTH_PASSWORD = "oauth_password", "OAuth (password grant)"
        OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials", "OAuth (client credentials)"

    name = models.CharField(max_length=100, unique=True)
    instance_url = models.URLField(help_text="e.g. https://acme.service-now.com")
    auth_type = models.CharField(max_length=32, choices=AuthType.choices, default=AuthType.BASIC)
    username = models.CharField(max_length=200, blank=True)
    # Encrypted at rest (servicenow.secrets); never shown anywhere, only replaced.
    password_encrypted = models.TextField(blank=True, editable=False)
    client_id = models.CharField(max_length=200, blank=True)
    client_secret_encrypted = models.TextField(blank=True, editable=False)
    verify_tls = models.BooleanField(default=True)
    # Public, shown back: certificates only (a private key is refused).
    ca_certificate = models.TextField(
        blank=True,
        help_text="PEM certificate(s) of a CA to trust besides the public ones, e.g. a "
        "corporate CA. Public: shown back.",
    )
    proxy_url = models.CharField(
        max_length=300,
        blank=True,
        help_text="e.g. http://proxy.example.com:3128 (http or https, no credentials). "
        "Empty: HTTPS_PROXY from the environment, if set.",
    )
    page_size = models.PositiveIntegerField(default=1000)
    # Window tasks of backfills (full runs split by sys_created_on) at most at once on this
    # instance; empty: settings.SERVICENOW_BACKFILL_WORKERS.
    backfill_workers = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Backfill window tasks at once on this instance (empty: the default, 4).",
    )
    api_path = models.CharField(max_length=64, default="/api/now/table")
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_ok = models.BooleanField(null=True, blank=True)
    last_check_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    # configuration changes (ladder_tracker/history.py); secrets only as "changed"
    # (secrets_changed, filled by servicenow.receivers), the last check is not history
    SECRET_FIELDS = {"password_encrypted": "password", "client_secret_encrypted": "client_secret"}
    history = audited_history(
        excluded_fields=[
            *SECRET_FIELDS,
            "last_checked_at",
            "last_check_ok",
            "last_check_message",
        ],
        bases=(SecretsHistory,),
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_encrypted)


history_secrets_track(Connection)


class Source(models.Model):
    # What an admin sets on a source (the API body, the setup form and the admin form alike);
    # the rest of a source is written by its runs.
    SETTINGS = (
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
    )

    class Kind(models.TextChoices):
        WORK_ITEMS = "work_items", "Work items"
        USERS = "users", "Users (sys_user)"

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="sources")
    name = models.CharField(max_length=100)
    table = models.CharField(max_length=80)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.WORK_ITEMS)
    query = models.TextField(blank=True, help_text="Base encoded query, e.g. active=true")
    fields = models.JSONField(default=list, blank=True, help_text="Extra fields to keep")
    attribution_fields = models.JSONField(default=list, blank=True)
    enabled = models.BooleanField(default=True)
    interval_minutes = models.PositiveIntegerField(null=True, blank=True)
    overlap_seconds = models.PositiveIntegerField(default=300)
    track_deletes = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
    )
    # When the admins were mailed that this source keeps failing (sync/health.py); cleared,
    # with a second mail, by the next run that succeeds. One mail each way, not one per run.
    failure_alerted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    # configuration changes (ladder_tracker/history.py); the beat task and the alert are
    # the system's bookkeeping
    history = audited_history(excluded_fields=["periodic_task", "failure_alerted_at"])

    class Meta:
        ordering = ["name"]
        constraints = [
            # Work items are unique per connection and table; two sources on one table would
            # fight over them (and a reconcile of one would tombstone the other's rows).
            models.UniqueConstraint(
                fields=["connection", "table"], name="source_one_per_connection_table"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SyncCursor(models.Model):
    """Keyset high-water marks: (sys_updated_on, sys_id) for rows, one more for deletes."""

    source = models.OneToOneField(Source, on_delete=models.CASCADE, related_name="cursor")
    hwm_ts = models.DateTimeField(null=True, blank=True)
    hwm_sys_id = models.CharField(max_length=32, blank=True)
    delete_hwm_ts = models.DateTimeField(null=True, blank=True)
    delete_hwm_sys_id = models.CharField(max_length=32, blank=True)
    # The source table's choice labels ({field: {value: label}}) as sys_choice last gave
    # them: pages then come as raw values. Re-read by full runs and once they are older
    # than SERVICENOW_CHOICE_LABELS_MAX_AGE_SECONDS; None when never read or unreadable.
    choice_labels = models.JSONField(null=True, blank=True)
    choice_labels_read_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.source_id} @ {self.hwm_ts} {self.hwm_sys_id}"


class SyncRun(models.Model):
    class Mode(models.TextChoices):
        INCREMENTAL = "incremental", "Incremental"
        FULL = "full", "Full"
        RECONCILE = "reconcile", "Reconcile"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.INCREMENTAL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of the worker on it: written with every page it commits.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A run waiting out a retry's backoff counts as alive until then.
    retry_at = models.DateTimeField(null=True, blank=True)
    upper_bound = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Transient failures since the last committed page: the retry budget counts these, so a
    # run that moves forward on every attempt is never given up on.
    failures_in_a_row = models.PositiveSmallIntegerField(default=0)
    # The run's own position (apart from the source's cursor): the furthest key it has
    # committed, saved in each page's transaction. A retried or reclaimed run resumes here.
    # Rows passes use (resume_ts, resume_sys_id); a reconcile pass uses resume_sys_id.
    resume_ts = models.DateTimeField(null=True, blank=True)
    resume_sys_id = models.CharField(max_length=32, blank=True)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    rows_seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped_stale = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    evidence_created = models.PositiveIntegerField(default=0)
    total_estimate = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)  # warnings and retried errors, one per line
    # Backfill (sync/backfill.py). What was asked: None lets a full run decide (windows when
    # the table is large and a broker exists), 1 is one stream, more is that many windows;
    # `workers` caps this run's window tasks at once (None: the connection's). `window_count`
    # is what the run planned: 0 while it is one stream, else its SyncWindow rows, whose
    # counters the run's add up.
    windows_requested = models.PositiveSmallIntegerField(null=True, blank=True)
    workers = models.PositiveSmallIntegerField(null=True, blank=True)
    window_count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # One run per source at a time, enforced by the database itself.
            models.UniqueConstraint(
                fields=["source"],
                condition=models.Q(status__in=["queued", "running"]),
                name="syncrun_one_active_per_source",
            ),
        ]
        indexes = [
            # Source health (selectors.source_list): the newest succeeded / failed run of a
            # source and the failures since, as index seeks rather than scans of its runs.
            models.Index(
                fields=["source", "status", "finished_at"], name="syncrun_source_status_end"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.mode} #{self.pk} ({self.status})"

    def reclaim_at(self, stale_after: timedelta) -> datetime | None:
        """When an active run with no sign of life since counts as abandoned and is taken
        over (resumed from its position); None once the run has finished."""
        if self.status not in self.ACTIVE:
            return None
        return self.last_sign_of_life + stale_after

    @property
    def last_sign_of_life(self) -> datetime:
        """The later of its heartbeat and a retry it waits for: a backfill's window may be
        waiting out a backoff while its other windows still write pages."""
        signs = [t for t in (self.retry_at, self.heartbeat_at) if t is not None]
        return max(signs) if signs else self.created_at

    @property
    def is_active(self) -> bool:
        """Queued or running: a worker will still move it (what a page polls for)."""
        return self.status in self.ACTIVE

    @property
    def progress(self) -> float | None:
        """0..1 for the progress bar, when the first page told us how many rows to expect."""
        if self.status == self.Status.SUCCEEDED:
            return 1.0
        if not self.total_estimate:
            return None
        return min(1.0, self.rows_seen / self.total_estimate)


class SyncWindow(models.Model):
    """One key window of a backfill: the rows of its run's source whose sys_created_on lies
    in [created_from, created_to) — None below: from the start, rows with none included;
    None above: open — read as a keyset stream of its own (sync/backfill.py). A window is
    claimed by one task at a time (`attempts` fences the others, as a run's do), keeps its
    own position and counters, and is claimable again when its worker stops answering."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="windows")
    index = models.PositiveSmallIntegerField()
    created_from = models.DateTimeField(null=True, blank=True)
    created_to = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The run's attempt this window was claimed under: a window of an earlier attempt (the
    # run was reclaimed) is anyone's to take, whatever its heartbeat says.
    run_attempt = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    failures_in_a_row = models.PositiveSmallIntegerField(default=0)
    # Where a later attempt goes on from (sync/runs.py _resume_point), and the furthest key
    # read, which the source's cursor moves to once every window is done.
    resume_ts = models.DateTimeField(null=True, blank=True)
    resume_sys_id = models.CharField(max_length=32, blank=True)
    hwm_ts = models.DateTimeField(null=True, blank=True)
    hwm_sys_id = models.CharField(max_length=32, blank=True)
    pages = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    rows_seen = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    skipped_stale = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    evidence_created = models.PositiveIntegerField(default=0)
    total_estimate = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [
            models.UniqueConstraint(fields=["run", "index"], name="syncwindow_unique_index"),
        ]
        indexes = [models.Index(fields=["status", "run"], name="syncwindow_status_run")]

    def __str__(self) -> str:
        return f"run {self.run_id} window {self.index} ({self.status})"


class SyncRunHttpCount(models.Model):
    """The HTTP requests one run sent to ServiceNow, by the status code that came back
    ("error": no response, e.g. a refused connection or a timeout), and how many of those
    were retried. Written at the end of each attempt from the client's counters, so the
    /metrics counters add up every worker process's requests (servicenow/metrics.py)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="http_counts")
    status = models.CharField(max_length=8)  # "200", "503", … or "error"
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "status"]
        constraints = [
            models.UniqueConstraint(fields=["run", "status"], name="syncrun_http_count_unique"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.status}: {self.requests} ({self.retries} retried)"


class SourceHttpCount(models.Model):
    """The running totals of SyncRunHttpCount per source, added to in the same transaction:
    what /metrics reads, so a scrape costs the same after a year of runs as after one."""

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="http_counts")
    status = models.CharField(max_length=8)
    requests = models.PositiveBigIntegerField(default=0)
    retries = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["source", "status"]
        constraints = [
            models.UniqueConstraint(fields=["source", "status"], name="source_http_count_unique"),
        ]

    def __str__(self) -> str:
        return f"source {self.source_id} {self.status}: {self.requests} ({self.retries} retried)"


class WorkItem(models.Model):
    # No single-column indexes: the unique (connection, table, sys_id) and the
    # (source, sys_updated_on) index lead with these columns, and every index costs per row
    # written (benchmarks/sync.py).
    connection = models.ForeignKey(
        Connection, on_delete=models.PROTECT, related_name="work_items", db_index=False
    )
    source = models.ForeignKey(
        Source, on_delete=models.PROTECT, related_name="work_items", db_index=False
    )
    table = models.CharField(max_length=80)
    sys_id = models.CharField(max_length=32)
    number = models.CharField(max_length=40, blank=True)
    short_description = models.TextField(blank=True)
    state = models.CharField(max_length=40, blank=True)
    priority = models.CharField(max_length=40, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    person = models.ForeignKey(
        "people.Person",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="work_items",
    )
    # {attribution field: sys_user sys_id}, e.g. {"assigned_to": "6816f79c…"}
    attributions = models.JSONField(default=dict, blank=True)
    sys_updated_on = models.DateTimeField()
    sys_mod_count = models.IntegerField(default=0)
    raw = models.JSONField(default=dict, blank=True)  # the selected fields, as values
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_reason = models.CharField(max_length=32, blank=True)  # audit_delete | reconcile
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-sys_updated_on", "sys_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "table", "sys_id"], name="workitem_unique_per_table"
            ),
        ]
        indexes = [models.Index(fields=["source", "sys_updated_on"])]

    def __str__(self) -> str:
        return self.number or self.sys_id

    @property
    def record_url(self) -> str:
        return record_url(self.connection.instance_url, self.table, self.sys_id)


class SuggestionRule(models.Model):
    """Pre-links imported candidates: when a record matches, suggest expectations and skills.

    conditions: [{"field": "category", "op": "=", "value": "ml_model"}, …] (all must hold);
    ops: = != contains startswith in (value a list for `in`).
    """

    name = models.CharField(max_length=100)
    table = models.CharField(max_length=80)
    conditions = models.JSONField(default=list)
    expectation_codes = models.JSONField(default=list, blank=True)
    skills = models.JSONField(default=list, blank=True)
    rationale = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    history = audited_history()  # ladder_tracker/history.py

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name
