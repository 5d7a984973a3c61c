"""HTTP front of the ServiceNow emulator: Table, Batch and Aggregate APIs, OAuth, control API.

:class:`Emulator` owns a :class:`~servicenow.emulator.store.Store`, the credentials and
tokens, the active faults and a request log, and serves them from a
``ThreadingHTTPServer`` on a background thread. Responses follow ServiceNow's wire
format (status codes, error bodies, ``X-Total-Count`` and ``Link`` headers) closely
enough for a real client (ours, or ServiceNow's own PySNC) to be tested against it.
Standard library only.

ServiceNow references each part follows (cited again where it matters):
- Table API (GET, POST, PUT, PATCH, DELETE; name-value pair filters, display values):
  https://www.servicenow.com/docs/r/api-reference/rest-apis/c_TableAPI.html
- Batch API (POST /api/now/v1/batch):
  https://www.servicenow.com/docs/r/api-reference/rest-apis/batch-api.html
- Aggregate API (GET /api/now/stats/{tableName}):
  https://www.servicenow.com/docs/r/api-reference/rest-apis/c_AggregateAPI.html
- OAuth tokens (a live access token is handed out again): KB0791140,
  https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB0791140
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import http.client
import json
import random
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode

from . import aggregate, pages
from .encoded_query import CompiledQuery, OrderBy, compile_query, parse_encoded_query
from .faults import Faults, FaultState
from .render import (
    DEFAULT_CHOICES,
    DEFAULT_DATE_FIELDS,
    DEFAULT_DATE_FORMAT,
    DEFAULT_TIME_ZONE,
    DateDisplay,
    RowRenderer,
    choice_rows,
    display_for,
    display_of,
    make_getter,
    time_zone,
)
from .store import Row, Store, Table, to_field_value

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=UTF-8"
DEFAULT_LIMIT = 10000

DEFAULT_REFERENCE_FIELDS: dict[str, str] = {
    "assigned_to": "sys_user",
    "opened_by": "sys_user",
    "caller_id": "sys_user",
    "resolved_by": "sys_user",
    "manager": "sys_user",
    "approver": "sys_user",
    "assignment_group": "sys_user_group",
}
DEFAULT_NUMERIC_FIELDS: tuple[str, ...] = (
    "sys_mod_count",
    "priority",
    "impact",
    "urgency",
    "state",
    "reassignment_count",
)
# Used when a dataset carries no credentials, so a hand-written test dataset still works.
DEFAULT_CREDENTIALS: dict[str, Any] = {
    "users": [{"user_name": "integration", "password": "integration-pass", "forbidden_tables": []}],
    "oauth_clients": [{"client_id": "ladder-tracker", "client_secret": "ladder-tracker-secret"}],
}

TABLE_PATH = re.compile(
    r"^/api/now/(?:(?P<version>v1|v2)/)?table/(?P<table>[^/]+)(?:/(?P<sys_id>[^/]+))?/?$"
)
STATS_PATH = re.compile(r"^/api/now/(?:(?P<version>v1|v2)/)?stats/(?P<table>[^/]+)/?$")
# Only the versioned URL exists: /api/now/batch answers "Requested URI does not represent
# any resource" on a real instance (the Batch API reference lists no default URL).
BATCH_PATH = re.compile(r"^/api/now/v1/batch/?$")
# What a Host or X-Forwarded-Host header may hold before it is echoed into links.
HOST_VALUE = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{1,5})?$")
# System fields the instance maintains: a Table API write never sets them.
READ_ONLY_ON_WRITE = frozenset({"sys_created_on", "sys_updated_on", "sys_mod_count"})
CONTROL_ROWS_PATH = re.compile(
    r"^/__emulator__/tables/(?P<table>[^/]+)/rows(?:/(?P<sys_id>[^/]+))?/?$"
)
CONTROL_BULK_PATH = re.compile(r"^/__emulator__/tables/(?P<table>[^/]+)/bulk_update/?$")

HIBERNATING_PAGE = (
    b"<!DOCTYPE html><html><head><title>Instance Hibernating page</title></head><body>"
    b"<h1>Your instance is hibernating</h1>"
    b"<p>This instance is hibernating to conserve resources. Sign in to wake it up; "
    b"it can take a few minutes.</p></body></html>"
)

LogEntry = tuple[str, str, int]


def error_body(message: str, detail: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "detail": detail}, "status": "failure"}


NOT_AUTHENTICATED = error_body("User Not Authenticated", "Required to provide Auth information")
# ServiceNow's wording for a request the user's roles/ACLs do not allow (KB2466644).
NOT_AUTHORIZED = error_body("User Not Authorized", "Failed API level ACL Validation")
RECORD_NOT_FOUND = error_body(
    "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
)
RECORDS_NOT_FOUND = error_body(
    "No Record found",
    "Records matching query not found. Check query parameter or offset parameter",
)
TRANSACTION_CANCELLED = error_body(
    "Transaction cancelled: maximum execution time exceeded",
    "Transaction cancelled: maximum execution time exceeded Check logs for error trace or "
    "enable glide.rest.debug property to verify REST request processing",
)
OAUTH_DENIED = {"error_description": "access_denied", "error": "server_error"}
METHOD_NOT_SUPPORTED = error_body("Method not Supported", None)
INVALID_JSON = error_body("Exception while reading request", "The payload is not valid JSON.")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: tuple[tuple[str, str], ...] = ()
    rows: int = 0  # records in a Table API answer (for rows_served)


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    # One serialisation per response, compact like ServiceNow's own JSON.
    return Response(status, json.dumps(payload, separators=(",", ":")).encode(), JSON_TYPE, headers)


class BadRequest(Exception):
    """A request parameter ServiceNow would reject with HTTP 400."""


Headers = Mapping[str, str]  # case-insensitive in practice (http.client.HTTPMessage)


@dataclass
class _Token:
    user_name: str
    expires_at: float
    client_id: str = ""
    refresh: str = ""


def _parse_bool(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _parse_int(params: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid value for {name}: {raw}") from None
    if value < minimum:
        raise BadRequest(f"Invalid value for {name}: {raw}")
    return value


def _stored_direction(order_by: list[OrderBy]) -> bool | None:
    """True/False when the ORDERBY list equals the stored (sys_updated_on, sys_id) order
    ascending/descending, so no sort is needed; None when a real sort is required."""
    if not order_by:
        return True
    first = order_by[0]
    if first.field != "sys_updated_on":
        return None
    if len(order_by) == 1:
        return not first.descending
    second = order_by[1]
    # (sys_updated_on, sys_id) is unique, so any further keys cannot change the order.
    if second.field == "sys_id" and second.descending == first.descending:
        return not first.descending
    return None


def _sort_key(get: Callable[[Row], str], numeric: bool) -> Callable[[Row], Any]:
    if not numeric:
        return get

    def key(row: Row) -> tuple[int, Any]:
        value = get(row)
        if value == "":
            return (0, 0.0)
        try:
            return (1, float(value))
        except ValueError:
            return (2, value)

    return key


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Idle keep-alive connections would otherwise make server_close() wait forever;
    # Emulator.stop() closes them explicitly instead.
    block_on_close = False
    request_queue_size = 128
    emulator: Emulator


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a client Session reuses its connection
    server_version = "ServiceNow"
    # Headers and body go out in two writes; without this, Nagle + delayed ACK stall
    # every keep-alive request by ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    # -- plumbing ----------------------------------------------------------------------

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track_connection(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        # Per-request access logs would drown a 100k-row benchmark; errors use log_error.
        return

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"emulator: {format % args}\n")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        path, _, query = self.path.partition("?")
        body = self._read_body()
        logged = path.startswith("/api/now/") or path == "/oauth_token.do"
        if logged:
            emulator._wait_latency()
        try:
            response = emulator._route(self.headers, self.command, path, query, body)
        except Exception:
            # Any bug must surface as a 500 to the client and as a traceback on stderr.
            traceback.print_exc(file=sys.stderr)
            response = json_response(500, error_body("Internal emulator error", None))
        if logged:
            emulator._log(self.command, self.path, response.status, response.rows)
        self._send(response)

    do_GET = _dispatch
    do_POST = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch
    do_DELETE = _dispatch
    do_HEAD = _dispatch


class Emulator:
    """A ServiceNow instance on loopback, serving one dataset.

    ``dataset`` is ``{"tables": {...}, "credentials": {...}, "reference_fields": {...},
    "numeric_fields": [...]}``. ``clock`` returns an aware UTC datetime and drives both
    ``sys_updated_on`` stamps and token expiry.
    """

    def __init__(
        self,
        dataset: Mapping[str, Any],
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | Mapping[str, Any] | None = None,
        token_ttl: float = 1800,
        clock: Callable[[], datetime] | None = None,
        tls: tuple[str, str] | None = None,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
    ) -> None:
        self.host = host
        # Every API and OAuth request waits latency_ms plus up to latency_jitter_ms (uniform)
        # before it is answered: a far-away instance (faults' "slow" delays chosen pages only).
        self.set_latency(latency_ms, latency_jitter_ms)
        # (certificate chain PEM path, private key PEM path): serve https instead of http.
        self.tls = tls
        self._requested_port = port
        self.token_ttl = token_ttl
        # Choice labels per table and field: what sysparm_display_value turns values into,
        # and what the instance's sys_choice table holds (unless the dataset brings its own).
        self.choices: dict[str, dict[str, dict[str, str]]] = {
            table: {field: dict(labels) for field, labels in by_field.items()}
            for table, by_field in (dataset.get("choices") or DEFAULT_CHOICES).items()
        }
        tables = dict(dataset.get("tables") or {})
        tables.setdefault("sys_choice", choice_rows(self.choices))
        self.store = Store(tables, clock=clock)
        self.clock = self.store.clock
        credentials = dataset.get("credentials") or DEFAULT_CREDENTIALS
        self._users: dict[str, dict[str, Any]] = {
            user["user_name"]: user for user in credentials.get("users", [])
        }
        self._first_user: str | None = next(iter(self._users), None)
        self._clients: dict[str, str] = {
            client["client_id"]: client["client_secret"]
            for client in credentials.get("oauth_clients", [])
        }
        self.reference_fields: dict[str, str] = dict(
            dataset.get("reference_fields") or DEFAULT_REFERENCE_FIELDS
        )
        self.numeric_fields: frozenset[str] = frozenset(
            dataset.get("numeric_fields") or DEFAULT_NUMERIC_FIELDS
        )
        # Which fields hold UTC date-times: what sysparm_display_value turns into the user's
        # local time.
        self.date_fields: frozenset[str] = frozenset(
            dataset.get("date_fields") or DEFAULT_DATE_FIELDS
        )
        display = dataset.get("display") or {}
        self.time_zone: str = display.get("time_zone", DEFAULT_TIME_ZONE)
        self.date_format: str = display.get("date_format", DEFAULT_DATE_FORMAT)
        self._tokens: dict[str, _Token] = {}
        # (user, client_id) -> the access token a new grant hands back while it is valid.
        self._live_tokens: dict[tuple[str, str], str] = {}
        self._refresh_tokens: dict[str, tuple[str, str]] = {}  # token -> (user, client_id)
        self._auth_lock = threading.Lock()
        self._fault_state = FaultState(self._coerce_faults(faults))
        self.request_log: list[LogEntry] = []
        # Beside request_log, one entry per request: how many records its answer carried.
        self.rows_log: list[int] = []
        self._log_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        server = _Server((self.host, self._requested_port), _Handler)
        server.emulator = self
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            # The handshake runs on the handler's thread at its first read, not in accept():
            # a client that connects and says nothing must not stall the accept loop.
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="servicenow-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Wake handler threads blocked on idle keep-alive reads; the peer may be gone.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def _track_connection(self, connection: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # -- faults and log ----------------------------------------------------------------

    def set_latency(self, latency_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
        latency_ms, jitter_ms = float(latency_ms), float(jitter_ms)
        if latency_ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter are milliseconds >= 0")
        self.latency_ms, self.latency_jitter_ms = latency_ms, jitter_ms

    def _wait_latency(self) -> None:
        jitter = self.latency_jitter_ms
        delay = self.latency_ms + (random.uniform(0, jitter) if jitter else 0)  # noqa: S311
        if delay > 0:
            time.sleep(delay / 1000)

    @staticmethod
    def _coerce_faults(faults: Faults | Mapping[str, Any] | None) -> Faults:
        if faults is None:
            return Faults()
        if isinstance(faults, Faults):
            return faults
        return Faults.from_dict(dict(faults))

    @property
    def faults(self) -> Faults:
        return self._fault_state.faults

    def set_faults(self, faults: Faults | None) -> None:
        """Replace the active faults; their counters start again from zero."""
        self._fault_state = FaultState(self._coerce_faults(faults))

    def set_faults_dict(self, data: Mapping[str, Any] | None) -> None:
        self.set_faults(Faults.from_dict(dict(data or {})))

    def _log(self, method: str, path: str, status: int, rows: int = 0) -> None:
        with self._log_lock:
            self.request_log.append((method, path, status))
            self.rows_log.append(rows)

    def clear_log(self) -> None:
        with self._log_lock:
            self.request_log.clear()
            self.rows_log.clear()

    def rows_served(self, table: str | None = None) -> int:
        """Records the Table API has answered with (of `table`, or of all), from the log."""
        with self._log_lock:
            entries = list(zip(self.request_log, self.rows_log, strict=True))
        total = 0
        for (_method, path, _status), rows in entries:
            match = TABLE_PATH.match(path.partition("?")[0])
            if match and (table is None or unquote(match["table"]) == table):
                total += rows
        return total

    def stats(self) -> dict[str, Any]:
        """Request counts from the log, plus how often each fault has fired."""
        with self._log_lock:
            entries = list(self.request_log)
        by_status: Counter[str] = Counter()
        by_table: Counter[str] = Counter()
        table_api = oauth = 0
        for _method, path, status in entries:
            by_status[str(status)] += 1
            bare = path.partition("?")[0]
            match = TABLE_PATH.match(bare)
            if match:
                table_api += 1
                by_table[unquote(match["table"])] += 1
            elif bare == "/oauth_token.do":
                oauth += 1
        return {
            "requests": len(entries),
            "table_api": table_api,
            "oauth": oauth,
            "by_status": dict(by_status),
            "by_table": dict(by_table),
            "faults_fired": self._fault_state.fired(),
        }

    # -- routing -----------------------------------------------------------------------

    def _route(self, headers: Headers, method: str, path: str, query: str, body: bytes) -> Response:
        if path == "/oauth_token.do":
            if method != "POST":
                return json_response(405, METHOD_NOT_SUPPORTED)
            return self._oauth(headers, body)
        if path.startswith("/__emulator__/"):
            return self._control(method, path, body)
        if path.startswith("/api/now/"):
            match = TABLE_PATH.match(path)
            if match is not None:
                table = unquote(match["table"])
                sys_id = unquote(match["sys_id"]) if match["sys_id"] else None
                if method in ("GET", "HEAD"):
                    return self._table_get(headers, match["version"], table, sys_id, path, query)
                return self._table_write(headers, method, table, sys_id, query, body)
            if BATCH_PATH.match(path):
                if method != "POST":
                    return json_response(405, METHOD_NOT_SUPPORTED)
                return self._batch(headers, body)
            match = STATS_PATH.match(path)
            if match is not None:
                if method not in ("GET", "HEAD"):
                    return json_response(405, METHOD_NOT_SUPPORTED)
                return self._aggregate(headers, unquote(match["table"]), query)
            return json_response(
                400, error_body(f"Requested URI does not represent any resource: {path}", None)
            )
        if method in ("GET", "HEAD"):
            target = pages.form_target(path, query)
            if target is not None:
                return self._record_page(*target)
        return json_response(404, error_body("Not found", path))

    def _base_url(self, headers: Headers) -> str:
        """The instance URL as the client reached it, for links in responses.

        ServiceNow builds links from its own instance URL; the emulator's equivalent is the
        Host the client used (a TLS terminator or proxy in front of it says so with
        X-Forwarded-Host/-Proto), not the address it is bound to.
        """
        host = (headers.get("X-Forwarded-Host") or headers.get("Host") or "").split(",")[0]
        host = host.strip()
        scheme = (headers.get("X-Forwarded-Proto") or "").split(",")[0].strip().lower()
        if scheme not in ("http", "https"):
            scheme = "https" if self.tls is not None else "http"
        if host and HOST_VALUE.match(host):
            return f"{scheme}://{host}"
        return self.url

    def _user_or_401(self, headers: Headers) -> dict[str, Any] | Response:
        user = self._authenticate(headers.get("Authorization", ""))
        if user is None:
            return json_response(
                401, NOT_AUTHENTICATED, (("WWW-Authenticate", 'BASIC realm="Service-now"'),)
            )
        return user

    def _table_refusal(self, user: Mapping[str, Any], table_name: str) -> Response | None:
        if not self.store.has_table(table_name):
            return json_response(400, error_body(f"Invalid table {table_name}", None))
        if table_name in (user.get("forbidden_tables") or ()):
            return json_response(403, NOT_AUTHORIZED)
        return None

    def _date_display(self, user: Mapping[str, Any]) -> DateDisplay:
        """Dates as this user sees them: their own time zone, else the instance's."""
        zone = user.get("time_zone") or self.time_zone
        return DateDisplay(time_zone(zone), user.get("date_format") or self.date_format)

    def _renderer(
        self,
        user: Mapping[str, Any],
        table: Table,
        base_url: str,
        params: Mapping[str, str],
    ) -> RowRenderer:
        display_value = (params.get("sysparm_display_value") or "false").strip().lower()
        if display_value not in ("true", "all"):
            display_value = "false"
        raw_fields = params.get("sysparm_fields", "")
        fields = [f.strip() for f in raw_fields.split(",") if f.strip()] or None
        return RowRenderer(
            self.store,
            base_url,
            self.reference_fields,
            table.fields,
            fields,
            display_value,
            _parse_bool(params.get("sysparm_exclude_reference_link")),
            self.choices.get(table.name),
            self.date_fields,
            self._date_display(user) if display_value != "false" else None,
        )

    def _pair_filter(self, table: Table, params: Mapping[str, str]) -> Callable[[Row], bool] | None:
        """Name-value pair filters (``&active=true&state=closed``), AND-ed together.

        Table API reference, "name-value pairs": instead of ``sysparm_query=active=true`` a
        client may send ``active=true``, and a choice or reference field may be given by
        its display value (``state=closed``, ``assigned_to=john.smith``). The reference
        calls them mutually exclusive with sysparm_query; here both apply. Parameters
        naming no field of the table are ignored, like invalid query terms.
        """
        checks: list[tuple[Callable[[Row], str], frozenset[str]]] = []
        for name, value in params.items():
            if name.startswith("sysparm_") or name.split(".", 1)[0] not in table.fields:
                continue
            accepted = {value}
            last = name.rsplit(".", 1)[-1]
            labels = self.choices.get(table.name, {}).get(name, {})
            accepted.update(raw for raw, label in labels.items() if label.lower() == value.lower())
            target = self.store.table(self.reference_fields.get(last, ""))
            if target is not None:
                accepted.update(
                    row["sys_id"]
                    for row in target.rows
                    if value
                    in (row.get("user_name"), display_of(self.store, target.name, row["sys_id"]))
                )
            checks.append(
                (make_getter(self.store, self.reference_fields, name), frozenset(accepted))
            )
        if not checks:
            return None
        return lambda row: all(get(row) in accepted for get, accepted in checks)

    def _compile(self, table: Table, params: Mapping[str, str]) -> CompiledQuery:
        compiled = compile_query(
            parse_encoded_query(params.get("sysparm_query", "")),
            table.fields,
            lambda field: make_getter(self.store, self.reference_fields, field),
            self.numeric_fields,
        )
        pairs = self._pair_filter(table, params)
        if pairs is None:
            return compiled
        query = compiled.predicate
        predicate = pairs if query is None else (lambda row: query(row) and pairs(row))
        return CompiledQuery(predicate, compiled.lower, compiled.upper, compiled.order_by)

    # -- auth --------------------------------------------------------------------------

    def _authenticate(self, header: str) -> dict[str, Any] | None:
        scheme, _, credential = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                decoded = base64.b64decode(credential.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None
            user_name, _, password = decoded.partition(":")
            user = self._users.get(user_name)
            if user is not None and secrets.compare_digest(
                str(user.get("password", "")).encode(), password.encode()
            ):
                return user
            return None
        if scheme == "bearer":
            now = self.clock().timestamp()
            with self._auth_lock:
                token = self._tokens.get(credential.strip())
                if token is None:
                    return None
                if token.expires_at <= now:
                    del self._tokens[credential.strip()]
                    return None
            return self._users.get(token.user_name)
        return None

    def _issue_tokens(
        self, user_name: str, client_id: str, refresh: str | None, reuse: bool = False
    ) -> Response:
        """Grant an access token. With ``reuse`` (a password or client_credentials grant)
        a still-valid token of the same user and client comes back with its life extended:
        KB0791140, "If a valid access token already exists during this call, the same token
        is returned and expiration of the current access token is updated". A refresh grant
        always mints a new access token and hands back the same refresh token."""
        now = self.clock().timestamp()
        with self._auth_lock:
            live = self._tokens.get(self._live_tokens.get((user_name, client_id), ""))
            if reuse and live is not None and live.expires_at > now:
                access, refresh = self._live_tokens[(user_name, client_id)], live.refresh
            else:
                access = secrets.token_urlsafe(64)
                refresh = refresh or (live.refresh if live is not None else None)
                refresh = refresh or secrets.token_urlsafe(64)
            self._tokens[access] = _Token(user_name, now + self.token_ttl, client_id, refresh)
            self._live_tokens[(user_name, client_id)] = access
            self._refresh_tokens[refresh] = (user_name, client_id)
        return json_response(
            200,
            {
                "access_token": access,
                "refresh_token": refresh,
                "scope": "useraccount",
                "token_type": "Bearer",
                "expires_in": int(self.token_ttl),
            },
        )

    def _oauth(self, headers: Headers, body: bytes) -> Response:
        denied = json_response(401, OAUTH_DENIED)
        # ServiceNow only reads form fields: a JSON body simply yields no grant_type.
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if "client_secret" not in form:
            # The client may authenticate with HTTP Basic instead (RFC 6749 section 2.3.1,
            # form-encoded id and secret); requests-oauthlib, hence PySNC's OAuth flows,
            # does so whenever it has a client secret.
            scheme, _, credential = headers.get("Authorization", "").strip().partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(credential.strip(), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    return denied
                basic_id, _, basic_secret = decoded.partition(":")
                form["client_id"] = unquote(basic_id.replace("+", " "))
                form["client_secret"] = unquote(basic_secret.replace("+", " "))
        client_id = form.get("client_id", "")
        secret = self._clients.get(client_id)
        if secret is None or not secrets.compare_digest(
            secret.encode(), form.get("client_secret", "").encode()
        ):
            return denied
        grant = form.get("grant_type")
        if grant == "password":
            user = self._users.get(form.get("username", ""))
            if user is None or not secrets.compare_digest(
                str(user.get("password", "")).encode(), form.get("password", "").encode()
            ):
                return denied
            return self._issue_tokens(user["user_name"], client_id, None, reuse=True)
        if grant == "client_credentials":
            if self._first_user is None:
                return denied
            return self._issue_tokens(self._first_user, client_id, None, reuse=True)
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            with self._auth_lock:
                owner = self._refresh_tokens.get(refresh)
            if owner is None or owner[1] != client_id:
                return denied
            # ServiceNow hands back the same refresh token with a fresh access token.
            return self._issue_tokens(owner[0], client_id, refresh)
        return denied

    # -- Table API ---------------------------------------------------------------------

    def _request_faults(self, state: FaultState) -> Response | None:
        """Faults that hit any Table API GET, in a fixed order (see FaultState)."""
        faults = state.faults
        if state.count("slow") and faults.slow is not None:
            time.sleep(faults.slow.seconds)
        # Every fault counts this request; only the first one due fires (and uses a "time").
        due = [name for name in ("rate_limit", "server_error", "html") if state.due(name)]
        winner = due[0] if due else None
        if winner is not None:
            state.mark_fired(winner)
        if winner == "rate_limit" and faults.rate_limit is not None:
            return json_response(
                429,
                error_body(
                    "Rate limit exceeded",
                    "The maximum number of requests per hour for this user has been exceeded",
                ),
                (("Retry-After", str(faults.rate_limit.retry_after)),),
            )
        if winner == "server_error" and faults.server_error is not None:
            status = faults.server_error.status
            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Server Error"
            return json_response(status, error_body(phrase, "Injected by the emulator"))
        if winner == "html":
            return Response(200, HIBERNATING_PAGE, HTML_TYPE)
        return None

    def _table_get(
        self,
        headers: Headers,
        version: str | None,
        table_name: str,
        sys_id: str | None,
        path: str,
        query: str,
    ) -> Response:
        user = self._user_or_401(headers)
        if isinstance(user, Response):
            return user
        state = self._fault_state
        injected = self._request_faults(state)
        if injected is not None:
            return injected
        refusal = self._table_refusal(user, table_name)
        if refusal is not None:
            return refusal

        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, value)  # first occurrence wins
        try:
            limit = _parse_int(params, "sysparm_limit", DEFAULT_LIMIT, 1)
            offset = _parse_int(params, "sysparm_offset", 0, 0)
        except BadRequest as exc:
            return json_response(400, error_body(str(exc), None))
        # Links are the only use of the base URL; the sync's pages ask for neither kind, so
        # they skip reading the Host headers (~12 us a request, measured).
        suppress_links = _parse_bool(params.get("sysparm_exclude_reference_link")) and _parse_bool(
            params.get("sysparm_suppress_pagination_header")
        )
        base_url = self.url if suppress_links else self._base_url(headers)

        hidden = state.faults.hidden

        def is_hidden(row: Row) -> bool:
            if hidden is None:
                return False
            try:
                return int(row["sys_id"], 16) % hidden.modulo == 0
            except ValueError:
                return False

        with self.store.lock:
            table = self.store.table(table_name)
            assert table is not None  # checked above; tables are never dropped
            renderer = self._renderer(user, table, base_url, params)
            if sys_id is not None:
                row = table.by_id.get(sys_id)
                if row is None or is_hidden(row):
                    return json_response(404, RECORD_NOT_FOUND)
                one = json_response(200, {"result": renderer.render(row)})
                one.rows = 1
                return one

            cancelled = state.faults.transaction_cancelled
            if (
                cancelled is not None
                and limit > cancelled.max_limit
                and state.fire_unconditionally("transaction_cancelled")
            ):
                if cancelled.status != 200:
                    return json_response(cancelled.status, TRANSACTION_CANCELLED)
                # The page was cut off mid-row and the error appended, on a 200.
                cut = b'{"result":[{"sys_id":"' + b"0" * 16
                tail = json.dumps(TRANSACTION_CANCELLED, separators=(",", ":")).encode()
                return Response(200, cut + b"]," + tail[1:], JSON_TYPE, ())

            compiled = self._compile(table, params)
            no_count = _parse_bool(params.get("sysparm_no_count"))
            page, total = self._select(table, compiled, offset, limit, need_count=not no_count)
            full_page = len(page) == limit
            page = [row for row in page if not is_hidden(row)]
            if page and state.count("duplicates"):
                original = page[state.rng.randrange(len(page))]
                page.insert(state.rng.randrange(len(page) + 1), original)
            result = [renderer.render(row) for row in page]
            edits = self._plan_edits(state, table)

        headers: list[tuple[str, str]] = []
        if total is not None:
            headers.append(("X-Total-Count", str(total)))
        if not _parse_bool(params.get("sysparm_suppress_pagination_header")):
            headers.append(
                (
                    "Link",
                    self._link_header(base_url, path, query, offset, limit, total, full_page),
                )
            )
        if not result and version == "v1":
            response = json_response(404, RECORDS_NOT_FOUND, tuple(headers))
        else:
            response = json_response(200, {"result": result}, tuple(headers))
            response.rows = len(result)
        if edits:
            # The page has been read; change rows before the client can ask for the next.
            self._apply_edits(table_name, edits)
        return response

    def _select(
        self, table: Table, compiled: CompiledQuery, offset: int, limit: int, need_count: bool
    ) -> tuple[list[Row], int | None]:
        """Matching rows for [offset, offset + limit) and the total match count.

        When the ORDERBY equals the stored order, scan only the sys_updated_on window the
        query implies, stop early when no count is wanted, and never sort.
        """
        rows = table.rows
        start, stop = table.index_range(compiled.lower, compiled.upper)
        predicate = compiled.predicate
        direction = _stored_direction(compiled.order_by)
        end = offset + limit
        if direction is not None:
            if predicate is None:
                window = rows[start:stop] if direction else rows[start:stop][::-1]
                return window[offset:end], len(window) if need_count else None
            indices = range(start, stop) if direction else range(stop - 1, start - 1, -1)
            page: list[Row] = []
            matched = 0
            for index in indices:
                row = rows[index]
                if not predicate(row):
                    continue
                if offset <= matched < end:
                    page.append(row)
                matched += 1
                if matched >= end and not need_count:
                    break  # the keyset sync path: no count wanted, page complete
            return page, matched if need_count else None

        matches = [row for row in rows[start:stop] if predicate is None or predicate(row)]
        # Stable multi-key sort: least significant key first; ties keep the stored order.
        for order in reversed(compiled.order_by):
            getter = make_getter(self.store, self.reference_fields, order.field)
            numeric = order.field.rsplit(".", 1)[-1] in self.numeric_fields
            matches.sort(key=_sort_key(getter, numeric), reverse=order.descending)
        return matches[offset:end], len(matches)

    def _link_header(
        self,
        base_url: str,
        path: str,
        query: str,
        offset: int,
        limit: int,
        total: int | None,
        full_page: bool,
    ) -> str:
        pairs = [
            (k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "sysparm_offset"
        ]

        def link(to_offset: int, rel: str) -> str:
            encoded = urlencode([*pairs, ("sysparm_offset", str(to_offset))])
            return f'<{base_url}{path}?{encoded}>;rel="{rel}"'

        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        has_next = offset + limit < total if total is not None else full_page
        if has_next:
            links.append(link(offset + limit, "next"))
        if total is not None:
            links.append(link(max(0, (total - 1) // limit * limit), "last"))
        return ",".join(links)

    # -- Table API writes --------------------------------------------------------------

    def _table_write(
        self,
        headers: Headers,
        method: str,
        table_name: str,
        sys_id: str | None,
        query: str,
        body: bytes,
    ) -> Response:
        """POST /table/{t}, PUT|PATCH|DELETE /table/{t}/{sys_id} (Table API reference).

        POST answers 201 with the new record (and a Location header), PUT and PATCH 200
        with the updated one, DELETE 204 with no body; a missing record is a 404. The store
        stamps sys_updated_on and bumps sys_mod_count, so an incremental sync sees the
        write. Faults are for reads: writes neither fire nor count them.
        """
        if method not in ("POST", "PUT", "PATCH", "DELETE") or (method == "POST") != (
            sys_id is None
        ):
            return json_response(405, METHOD_NOT_SUPPORTED)
        user = self._user_or_401(headers)
        if isinstance(user, Response):
            return user
        refusal = self._table_refusal(user, table_name)
        if refusal is not None:
            return refusal
        params = dict(parse_qsl(query, keep_blank_values=True))
        fields: dict[str, str] = {}
        if method != "DELETE":
            try:
                payload = json.loads(body) if body.strip() else {}
            except (json.JSONDecodeError, UnicodeDecodeError):
                return json_response(400, INVALID_JSON)
            if not isinstance(payload, dict):
                return json_response(400, INVALID_JSON)
            for name, value in payload.items():
                if name in READ_ONLY_ON_WRITE:
                    continue
                # A client echoing a read shape ({"value": ..., "display_value": ...}).
                if isinstance(value, dict):
                    value = value.get("value", "")
                fields[str(name)] = to_field_value(value)
        with self.store.lock:
            try:
                if method == "DELETE":
                    assert sys_id is not None
                    self.store.delete(table_name, sys_id)
                    return Response(204, b"")
                if method == "POST":
                    # Every column of the table exists on a new record, empty when not given,
                    # as on an instance (clients such as PySNC only set fields they have seen).
                    known = self.store.table(table_name)
                    for name in known.fields if known is not None else ():
                        if name not in READ_ONLY_ON_WRITE and name != "sys_id":
                            fields.setdefault(name, "")
                    row = self.store.insert(table_name, fields)
                else:
                    assert sys_id is not None
                    fields.pop("sys_id", None)
                    row = self.store.update(table_name, sys_id, fields)
            except KeyError:
                return json_response(404, RECORD_NOT_FOUND)
            except ValueError as exc:  # a sys_id that already exists
                return json_response(400, error_body("Operation Failed", str(exc)))
            table = self.store.table(table_name)
            assert table is not None
            base_url = self._base_url(headers)
            result = self._renderer(user, table, base_url, params).render(
                table.by_id[row["sys_id"]]
            )
        if method == "POST":
            location = f"{base_url}/api/now/table/{table_name}/{row['sys_id']}"
            return json_response(201, {"result": result}, (("Location", location),))
        return json_response(200, {"result": result})

    # -- Batch API ---------------------------------------------------------------------

    def _batch(self, headers: Headers, body: bytes) -> Response:
        """POST /api/now/v1/batch: run each of ``rest_requests`` as the batch's caller.

        Batch API reference: each item has an ``id``, ``method``, relative ``url`` (query
        included), optional ``headers`` [{name, value}] and a Base64 ``body``; the answer
        lists ``serviced_requests`` with the item's ``id``, ``status_code``,
        ``status_text``, ``headers``, Base64 ``body`` and ``execution_time`` (ms), plus
        ``unserviced_requests`` (always empty here: the emulator has no size limits).
        PySNC sends a GET this way once its URL passes ~10,000 characters (a long ``IN``).
        """
        user = self._user_or_401(headers)
        if isinstance(user, Response):
            return user
        try:
            payload = json.loads(body) if body.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return json_response(400, INVALID_JSON)
        if not isinstance(payload, dict) or not isinstance(payload.get("rest_requests"), list):
            return json_response(
                400, error_body("Bad Request", "rest_requests is required and must be an array")
            )
        serviced = [self._batch_item(headers, item) for item in payload["rest_requests"]]
        return json_response(
            200,
            {
                "batch_request_id": str(payload.get("batch_request_id", "")),
                "serviced_requests": serviced,
                "unserviced_requests": [],
            },
        )

    def _batch_item(self, outer: Headers, item: Any) -> dict[str, Any]:
        started = time.perf_counter()
        item = item if isinstance(item, dict) else {}
        url = str(item.get("url") or "")
        method = str(item.get("method") or "").upper()
        path, _, query = url.partition("?")
        headers = http.client.HTTPMessage()
        for name, value in outer.items():
            headers[name] = value
        for header in item.get("headers") or ():
            name = str(header.get("name", "")) if isinstance(header, dict) else ""
            # The batch authenticates once; an item cannot switch to another user.
            if name and name.lower() not in ("authorization", "content-length"):
                del headers[name]
                headers[name] = str(header.get("value", ""))
        try:
            sub_body = base64.b64decode(item.get("body") or "", validate=True)
        except (binascii.Error, ValueError):
            sub_body = None
        if not item.get("id") or not method or not path.startswith("/"):
            response = json_response(
                400, error_body("Bad Request", "each rest_request needs id, method and url")
            )
        elif sub_body is None:
            response = json_response(400, error_body("Bad Request", "body is not Base64"))
        elif BATCH_PATH.match(path):
            response = json_response(400, error_body("Bad Request", "a batch cannot nest"))
        else:
            try:
                response = self._route(headers, method, path, query, sub_body)
            except Exception:
                traceback.print_exc(file=sys.stderr)
                response = json_response(500, error_body("Internal emulator error", None))
            if path.startswith("/api/now/"):
                self._log(method, url, response.status)
        try:
            status_text = HTTPStatus(response.status).phrase
        except ValueError:
            status_text = ""
        served: dict[str, Any] = {
            "id": str(item.get("id", "")),
            "status_code": response.status,
            "status_text": status_text,
            "body": base64.b64encode(response.body).decode(),
            "execution_time": round((time.perf_counter() - started) * 1000),
        }
        if item.get("exclude_response_headers") is True:
            served["headers"] = []
        else:
            served["headers"] = [
                {"name": name, "value": value}
                for name, value in (("Content-Type", response.content_type), *response.headers)
            ]
        return served

    # -- Aggregate API -----------------------------------------------------------------

    def _aggregate(self, headers: Headers, table_name: str, query: str) -> Response:
        """GET /api/now/stats/{tableName} (Aggregate API reference): sysparm_count,
        sysparm_{avg,min,max,sum}_fields, sysparm_group_by, sysparm_having,
        sysparm_order_by, sysparm_display_value, sysparm_query and name-value pairs."""
        user = self._user_or_401(headers)
        if isinstance(user, Response):
            return user
        refusal = self._table_refusal(user, table_name)
        if refusal is not None:
            return refusal
        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, value)

        def names(raw: str) -> list[str]:
            return [f.strip() for f in raw.split(",") if f.strip()]

        count = _parse_bool(params.get("sysparm_count"))
        fields = {
            name: names(params.get(f"sysparm_{name}_fields", "")) for name in aggregate.AGGREGATES
        }
        group_by = names(params.get("sysparm_group_by", ""))
        display_value = (params.get("sysparm_display_value") or "false").strip().lower()
        try:
            having = aggregate.parse_having(params.get("sysparm_having", ""))
        except aggregate.AggregateError as exc:
            return json_response(400, error_body(str(exc), None))
        order = aggregate.parse_order(params.get("sysparm_order_by", ""))

        def getter_for(field: str) -> Callable[[Row], str]:
            return make_getter(self.store, self.reference_fields, field)

        with self.store.lock:
            table = self.store.table(table_name)
            assert table is not None
            compiled = self._compile(table, params)
            start, stop = table.index_range(compiled.lower, compiled.upper)
            predicate = compiled.predicate
            rows = [r for r in table.rows[start:stop] if predicate is None or predicate(r)]
            if not group_by:
                stats, _ = aggregate.compute_stats(
                    rows, count, fields, getter_for, self.numeric_fields
                )
                return json_response(200, {"result": {"stats": stats}})
            groups = aggregate.grouped_stats(
                rows, group_by, count, fields, having, order, getter_for, self.numeric_fields
            )
            display = self._display(table_name, self._date_display(user))
            result = []
            for key, stats in groups:
                described = []
                for field, value in zip(group_by, key, strict=True):
                    shown = display(field, value)
                    if display_value == "all":
                        described.append({"field": field, "value": value, "display_value": shown})
                    elif display_value == "true":
                        described.append({"field": field, "value": shown})
                    else:
                        described.append({"field": field, "value": value})
                result.append({"stats": stats, "groupby_fields": described})
        return json_response(200, {"result": result})

    # -- record pages ------------------------------------------------------------------

    def _display(self, table_name: str, dates: DateDisplay) -> Callable[[str, str], str]:
        """display_for bound to this instance's store, references, choices and dates:
        (field, stored value) -> the value as ServiceNow displays it."""
        return functools.partial(
            display_for,
            self.store,
            self.reference_fields,
            self.choices.get(table_name, {}),
            self.date_fields,
            dates,
        )

    def _record_page(self, table_name: str, sys_id: str) -> Response:
        """The HTML page behind ``nav_to.do?uri=<table>.do?sys_id=<id>`` links."""
        with self.store.lock:
            table = self.store.table(table_name)
            row = table.by_id.get(sys_id) if table is not None else None
            if row is None:
                return Response(404, pages.not_found_page(table_name, sys_id), HTML_TYPE)
            dates = DateDisplay(time_zone(self.time_zone), self.date_format)
            shown = self._display(table_name, dates)
            page = pages.record_page(table_name, dict(row), shown, self.reference_fields)
        return Response(200, page, HTML_TYPE)

    def _plan_edits(self, state: FaultState, table: Table) -> list[str]:
        fault = state.faults.edit_between_pages
        if fault is None or (fault.table is not None and fault.table != table.name):
            return []
        if not table.by_id or not state.count("edit_between_pages"):
            return []
        ids = list(table.by_id)
        with state.lock:
            return state.rng.sample(ids, min(fault.rows, len(ids)))

    def _apply_edits(self, table_name: str, sys_ids: list[str]) -> None:
        for sys_id in sys_ids:
            current = self.store.get(table_name, sys_id)
            if current is None:
                continue
            base = current.get("short_description", "").split(" [edited ", 1)[0]
            mod_count = int(current.get("sys_mod_count") or "0") + 1
            self.store.update(
                table_name, sys_id, {"short_description": f"{base} [edited {mod_count}]"}
            )

    # -- control API -------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Response:
        try:
            payload = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            return json_response(400, error_body("Invalid JSON body", str(exc)))
        try:
            return self._control_route(method, path, payload)
        except (ValueError, TypeError) as exc:
            return json_response(400, error_body("Bad request", str(exc)))
        except KeyError as exc:
            return json_response(404, error_body("Not found", str(exc.args[0] if exc.args else "")))

    def _control_route(self, method: str, path: str, payload: Any) -> Response:
        if path == "/__emulator__/faults":
            if method == "POST":
                self.set_faults_dict(payload)
            return json_response(200, {"result": self.faults.to_dict()})
        if path == "/__emulator__/latency":
            if method == "POST":
                if not isinstance(payload, dict):
                    raise ValueError('body must be {"latency_ms": N, "jitter_ms": N}')
                self.set_latency(payload.get("latency_ms", 0), payload.get("jitter_ms", 0))
            latency = {"latency_ms": self.latency_ms, "jitter_ms": self.latency_jitter_ms}
            return json_response(200, {"result": latency})
        if path == "/__emulator__/stats" and method == "GET":
            return json_response(200, {"result": self.stats()})
        if path == "/__emulator__/reset_log" and method == "POST":
            self.clear_log()
            return Response(204, b"")
        match = CONTROL_BULK_PATH.match(path)
        if match and method == "POST":
            if not isinstance(payload, dict) or not isinstance(payload.get("sys_ids"), list):
                raise ValueError('body must be {"sys_ids": [...], "set": {...}}')
            updated = self.store.bulk_update(
                unquote(match["table"]), payload["sys_ids"], payload.get("set") or {}
            )
            return json_response(200, {"result": {"updated": updated}})
        match = CONTROL_ROWS_PATH.match(path)
        if match:
            table = unquote(match["table"])
            sys_id = unquote(match["sys_id"]) if match["sys_id"] else None
            if sys_id is None and method == "GET":
                return json_response(200, {"result": self.store.rows(table)})
            if sys_id is None and method == "POST":
                if not isinstance(payload, dict):
                    raise ValueError("body must be a JSON object of fields")
                return json_response(201, {"result": self.store.insert(table, payload)})
            if sys_id is not None and method == "GET":
                row = self.store.get(table, sys_id)
                if row is None:
                    raise KeyError(f"no row {sys_id} in {table}")
                return json_response(200, {"result": row})
            if sys_id is not None and method in ("PATCH", "PUT"):
                if not isinstance(payload, dict):
                    raise ValueError("body must be a JSON object of fields")
                return json_response(200, {"result": self.store.update(table, sys_id, payload)})
            if sys_id is not None and method == "DELETE":
                self.store.delete(table, sys_id)
                return Response(204, b"")
        return json_response(404, error_body("Not found", f"{method} {path}"))
