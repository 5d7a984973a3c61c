"""Writes for ServiceNow configuration and runs: connections (with secrets), sources (with
their beat schedule), run requests (one active run per source) and connection checks."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import UTC, timedelta

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from apps.security.models import SecurityEvent
from apps.security.services import security_event_record
from ladder_tracker.errors import ConflictError
from ladder_tracker.history import history_context

from .client import (
    ClientConfig,
    ServiceNowClient,
    ServiceNowError,
    ca_certificate_problem,
    instance_url_problem,
)
from .models import Connection, Source, SyncRun
from .outbound import instance_url_policy_problem, proxy_url_problem
from .secrets import (
    ENCRYPTED_FIELDS,
    SecretUnreadable,
    secret_decrypt,
    secret_encrypt,
    secret_is_current,
    secret_reencrypt,
)

logger = logging.getLogger(__name__)


def stale_run_after() -> timedelta:
    """An active run with no sign of life (a heartbeat, written per page, or a retry that is
    due) for this long is taken to be abandoned: its worker was killed
    (settings.SERVICENOW_STALE_RUN_SECONDS)."""
    return timedelta(seconds=settings.SERVICENOW_STALE_RUN_SECONDS)


class RunAlreadyActive(ConflictError):
    """A source's run is queued or running. Says when that run counts as abandoned and is
    resumed by the reclaimer (or by the next request), should its worker have stopped."""

    def __init__(self, run: SyncRun):
        self.run = run
        self.reclaim_at = run.reclaim_at(stale_run_after())
        when = self.reclaim_at.astimezone(UTC).strftime("%H:%M:%S UTC") if self.reclaim_at else ""
        super().__init__(
            f"Source {run.source_id} already has run {run.pk} ({run.status}); wait for it to "
            f"finish. If its worker stopped, it is resumed from its last page after {when}.",
            detail={
                "run": run.pk,
                "status": run.status,
                "reclaim_at": self.reclaim_at.isoformat() if self.reclaim_at else None,
            },
        )


class SourceDisabled(ConflictError):
    pass


class ConfigurationInUse(ConflictError):
    """A connection or source that imported records cannot be deleted."""


def connection_url_validate(url: str) -> None:
    """Refuse, before saving, an instance URL the client would refuse: its shape, then the
    outbound policy as written (servicenow.outbound; the client checks the resolved
    addresses again at connect time)."""
    problem = instance_url_problem(url) or instance_url_policy_problem(
        url, allow_local=settings.SERVICENOW_ALLOW_LOCAL_INSTANCES
    )
    if problem:
        raise ValidationError(problem)


def connection_proxy_url_validate(url: str) -> None:
    if url and (problem := proxy_url_problem(url)):
        raise ValidationError(problem)


def connection_ca_certificate_validate(pem: str) -> None:
    if pem and (problem := ca_certificate_problem(pem)):
        raise ValidationError(problem)


CONNECTION_FIELD_VALIDATORS = {
    "instance_url": connection_url_validate,
    "proxy_url": connection_proxy_url_validate,
    "ca_certificate": connection_ca_certificate_validate,
}


API_PATHS = ("/api/now/table", "/api/now/v1/table", "/api/now/v2/table")
PAGE_SIZE_MAX = 10000  # the Table API's own sysparm_limit ceiling

# The credentials each auth type uses (the client reads only these). The setup page and the
# Django admin show only the chosen type's fields, and clear the others on save.
AUTH_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    Connection.AuthType.BASIC: ("username", "password"),
    Connection.AuthType.OAUTH_PASSWORD: ("client_id", "client_secret", "username", "password"),
    Connection.AuthType.OAUTH_CLIENT_CREDENTIALS: ("client_id", "client_secret"),
}
CREDENTIAL_FIELDS = ("username", "password", "client_id", "client_secret")
SECRET_FIELDS = ("password", "client_secret")


def connection_page_size_validate(value: int) -> None:
    if not 1 <= value <= PAGE_SIZE_MAX:
        raise ValidationError(f"Between 1 and {PAGE_SIZE_MAX}.")


BACKFILL_WORKERS_MAX = 32  # window tasks at once on one instance: well past any advice


def connection_backfill_workers_validate(value: int | None) -> None:
    if value is not None and not 1 <= value <= BACKFILL_WORKERS_MAX:
        raise ValidationError(f"Between 1 and {BACKFILL_WORKERS_MAX}, or empty for the default.")


def connection_api_path_validate(value: str) -> None:
    if value not in API_PATHS:
        raise ValidationError(f"One of {', '.join(API_PATHS)}.")


def connection_auth_problems(*, auth_type: str, username: str, client_id: str) -> dict[str, str]:
    """What the chosen auth type lacks, by field (the API, the admin and the setup page ask
    this; secrets are checked by the forms, which know whether one is stored)."""
    problems = {}
    if auth_type != Connection.AuthType.BASIC and not client_id:
        problems["client_id"] = "OAuth needs a client id."
    if auth_type != Connection.AuthType.OAUTH_CLIENT_CREDENTIALS and not username:
        problems["username"] = "This auth type needs a username."
    return problems


def connection_validate(*, connection: Connection) -> None:
    """A ValidationError naming each field the client would refuse (the API, the admin and
    connection_save all ask this)."""
    errors: dict[str, list[str]] = {}
    for name, validate in CONNECTION_FIELD_VALIDATORS.items():
        try:
            validate(getattr(connection, name))
        except ValidationError as exc:
            errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)


def connection_save(
    *,
    connection: Connection,
    password: str | None = None,
    client_secret: str | None = None,
    actor=None,
) -> Connection:
    """Save a connection; a secret given as None is left as it is, "" clears it. Refuses
    (ValidationError naming the field) an instance URL, proxy or CA the client would. A
    replaced or cleared secret goes into the security audit trail (as "changed", never the
    value)."""
    connection.instance_url = connection.instance_url.rstrip("/")
    connection.proxy_url = connection.proxy_url.strip().rstrip("/")
    connection.ca_certificate = connection.ca_certificate.strip()
    connection_validate(connection=connection)
    changed = {}
    if password is not None:
        connection.password_encrypted = secret_encrypt(password)
        changed["password"] = "changed" if password else "cleared"
    if client_secret is not None:
        connection.client_secret_encrypted = secret_encrypt(client_secret)
        changed["client_secret"] = "changed" if client_secret else "cleared"
    with transaction.atomic(), history_context(actor=actor):
        connection.save()
        if changed:
            security_event_record(
                kind=SecurityEvent.Kind.SECRET_CHANGED,
                actor=actor,
                target=f"servicenow connection {connection.pk} {connection.name}",
                detail=changed,
            )
    return connection


@dataclasses.dataclass
class SecretsRotation:
    """What secrets_rotate did: values re-encrypted, already current, and unreadable ones
    (`app_label.Model pk field`, left as they were)."""

    reencrypted: int = 0
    current: int = 0
    unreadable: list[str] = dataclasses.field(default_factory=list)


def secrets_rotate(*, dry_run: bool = False) -> SecretsRotation:
    """Re-encrypt every stored secret (secrets.ENCRYPTED_FIELDS) with the current key, one row
    per transaction under a row lock. A value no configured key reads is reported and left."""
    outcome = SecretsRotation()
    for label, fields in ENCRYPTED_FIELDS:
        model = apps.get_model(label)
        for pk in model.objects.order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                row = model.objects.select_for_update().filter(pk=pk).first()
                if row is None:
                    continue
                changed = []
                for field in fields:
                    token = getattr(row, field)
                    if secret_is_current(token):
                        outcome.current += bool(token)
                        continue
                    try:
                        setattr(row, field, secret_reencrypt(token))
                    except SecretUnreadable:
                        outcome.unreadable.append(f"{label} {pk} {field}")
                        continue
                    changed.append(field)
                outcome.reencrypted += len(changed)
                if changed and not dry_run:
                    row.save(update_fields=changed)
    logger.info(
        "secrets rotation%s: %s re-encrypted, %s current, %s unreadable",
        " (dry run)" if dry_run else "",
        outcome.reencrypted,
        outcome.current,
        len(outcome.unreadable),
    )
    return outcome


def connection_client_config(*, connection: Connection) -> ClientConfig:
    return ClientConfig(
        instance_url=connection.instance_url,
        auth_type=connection.auth_type,
        username=connection.username,
        password=secret_decrypt(connection.password_encrypted),
        client_id=connection.client_id,
        client_secret=secret_decrypt(connection.client_secret_encrypted),
        verify_tls=connection.verify_tls,
        ca_certificate=connection.ca_certificate,
        proxy_url=connection.proxy_url,
        allow_local=settings.SERVICENOW_ALLOW_LOCAL_INSTANCES,
        api_path=connection.api_path,
    )


def connection_client(*, connection: Connection) -> ServiceNowClient:
    return ServiceNowClient(connection_client_config(connection=connection))


def connection_check_problem(exc: Exception) -> str:
    """A heading for a failed check, saying which kind of failure it was, for the admin
    who reads it beside the form (the message after it has the details)."""
    from .client import (
        AuthenticationError,
        AuthorizationError,
        ConfigurationError,
        ConnectionFailedError,
        OutboundRefusedError,
    )

    if isinstance(exc, SecretUnreadable):
        return "Stored secret unreadable (was the encryption key changed?)"
    if isinstance(exc, OutboundRefusedError):
        return "Blocked by the outbound URL policy: nothing was sent"
    if isinstance(exc, AuthenticationError):
        return "Authentication refused: check the credentials"
    if isinstance(exc, AuthorizationError):
        return "Signed in, but not allowed to read sys_user: check the account's roles"
    if isinstance(exc, ConnectionFailedError):
        if "TLS error" in str(exc):
            return "TLS failed: the certificate is not trusted or does not match"
        return "Unreachable: no answer from the instance"
    if isinstance(exc, ConfigurationError):
        return "Settings the client cannot use"
    return "The instance answered, but not as ServiceNow's Table API does"


def connection_check(*, connection: Connection, record: bool = True) -> dict:
    """Reachability and auth (one small authenticated GET through the client, outbound
    policy included), recorded on the connection unless `record` is off (an unsaved
    connection from the setup page's form). Never raises for a remote failure; a failure's
    `problem` says which kind it was (`connection_check_problem`).

    A destination the outbound policy refuses is reported as refused (error
    "OutboundRefusedError"), nothing sent: the button says why, never whether something
    listens there."""
    try:
        # An admin is waiting on the button: one retry, short timeouts, then say what failed.
        config = dataclasses.replace(
            connection_client_config(connection=connection),
            max_retries=1,
            connect_timeout=3.0,
            read_timeout=15.0,
            backoff_max=2.0,
        )
        client = ServiceNowClient(config)
        try:
            result = {"ok": True, **client.check()}
            message = f"Reachable and authenticated ({result.get('elapsed_ms', '?')} ms)."
        finally:
            client.close()
    except (ServiceNowError, SecretUnreadable) as exc:
        result = {
            "ok": False,
            "error": type(exc).__name__,
            "reachable": not isinstance(exc, SecretUnreadable)
            and getattr(exc, "status_code", None) is not None,
            "authenticated": False,
            "problem": connection_check_problem(exc),
        }
        message = str(exc)
    result["message"] = message
    if not record:  # settings being typed on the setup page, not a saved connection's
        return result
    connection.last_checked_at = timezone.now()
    connection.last_check_ok = result["ok"]
    connection.last_check_message = message[:2000]
    connection.save(update_fields=["last_checked_at", "last_check_ok", "last_check_message"])
    logger.info("connection %s check: %s", connection.pk, "ok" if result["ok"] else message)
    return result


FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
INTERVAL_MAX_MINUTES = 7 * 24 * 60


def source_field_names_problem(value) -> str | None:
    """Why a list of ServiceNow field names (a source's `fields`, `attribution_fields`) is
    not one, or None."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return 'A list of field names, e.g. ["assigned_to"].'
    bad = [v for v in value if not FIELD_NAME.match(v)]
    if bad:
        return f"Not a ServiceNow field name: {', '.join(bad)}"
    return None


def source_problems(*, source: Source) -> dict[str, str]:
    """What the sync would choke on in a source's settings, by field (the API, the admin and
    the setup page ask this)."""
    problems = {}
    if not TABLE_NAME.match(source.table or ""):
        problems["table"] = "Not a ServiceNow table name."
    elif source.kind == Source.Kind.USERS and source.table != "sys_user":
        problems["table"] = "A users source reads sys_user."
    for name in ("fields", "attribution_fields"):
        if problem := source_field_names_problem(getattr(source, name)):
            problems[name] = problem
    if "\n" in (source.query or ""):
        problems["query"] = "An encoded query is one line."
    interval = source.interval_minutes
    if interval is not None and not 1 <= interval <= INTERVAL_MAX_MINUTES:
        problems["interval_minutes"] = "Between 1 minute and one week."
    return problems


@transaction.atomic
def source_save(*, source: Source, actor=None) -> Source:
    """Save a source and keep its beat schedule in step with interval_minutes / enabled.
    The change is history (ladder_tracker/history.py), by `actor` or the request's user."""
    if not source.attribution_fields and source.kind == Source.Kind.WORK_ITEMS:
        source.attribution_fields = ["assigned_to"]
    with history_context(actor=actor):
        source.save()
    _source_schedule_sync(source=source)
    return source


def connection_delete(*, connection: Connection) -> None:
    """Delete a connection; ConfigurationInUse while it has sources or work items."""
    try:
        connection.delete()
    except ProtectedError as exc:
        raise ConfigurationInUse(
            f"Connection {connection.name!r} still has sources or work items; delete those first."
        ) from exc


@transaction.atomic
def source_delete(*, source: Source) -> None:
    """Delete a source and its beat schedule; ConfigurationInUse while it has work items."""
    task = source.periodic_task
    try:
        source.delete()
    except ProtectedError as exc:
        raise ConfigurationInUse(
            f"Source {source.name!r} has imported work items; disable it instead."
        ) from exc
    if task is not None:
        task.delete()


def _source_schedule_sync(*, source: Source) -> None:
    task = source.periodic_task
    if not source.interval_minutes:
        if task is not None:
            source.periodic_task = None
            source.save(update_fields=["periodic_task"])
            task.delete()
        return
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=source.interval_minutes, period=IntervalSchedule.MINUTES
    )
    values = {
        "interval": interval,
        "task": "servicenow.sync_source_scheduled",
        "kwargs": json.dumps({"source_id": source.pk, "mode": "incremental"}),
        "enabled": source.enabled,
    }
    if task is None:
        task = PeriodicTask.objects.create(name=f"servicenow source {source.pk} sync", **values)
        source.periodic_task = task
        source.save(update_fields=["periodic_task"])
    else:
        for key, value in values.items():
            setattr(task, key, value)
        task.save()


def _abandoned_runs(*, now=None):
    """Active runs with no sign of life for longer than the stale threshold."""
    # SyncRun.last_sign_of_life before the cutoff: the later of the heartbeat and the retry
    # it waits for (a backfill writes pages while one of its windows waits out a backoff).
    cutoff = (now or timezone.now()) - stale_run_after()
    not_waiting = Q(retry_at__isnull=True) | Q(retry_at__lt=cutoff)
    silent = (
        Q(heartbeat_at__lt=cutoff)
        | Q(heartbeat_at__isnull=True, retry_at__isnull=False)
        | Q(heartbeat_at__isnull=True, retry_at__isnull=True, created_at__lt=cutoff)
    )
    return SyncRun.objects.filter(status__in=SyncRun.ACTIVE).filter(not_waiting & silent)


def _run_reclaim(*, run: SyncRun, enqueue: bool) -> None:
    """Hand an abandoned run (locked by the caller) to a new attempt: back to queued with a
    fresh sign of life, so the next reclaim leaves it to the task enqueued here. Its old
    worker, were it still alive, is fenced out at its next page (sync_run_start bumps
    `attempts`, pages commit only for the attempt holding the run)."""
    from .sync.progress import log_append
    from .tasks import sync_source_enqueue

    silent = timezone.now() - run.last_sign_of_life
    log_append(
        run,
        f"no sign of life for {int(silent.total_seconds())} s (worker stopped?): "
        "resuming from the last committed page",
    )
    run.status = SyncRun.Status.QUEUED
    run.heartbeat_at = timezone.now()
    run.retry_at = None
    run.save(update_fields=["status", "heartbeat_at", "retry_at", "log"])
    if enqueue:
        transaction.on_commit(lambda: sync_source_enqueue(run.pk))
    logger.warning("sync run %s reclaimed: no sign of life for %s", run.pk, silent)


def sync_runs_reclaim() -> list[int]:
    """Resume every abandoned run from its position (the periodic reclaim task). Rows another
    reclaimer holds are skipped, so two beats never enqueue one run twice."""
    with transaction.atomic():
        runs = list(_abandoned_runs().select_for_update(skip_locked=True))
        for run in runs:
            _run_reclaim(run=run, enqueue=True)
    return [run.pk for run in runs]


def sync_run_request(
    *,
    source: Source,
    mode: str = SyncRun.Mode.INCREMENTAL,
    requested_by=None,
    enqueue: bool = True,
    windows: int | None = None,
    workers: int | None = None,
) -> SyncRun:
    """Create a queued run and (unless the caller runs it itself) enqueue it after commit.

    `windows` and `workers` concern a full run of a work-items source (a backfill,
    sync/backfill.py): windows None lets the run decide (split when the table has at least
    SERVICENOW_BACKFILL_MIN_ROWS rows and a broker exists), 1 keeps it one stream, 2 or more
    splits it into about that many sys_created_on windows whatever the size or broker;
    workers caps its window tasks at once (None: the connection's backfill_workers, else
    SERVICENOW_BACKFILL_WORKERS). ValueError for windows > 1 on any other run.

    Raises RunAlreadyActive (the API's 409) while another run of the source is queued or
    running, and SourceDisabled. An active run that was abandoned (no sign of life for the
    stale threshold) is resumed instead and returned, whatever mode was asked for."""
    from .tasks import sync_source_enqueue

    if windows is not None and windows < 1 or workers is not None and workers < 1:
        raise ValueError("windows and workers are at least 1")
    if (windows or 1) > 1 and (mode != SyncRun.Mode.FULL or source.kind != Source.Kind.WORK_ITEMS):
        raise ValueError("only a full run of a work-items source is split into windows")
    if not source.enabled:
        raise SourceDisabled(f"Source {source.name!r} is disabled.")
    try:
        with transaction.atomic():
            abandoned = _abandoned_runs().filter(source=source).select_for_update().first()
            if abandoned is not None:
                # Its worker died: resuming it from its last page beats starting over.
                _run_reclaim(run=abandoned, enqueue=enqueue)
                return abandoned
            run = SyncRun.objects.create(
                source=source,
                mode=mode,
                requested_by=requested_by,
                windows_requested=windows,
                workers=workers,
            )
            if enqueue:
                transaction.on_commit(lambda: sync_source_enqueue(run.pk))
    except IntegrityError:
        active = SyncRun.objects.filter(source=source, status__in=SyncRun.ACTIVE).first()
        if active is None:  # it finished between our insert and this read: try once more
            return sync_run_request(
                source=source,
                mode=mode,
                requested_by=requested_by,
                enqueue=enqueue,
                windows=windows,
                workers=workers,
            )
        raise RunAlreadyActive(active) from None
    logger.info("sync run %s queued: source %s mode %s", run.pk, source.pk, mode)
    return run
