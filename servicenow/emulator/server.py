"""HTTP front of the ServiceNow emulator: Table API, OAuth token endpoint, control API.

:class:`Emulator` owns a :class:`~servicenow.emulator.store.Store`, the credentials and
tokens, the active faults and a request log, and serves them from a
``ThreadingHTTPServer`` on a background thread. Responses follow ServiceNow's wire
format (status codes, error bodies, ``X-Total-Count`` and ``Link`` headers) closely
enough for a real client to be tested against it. Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
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

from .encoded_query import CompiledQuery, OrderBy, compile_query, parse_encoded_query
from .faults import Faults, FaultState
from .render import RowRenderer, make_getter
from .store import Row, Store, Table

JSON_TYPE = "application/json;charset=UTF-8"
HTML_TYPE = "text/html;charset=UTF-8"
DEFAULT_LIMIT = 10000

DEFAULT_REFERENCE_FIELDS: dict[str, str] = {
    "assigned_to": "sys_user",
    "opened_by": "sys_user",
    "caller_id": "sys_user",
    "resolved_by": "sys_user",
    "manager": "sys_user",
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


@dataclass
class _Token:
    user_name: str
    expires_at: float


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
        try:
            response = emulator._route(self, self.command, path, query, body)
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
    ) -> None:
        self.host = host
        # (certificate chain PEM path, private key PEM path): serve https instead of http.
        self.tls = tls
        self._requested_port = port
        self.token_ttl = token_ttl
        self.store = Store(dataset.get("tables") or {}, clock=clock)
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
        self._tokens: dict[str, _Token] = {}
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

    def _route(
        self, handler: _Handler, method: str, path: str, query: str, body: bytes
    ) -> Response:
        if path == "/oauth_token.do":
            if method != "POST":
                return json_response(405, error_body("Method not Supported", None))
            return self._oauth(body)
        if path.startswith("/__emulator__/"):
            return self._control(method, path, body)
        if path.startswith("/api/now/"):
            match = TABLE_PATH.match(path)
            if match is None:
                return json_response(
                    400,
                    error_body(f"Requested URI does not represent any resource: {path}", None),
                )
            if method not in ("GET", "HEAD"):
                return json_response(
                    405, error_body("Method not Supported", "The emulator serves GET only")
                )
            return self._table_get(
                handler,
                match["version"],
                unquote(match["table"]),
                unquote(match["sys_id"]) if match["sys_id"] else None,
                path,
                query,
            )
        return json_response(404, error_body("Not found", path))

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

    def _issue_tokens(self, user_name: str, client_id: str, refresh: str | None) -> Response:
        access = secrets.token_urlsafe(64)
        refresh = refresh or secrets.token_urlsafe(64)
        with self._auth_lock:
            self._tokens[access] = _Token(user_name, self.clock().timestamp() + self.token_ttl)
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

    def _oauth(self, body: bytes) -> Response:
        denied = json_response(401, OAUTH_DENIED)
        # ServiceNow only reads form fields: a JSON body simply yields no grant_type.
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
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
            return self._issue_tokens(user["user_name"], client_id, None)
        if grant == "client_credentials":
            if self._first_user is None:
                return denied
            return self._issue_tokens(self._first_user, client_id, None)
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
        handler: _Handler,
        version: str | None,
        table_name: str,
        sys_id: str | None,
        path: str,
        query: str,
    ) -> Response:
        user = self._authenticate(handler.headers.get("Authorization", ""))
        if user is None:
            return json_response(
                401, NOT_AUTHENTICATED, (("WWW-Authenticate", 'BASIC realm="Service-now"'),)
            )
        state = self._fault_state
        injected = self._request_faults(state)
        if injected is not None:
            return injected
        if not self.store.has_table(table_name):
            return json_response(400, error_body(f"Invalid table {table_name}", None))
        if table_name in (user.get("forbidden_tables") or ()):
            return json_response(403, NOT_AUTHORIZED)

        params: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True):
            params.setdefault(name, value)  # first occurrence wins
        try:
            limit = _parse_int(params, "sysparm_limit", DEFAULT_LIMIT, 1)
            offset = _parse_int(params, "sysparm_offset", 0, 0)
        except BadRequest as exc:
            return json_response(400, error_body(str(exc), None))
        display_value = (params.get("sysparm_display_value") or "false").strip().lower()
        if display_value not in ("true", "all"):
            display_value = "false"
        raw_fields = params.get("sysparm_fields", "")
        fields = [f.strip() for f in raw_fields.split(",") if f.strip()] or None
        exclude_links = _parse_bool(params.get("sysparm_exclude_reference_link"))

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
            renderer = RowRenderer(
                self.store,
                self.url,
                self.reference_fields,
                table.fields,
                fields,
                display_value,
                exclude_links,
            )
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

            compiled = compile_query(
                parse_encoded_query(params.get("sysparm_query", "")),
                table.fields,
                lambda field: make_getter(self.store, self.reference_fields, field),
                self.numeric_fields,
            )
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
                ("Link", self._link_header(path, query, offset, limit, total, full_page))
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
            return f'<{self.url}{path}?{encoded}>;rel="{rel}"'

        links = [link(0, "first")]
        if offset > 0:
            links.append(link(max(0, offset - limit), "prev"))
        has_next = offset + limit < total if total is not None else full_page
        if has_next:
            links.append(link(offset + limit, "next"))
        if total is not None:
            links.append(link(max(0, (total - 1) // limit * limit), "last"))
        return ",".join(links)

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
