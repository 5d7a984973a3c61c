"""Client for the ServiceNow Table API: one configured ``requests`` session, typed errors.

Shaped like HackSoft's ``integrations/aws/client.py``: settings are checked once
(``ClientConfig``), then small methods use one session. Transport concerns live here and
nowhere else:

- retries on 429/500/502/503/504 and connection errors through urllib3 ``Retry`` (GET only;
  the OAuth token POST is retried only when the connection never opened), honouring
  ``Retry-After`` but never longer than ``retry_after_cap``, with exponential backoff plus
  jitter, and connect/read timeouts on every request;
- basic auth, or OAuth (``POST /oauth_token.do``, form-encoded, password or
  client_credentials grant) with the token cached, refreshed before expiry and
  re-authenticated once on a 401;
- TLS verification, a per-connection CA certificate and proxy, never overridden by the
  environment (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``.netrc``): the session does
  not trust the environment, and only ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are read
  on purpose, when the connection names no proxy;
- the outbound policy (``servicenow.outbound``): the instance URL is checked when the
  config is built and every address is checked again when a connection opens, before
  anything is sent;
- ServiceNow's ``{"error": {"message", "detail"}, "status": "failure"}`` bodies and the
  non-JSON answers of a hibernating instance mapped to ``ServiceNowError`` subclasses whose
  ``transient`` flag tells the caller whether trying the operation again later may work.

Secrets (password, client secret, tokens) never reach a log line, an exception text or a
repr. It imports nothing from Django.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import certifi
import requests
from cryptography import x509
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth
from requests.utils import get_environ_proxies
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.retry import Retry

from .outbound import (
    OutboundPolicy,
    OutboundRefused,
    guarded_pool_classes,
    instance_url_policy_problem,
    proxy_url_problem,
)

__all__ = [
    "AuthenticationError",
    "AuthorizationError",
    "BadRequestError",
    "ClientConfig",
    "ConfigurationError",
    "ConnectionFailedError",
    "InstanceUnavailableError",
    "NotFoundError",
    "OutboundRefusedError",
    "Page",
    "RateLimitedError",
    "ServerError",
    "ServiceNowClient",
    "ServiceNowError",
    "TokenCache",
    "TransactionCancelledError",
    "UnexpectedResponseError",
    "ca_certificate_problem",
    "field_display",
    "field_value",
]

logger = logging.getLogger(__name__)

AUTH_TYPES = frozenset({"basic", "oauth_password", "oauth_client_credentials"})
DISPLAY_VALUES = frozenset({"true", "false", "all"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NO_RESPONSE = "error"  # the status_counts key of a request that got no HTTP answer
TOKEN_PATH = "/oauth_token.do"
# ServiceNow's documented default lifespan, used when a token response omits expires_in.
DEFAULT_TOKEN_LIFETIME = 1800.0
# Table names and sys_ids go into the URL path; anything else could escape it.
_PATH_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_]+$")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_CANCELLED_RE = re.compile(r'"message"\s*:\s*"(Transaction cancelled[^"]*)"')
# A CA bundle of a few certificates is a few KB; far more is a paste gone wrong.
CA_CERTIFICATE_MAX_CHARS = 64 * 1024
_PEM_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")


# --- configuration ------------------------------------------------------------------------


def instance_url_problem(url: str) -> str | None:
    """Why the client would refuse this instance URL (None: it would not). Credentials in
    it would leak into every log line and error message; a query or fragment would break
    every request path."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Must be an http(s) URL such as https://acme.service-now.com."
    if parts.username is not None or parts.password is not None:
        return "Must not contain credentials; use username and password."
    if parts.query or parts.fragment:
        return "Must not have a query string or fragment."
    return None


def ca_certificate_problem(pem: str) -> str | None:
    """Why this text is not a usable CA certificate bundle (None: it is). It is shown back
    in the API and the admin, so it must hold certificates only, never a key."""
    if len(pem) > CA_CERTIFICATE_MAX_CHARS:
        return f"Too long ({len(pem)} characters; at most {CA_CERTIFICATE_MAX_CHARS})."
    kinds = set(_PEM_BLOCK_RE.findall(pem))
    if any("PRIVATE KEY" in kind for kind in kinds):
        return "Contains a private key; paste only the CA certificate (it is shown back)."
    if kinds != {"CERTIFICATE"}:
        return "Must be one or more PEM certificates (-----BEGIN CERTIFICATE----- blocks)."
    try:
        x509.load_pem_x509_certificates(pem.encode("ascii"))
        ssl.create_default_context(cadata=pem)
    except (ValueError, UnicodeEncodeError, ssl.SSLError):
        return "Not a valid PEM certificate: the base64 between the BEGIN/END lines is damaged."
    return None


@dataclass(frozen=True)
class ClientConfig:
    """How to reach one ServiceNow instance. Validated once, when built."""

    instance_url: str  # "https://acme.service-now.com" or "http://127.0.0.1:8001"
    auth_type: str = "basic"  # "basic" | "oauth_password" | "oauth_client_credentials"
    username: str = ""
    password: str = field(default="", repr=False)
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    verify_tls: bool = True
    # PEM text of the CA (or CAs) to trust besides the public ones (certifi), e.g. a
    # corporate CA that signs an on-premise instance or a TLS-inspecting proxy.
    ca_certificate: str = field(default="", repr=False)
    proxy_url: str = ""  # "http://proxy.example.com:3128"; empty: HTTPS_PROXY, if set
    # Plain http, loopback and private addresses (SERVICENOW_ALLOW_LOCAL_INSTANCES).
    allow_local: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_retries: int = 4  # for 429/500/502/503/504 and connection errors
    backoff_factor: float = 0.5  # exponential, with jitter
    backoff_max: float = 30.0
    retry_after_cap: float = 60.0  # Retry-After honoured but never longer than this
    api_path: str = "/api/now/table"  # or "/api/now/v1/table", "/api/now/v2/table"
    token_refresh_margin: float = 60.0  # refresh the OAuth token this long before expiry
    user_agent: str = "ladder-tracker/1"

    def __post_init__(self) -> None:
        # Missing credentials are left to the instance to refuse (a clear 401); only what
        # would make requests go to the wrong place, or leak, is refused here.
        if problem := instance_url_problem(self.instance_url):
            raise ConfigurationError(f"instance_url: {problem}")
        if problem := instance_url_policy_problem(self.instance_url, allow_local=self.allow_local):
            raise OutboundRefusedError(f"instance_url: {problem}")
        if self.proxy_url and (problem := proxy_url_problem(self.proxy_url)):
            raise ConfigurationError(f"proxy_url: {problem}")
        if self.ca_certificate and (problem := ca_certificate_problem(self.ca_certificate)):
            raise ConfigurationError(f"ca_certificate: {problem}")
        object.__setattr__(self, "instance_url", self.instance_url.rstrip("/"))
        if self.auth_type not in AUTH_TYPES:
            raise ConfigurationError(f"auth_type must be one of {sorted(AUTH_TYPES)}")
        if not self.api_path.startswith("/") or "?" in self.api_path:
            raise ConfigurationError("api_path must be a path starting with '/'")
        object.__setattr__(self, "api_path", self.api_path.rstrip("/"))
        if self.max_retries < 0 or self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigurationError("max_retries must be >= 0 and timeouts > 0")

    @property
    def uses_oauth(self) -> bool:
        return self.auth_type != "basic"


# --- results and errors -------------------------------------------------------------------


@dataclass
class Page:
    """One Table API page, as returned."""

    rows: list[dict]  # raw rows (values may be str or dicts, depending on the sysparms)
    total_count: int | None  # X-Total-Count when present
    links: dict[str, str]  # parsed Link header rel -> url (may be empty)
    requested_limit: int


class ServiceNowError(Exception):
    """Base of every error this client raises.

    ``status_code`` is the HTTP status when a response arrived (None otherwise);
    ``transient`` says whether running the same operation again later could succeed.
    """

    transient: bool = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        table: str | None = None,
        transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.table = table
        if transient is not None:
            self.transient = transient


class ConfigurationError(ServiceNowError, ValueError):
    """The settings themselves are unusable (raised by ``ClientConfig``)."""


class OutboundRefusedError(ConfigurationError):
    """The outbound policy refuses the destination (``servicenow.outbound``): nothing was
    sent. Raised when the config is built, and when a connection opens (the name may
    resolve to a refused address by then)."""


class BadRequestError(ServiceNowError):
    """400, e.g. an invalid table. Retrying the same request cannot help."""


class AuthenticationError(ServiceNowError):
    """401, or an OAuth grant the instance refused."""


class AuthorizationError(ServiceNowError):
    """403: authenticated, but ACLs or roles forbid this read."""


class NotFoundError(ServiceNowError):
    """404 other than the Table API's empty-result "No Record found"."""


class TransactionCancelledError(ServiceNowError):
    """The instance cancelled the query as too slow; ask again with a smaller page."""

    transient = True


class RateLimitedError(ServiceNowError):
    """429 still returned after the retries."""

    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(ServiceNowError):
    """5xx still returned after the retries."""

    transient = True


class InstanceUnavailableError(ServiceNowError):
    """A body that is HTML or not JSON at all, as a hibernating instance sends."""

    transient = True


class ConnectionFailedError(ServiceNowError):
    """No HTTP response: connection refused, DNS, TLS, or timeouts after the retries."""

    transient = True


class UnexpectedResponseError(ServiceNowError):
    """JSON without "result", or a status this client does not expect."""


# --- field values -------------------------------------------------------------------------


def record_url(instance_url: str, table: str, sys_id: str) -> str:
    """The record's page on the instance."""
    return f"{instance_url.rstrip('/')}/nav_to.do?uri={table}.do?sys_id={sys_id}"


def field_value(value: Any) -> str:
    """The raw (database) value of a Table API field, whatever shape it came in.

    Handles plain strings, ``{"link", "value"}`` (reference links),
    ``{"display_value", "value"[, "link"]}`` (``sysparm_display_value=all``),
    ``{"display_value", "link"}`` (``display_value=true``: the sys_id is the link's last
    segment) and ``None``.
    """
    if type(value) is str:  # the common case first: most fields of most rows
        return value
    if value is None:
        return ""
    if isinstance(value, Mapping):
        inner = value.get("value")
        if inner is not None:
            return str(inner)
        link = value.get("link")
        if isinstance(link, str) and link:
            return link.rstrip("/").rsplit("/", 1)[-1]
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_display(value: Any) -> str:
    """The display value when the field carries one, else the raw value."""
    if isinstance(value, Mapping):
        display = value.get("display_value")
        if display is not None:
            return str(display)
    return field_value(value)


# --- OAuth token cache --------------------------------------------------------------------


@dataclass
class TokenCache:
    """An OAuth token, shareable between clients of one connection (thread-safe).

    ``expires_at`` is on the clock of the client that stored it (``time.monotonic`` unless
    a ``clock`` was injected).
    """

    access_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: float = 0.0
    lifetime: float = 0.0  # seconds the current token was granted for
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    def is_fresh(self, now: float, margin: float) -> bool:
        # A margin longer than the token's life would refresh on every request.
        margin = min(margin, self.lifetime / 2)
        return bool(self.access_token) and now < self.expires_at - margin

    def clear(self) -> None:
        self.access_token = ""
        self.refresh_token = ""
        self.expires_at = 0.0
        self.lifetime = 0.0


# --- transport ----------------------------------------------------------------------------


class _CappedRetry(Retry):
    """urllib3 ``Retry`` that caps Retry-After, sleeps through an injectable function and
    reports each retry (so the client can count the requests it really sent).

    urllib3 rebuilds the object on every attempt through ``new()``, so the extra settings
    are carried along there.
    """

    def __init__(
        self,
        *args: Any,
        retry_after_cap: float = 60.0,
        sleeper: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str | None, int | None, Exception | None], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after_cap = retry_after_cap
        self.sleeper = sleeper
        self.on_retry = on_retry

    def new(self, **kw: Any) -> _CappedRetry:
        kw.setdefault("retry_after_cap", self.retry_after_cap)
        kw.setdefault("sleeper", self.sleeper)
        kw.setdefault("on_retry", self.on_retry)
        return super().new(**kw)

    def parse_retry_after(self, retry_after: str) -> float:
        # A misbehaving proxy can ask for hours; a sync run would rather fail and be retried.
        return min(super().parse_retry_after(retry_after), self.retry_after_cap)

    def sleep(self, response: Any = None) -> None:
        # urllib3's policy (Retry-After first, else backoff), but through self.sleeper.
        delay: float | None = None
        if self.respect_retry_after_header and response is not None:
            delay = self.get_retry_after(response)
        if not delay:
            delay = self.get_backoff_time()
        if delay > 0:
            self.sleeper(delay)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> _CappedRetry:
        new = super().increment(method, url, response, error, *args, **kwargs)
        # Only reached when another attempt will be sent: exhaustion raises above.
        if self.on_retry is not None:
            self.on_retry(method, getattr(response, "status", None), error)
        return new  # type: ignore[return-value]


class _GuardedAdapter(HTTPAdapter):
    """An adapter whose connections follow the outbound policy (direct and through a
    proxy) and, when given one, verify TLS with ``ssl_context``."""

    def __init__(
        self, *, policy: OutboundPolicy, ssl_context: ssl.SSLContext | None, **kwargs: Any
    ) -> None:
        self._pool_classes = guarded_pool_classes(policy)
        self._ssl_context = ssl_context
        super().__init__(**kwargs)

    def _tls_kwargs(self) -> dict[str, Any]:
        return {"ssl_context": self._ssl_context} if self._ssl_context is not None else {}

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        super().init_poolmanager(*args, **self._tls_kwargs(), **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pool_classes

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if proxy in self.proxy_manager:
            return self.proxy_manager[proxy]
        manager = super().proxy_manager_for(proxy, **self._tls_kwargs(), **proxy_kwargs)
        manager.pool_classes_by_scheme = self._pool_classes
        return manager


class _BearerAuth(AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth>"


class _NoAuth(AuthBase):
    """Explicitly no auth, so requests does not fall back to ~/.netrc credentials."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


# --- the client ---------------------------------------------------------------------------


class ServiceNowClient:
    """Reads from one ServiceNow instance's Table API.

    ``session`` lets a caller supply its own ``requests.Session`` (the retrying adapter is
    mounted on it, and closing the client leaves it open); ``token_cache`` lets clients of
    one connection share an OAuth token; ``clock`` (monotonic seconds, for token expiry)
    and ``sleep`` (for retry waits) are injectable for tests. ``request_count`` counts the
    Table API and OAuth HTTP requests actually sent, retries included; ``status_counts``
    splits them by the status code that came back (``"error"``: no response at all), and
    ``retry_counts`` counts the retries by the status (or ``"error"``) that caused them, so
    ``sum(status_counts.values()) == request_count``.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        session: requests.Session | None = None,
        token_cache: TokenCache | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.request_count = 0
        self.status_counts: Counter[str] = Counter()
        self.retry_counts: Counter[str] = Counter()
        self._clock = clock
        self._tokens = token_cache if token_cache is not None else TokenCache()
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()

        retry = _CappedRetry(
            total=config.max_retries,
            connect=config.max_retries,
            read=config.max_retries,
            status=config.max_retries,
            status_forcelist=RETRY_STATUSES,
            # Each token POST mints a token, so it is not retried on a status or after the
            # request went out; urllib3 still retries it when the connection never opened.
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            backoff_factor=config.backoff_factor,
            # Plus up to backoff_factor seconds at random, so parallel source runs spread out.
            backoff_jitter=config.backoff_factor,
            backoff_max=config.backoff_max,
            # Hand us the final response: we map it with ServiceNow's error body.
            raise_on_status=False,
            retry_after_cap=config.retry_after_cap,
            sleeper=sleep,
            on_retry=self._on_retry,
        )
        # requests lets the environment override session.verify (REQUESTS_CA_BUNDLE) and
        # supply credentials (.netrc); the connection's own settings must win, so the session
        # trusts nothing from the environment and the proxy is chosen here.
        self._session.trust_env = False
        self._proxies = self._choose_proxies()
        proxy = self._proxies.get(urlsplit(config.instance_url).scheme, "")
        self._policy = OutboundPolicy(
            allow_local=config.allow_local, proxy_host=urlsplit(proxy).hostname if proxy else None
        )
        ssl_context = None
        if config.verify_tls and config.ca_certificate:
            # The public CAs plus the connection's own (requests adds certifi again per
            # connection; loading it twice is harmless).
            ssl_context = ssl.create_default_context(cafile=certifi.where())
            ssl_context.load_verify_locations(cadata=config.ca_certificate)
        adapter = _GuardedAdapter(policy=self._policy, ssl_context=ssl_context, max_retries=retry)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": config.user_agent}
        )
        self._session.verify = config.verify_tls
        if not config.uses_oauth:
            self._session.auth = HTTPBasicAuth(config.username, config.password)

    def _choose_proxies(self) -> dict[str, str]:
        """The connection's proxy, else the environment's (HTTPS_PROXY, HTTP_PROXY,
        NO_PROXY) read on purpose, since the session itself ignores the environment."""
        if self.config.proxy_url:
            return {"http": self.config.proxy_url, "https": self.config.proxy_url}
        proxies = get_environ_proxies(self.config.instance_url)
        scheme = urlsplit(self.config.instance_url).scheme
        chosen = proxies.get(scheme) or proxies.get("all") or ""
        if not chosen:
            return {}
        # The environment's URL may carry credentials (never shown anywhere); the scheme
        # and host rules are the same as for a configured proxy.
        parts = urlsplit(chosen if "://" in chosen else f"http://{chosen}")
        bare = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        if problem := proxy_url_problem(bare):
            raise ConfigurationError(f"proxy from the environment ({scheme}_proxy): {problem}")
        return {scheme: chosen}

    # -- public API ------------------------------------------------------------------------

    def get_page(
        self,
        table: str,
        *,
        query: str = "",
        fields: Sequence[str] = (),
        limit: int = 1000,
        offset: int | None = None,
        count: bool = False,
        display_value: str = "false",
        exclude_reference_link: bool = True,
    ) -> Page:
        """One page of ``table`` matching the encoded ``query``.

        An empty result is an empty ``Page`` whichever way the API version says it (v2:
        200 with ``[]``; v1: 404 "No Record found", which also gives ``total_count=0``).
        """
        _check_path_segment(table, "table name")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if offset is not None and offset < 0:
            raise ValueError("offset must not be negative")
        if display_value not in DISPLAY_VALUES:
            raise ValueError(f"display_value must be one of {sorted(DISPLAY_VALUES)}")
        params: dict[str, str] = {"sysparm_query": query}
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        params["sysparm_limit"] = str(limit)
        if offset is not None:
            params["sysparm_offset"] = str(offset)
        params["sysparm_display_value"] = display_value
        params["sysparm_exclude_reference_link"] = "true" if exclude_reference_link else "false"
        params["sysparm_no_count"] = "false" if count else "true"
        if not count:
            # We page by keyset, not by the Link header's offsets.
            params["sysparm_suppress_pagination_header"] = "true"

        response, body = self._get(table, self._table_url(table), params)
        if body is None:  # v1 "No Record found"
            return Page(rows=[], total_count=0, links={}, requested_limit=limit)
        rows = body["result"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise self._error(
                UnexpectedResponseError,
                f'{response.status_code} "result" is not a list of records',
                response.status_code,
                table,
            )
        total = (response.headers.get("X-Total-Count") or "").strip()
        links = {
            str(rel): str(link.get("url", ""))
            for rel, link in response.links.items()
            if isinstance(link, Mapping)
        }
        return Page(
            rows=rows,
            total_count=int(total) if total.isdigit() else None,
            links=links,
            requested_limit=limit,
        )

    def get_record(self, table: str, sys_id: str, *, fields: Sequence[str] = ()) -> dict | None:
        """One record by sys_id (raw values, no reference links), or None if it is gone."""
        _check_path_segment(table, "table name")
        _check_path_segment(sys_id, "sys_id")
        params = {"sysparm_exclude_reference_link": "true"}
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        response, body = self._get(table, f"{self._table_url(table)}/{sys_id}", params)
        if body is None:
            return None
        record = body["result"]
        if isinstance(record, list):  # a query-style answer; take its only record
            record = record[0] if record else None
        if record is not None and not isinstance(record, dict):
            raise self._error(
                UnexpectedResponseError,
                f'{response.status_code} "result" is not a record',
                response.status_code,
                table,
            )
        return record

    def check(self) -> dict:
        """Test the connection: authenticate (OAuth when configured), read one sys_user id.

        Returns ``{"reachable", "authenticated", "elapsed_ms", "api"}``; raises the typed
        errors otherwise.
        """
        started = time.perf_counter()
        self._get(
            "sys_user",
            self._table_url("sys_user"),
            {"sysparm_limit": "1", "sysparm_fields": "sys_id"},
        )
        return {
            "reachable": True,
            "authenticated": True,
            "elapsed_ms": int((time.perf_counter() - started) * 1000),
            "api": self.config.api_path,
        }

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ServiceNowClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ServiceNowClient {self.config.instance_url} auth={self.config.auth_type}>"

    # -- Table API -------------------------------------------------------------------------

    def _table_url(self, table: str) -> str:
        return f"{self.config.instance_url}{self.config.api_path}/{table}"

    def _get(
        self, table: str, url: str, params: Mapping[str, str]
    ) -> tuple[requests.Response, dict | None]:
        """GET and map the answer: ``(response, body)``, body None for "No Record found"."""
        reauthenticated = False
        while True:
            auth: AuthBase | None = None
            token = ""
            if self.config.uses_oauth:
                token = self._access_token()
                auth = _BearerAuth(token)
            started = time.perf_counter()
            response = self._send("GET", url, table=table, params=params, auth=auth)
            if response.status_code == 401 and self.config.uses_oauth and not reauthenticated:
                self._log_request("GET", table, response, started)
                # Tokens can be revoked or expire early (instance restart, clock skew): one
                # fresh grant, one more try. A second 401 is a real authentication failure.
                logger.warning("ServiceNow GET %s got 401; re-authenticating once", table)
                self._reauthenticate(stale_token=token)
                reauthenticated = True
                continue
            body: dict | None = None
            try:
                body = self._parse_table_response(response, table)
            finally:
                self._log_request("GET", table, response, started, body)
            return response, body

    def _parse_table_response(self, response: requests.Response, table: str) -> dict | None:
        status = response.status_code
        body, text = _json_object(response)
        if body is None:
            raise self._non_json_error(response, text, table=table)
        message, detail = _error_parts(body.get("error"))
        if message.startswith("Transaction cancelled"):
            # Also on a 200: the instance appends this to a result it cut short, so the rows
            # that did arrive must not be taken for the whole page.
            raise self._error(
                TransactionCancelledError, _describe(status, message, detail), status, table
            )
        if 200 <= status < 300:
            if "result" not in body:
                raise self._error(
                    UnexpectedResponseError,
                    f'{status} JSON without "result" ({_describe_keys(body)})',
                    status,
                    table,
                )
            return body
        if status == 404 and message.strip().lower() == "no record found":
            return None
        text = _describe(status, message or response.reason or "", detail)
        raise self._status_error(response, text, table=table)

    # -- OAuth -----------------------------------------------------------------------------

    def _access_token(self) -> str:
        cache = self._tokens
        with cache.lock:
            if cache.is_fresh(self._clock(), self.config.token_refresh_margin):
                return cache.access_token
            if cache.refresh_token:
                try:
                    self._grant(
                        {"grant_type": "refresh_token", "refresh_token": cache.refresh_token}
                    )
                    return cache.access_token
                except AuthenticationError:
                    # Refresh tokens expire too; a new grant may still work.
                    logger.info("ServiceNow OAuth refresh refused; requesting a new grant")
            self._new_grant()
            return cache.access_token

    def _reauthenticate(self, *, stale_token: str) -> None:
        cache = self._tokens
        with cache.lock:
            # Another client sharing this cache may already have replaced the stale token.
            if cache.access_token and cache.access_token != stale_token:
                return
            cache.clear()
            self._new_grant()

    def _new_grant(self) -> None:
        if self.config.auth_type == "oauth_password":
            form = {
                "grant_type": "password",
                "username": self.config.username,
                "password": self.config.password,
            }
        else:
            form = {"grant_type": "client_credentials"}
        self._grant(form)

    def _grant(self, form: dict[str, str]) -> None:
        grant_type = form["grant_type"]
        data = {
            **form,
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        }
        context = f"OAuth {grant_type} grant"
        started = time.perf_counter()
        response = self._send(
            "POST",
            f"{self.config.instance_url}{TOKEN_PATH}",
            context=context,
            data=data,
            # The client authenticates in the form body; no basic auth, no bearer, no netrc.
            auth=_NoAuth(),
        )
        self._log_request("POST", "oauth_token.do", response, started)
        status = response.status_code
        body, text = _json_object(response)
        if body is None:
            raise self._non_json_error(response, text, context=context)
        token = body.get("access_token")
        if status == 200 and isinstance(token, str) and token:
            try:
                lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
            except (TypeError, ValueError):
                lifetime = DEFAULT_TOKEN_LIFETIME
            cache = self._tokens
            cache.access_token = token
            # A refresh grant need not return a new refresh token; keep the one we have.
            cache.refresh_token = str(body.get("refresh_token") or form.get("refresh_token") or "")
            cache.expires_at = self._clock() + lifetime
            cache.lifetime = lifetime
            return
        if 200 <= status < 300:
            raise self._error(
                UnexpectedResponseError,
                f"{context}: {status} answer without an access_token ({_describe_keys(body)})",
                status,
                None,
            )
        error = body.get("error")
        if isinstance(error, Mapping):  # ServiceNow's own error shape
            message, detail = _error_parts(error)
        else:  # OAuth's {"error": "...", "error_description": "..."}
            message = str(error or response.reason or "")
            detail = str(body.get("error_description") or "")
        text = _describe(status, message, detail)
        if status == 429 or status >= 500:
            raise self._status_error(response, text, context=context)
        raise self._error(AuthenticationError, f"{context} refused: {text}", status, None)

    # -- transport, logging and error mapping ----------------------------------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        table: str | None = None,
        context: str = "",
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: AuthBase | None = None,
    ) -> requests.Response:
        failure: ServiceNowError | None = None
        try:
            if self._policy.proxy_host is not None:
                # The proxy resolves the instance; check what it resolves to from here too.
                parts = urlsplit(url)
                self._policy.instance_precheck(parts.hostname or "", parts.port or 443)
            self.request_count += 1
            response = self._session.request(
                method,
                url,
                params=params,
                data=data,
                auth=auth,
                proxies=self._proxies,
                timeout=(self.config.connect_timeout, self.config.read_timeout),
            )
        except OutboundRefused as exc:
            # Raised before the connection opened: nothing was sent.
            prefix = f"{context}: " if context else ""
            failure = self._error(OutboundRefusedError, f"{prefix}{exc}", None, table)
        except requests.RequestException as exc:
            self.status_counts[NO_RESPONSE] += 1
            failure = self._connection_error(exc, table=table, context=context)
        else:
            self.status_counts[str(response.status_code)] += 1
        # Raised outside the except block, so the requests exception (which quotes request
        # details) is neither the __cause__ nor the __context__ of ours.
        if failure is not None:
            raise failure
        return response

    def _log_request(
        self,
        method: str,
        what: str,
        response: requests.Response,
        started: float,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        result = body.get("result") if body is not None else None
        rows = f", {len(result)} rows" if isinstance(result, list) else ""
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        logger.debug(
            "ServiceNow %s %s -> %s in %d ms%s",
            method,
            what,
            response.status_code,
            elapsed_ms,
            rows,
        )

    def _on_retry(self, method: str | None, status: int | None, error: Exception | None) -> None:
        # The answer (or failure) that made urllib3 retry was a request of its own.
        self.request_count += 1
        key = str(status) if status is not None else NO_RESPONSE
        self.status_counts[key] += 1
        self.retry_counts[key] += 1
        reason = f"status {status}" if status is not None else type(error).__name__
        logger.warning("ServiceNow %s retrying after %s", method or "request", reason)

    def _connection_error(
        self, exc: requests.RequestException, *, table: str | None, context: str
    ) -> ServiceNowError:
        host = urlsplit(self.config.instance_url).netloc
        inner = _innermost(exc)
        reason = _reason_text(inner)
        prefix = f"{context}: " if context else ""
        # After the retries requests wraps most failures in ConnectionError; the innermost
        # urllib3 error says what really happened. NewConnectionError subclasses
        # ConnectTimeoutError, hence the explicit exclusion.
        timed_out = isinstance(exc, requests.exceptions.Timeout) or (
            isinstance(inner, ReadTimeoutError | ConnectTimeoutError)
            and not isinstance(inner, NewConnectionError)
        )
        if isinstance(exc, requests.exceptions.SSLError):
            # A certificate problem does not go away by waiting.
            return self._error(
                ConnectionFailedError,
                f"{prefix}TLS error talking to {host}: {reason}",
                None,
                table,
                transient=False,
            )
        if timed_out:
            what = "timed out talking to"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            what = "could not connect to"
        else:
            what = "request failed to"
        return self._error(ConnectionFailedError, f"{prefix}{what} {host}: {reason}", None, table)

    def _non_json_error(
        self, response: requests.Response, text: str, *, table: str | None = None, context: str = ""
    ) -> ServiceNowError:
        status = response.status_code
        prefix = f"{context}: " if context else ""
        match = _CANCELLED_RE.search(text)
        if match:
            # A cancelled transaction can arrive as a truncated JSON body.
            return self._error(
                TransactionCancelledError, f"{prefix}{status} {match.group(1)}", status, table
            )
        if status in (401, 403, 429) or status >= 500:
            described = f"{status} {response.reason or ''}".strip()
            return self._status_error(response, described, table=table, context=context)
        if not text.strip():
            what = "an empty body"
        elif title := _html_title(text):
            what = f'an HTML page "{title}"'
        else:
            what = f"a non-JSON body ({response.headers.get('Content-Type') or 'no type'})"
        return self._error(
            InstanceUnavailableError,
            f"{prefix}{status} instance unavailable: {what} instead of JSON "
            "(hibernating, under maintenance, or not a ServiceNow API)",
            status,
            table,
        )

    def _status_error(
        self, response: requests.Response, text: str, *, table: str | None = None, context: str = ""
    ) -> ServiceNowError:
        status = response.status_code
        text = f"{context}: {text}" if context else text
        if status == 429:
            retry_after = _retry_after_seconds(response, self.config.retry_after_cap)
            return self._error(RateLimitedError, text, status, table, retry_after=retry_after)
        cls: type[ServiceNowError] = {
            400: BadRequestError,
            401: AuthenticationError,
            403: AuthorizationError,
            404: NotFoundError,
        }.get(status, ServerError if status >= 500 else UnexpectedResponseError)
        return self._error(cls, text, status, table)

    def _error(
        self,
        cls: type[ServiceNowError],
        text: str,
        status: int | None,
        table: str | None,
        **extra: Any,
    ) -> ServiceNowError:
        message = self._redact(f"{text} (table {table})" if table else text)
        logger.warning("ServiceNow %s: %s", cls.__name__, message)
        return cls(message, status_code=status, table=table, **extra)

    def _redact(self, text: str) -> str:
        # Belt and braces: nothing we format should hold a secret, but an instance or a
        # proxy could echo one back in an error body.
        for secret in (
            self.config.password,
            self.config.client_secret,
            self._tokens.access_token,
            self._tokens.refresh_token,
        ):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


# --- helpers ------------------------------------------------------------------------------


def _check_path_segment(value: str, what: str) -> None:
    if not isinstance(value, str) or not _PATH_SEGMENT_RE.match(value):
        raise ValueError(f"invalid {what} {value!r}")


def _json_object(response: requests.Response) -> tuple[dict | None, str]:
    """``(parsed body, text)``; the body is None unless it is a JSON object."""
    # Decoding ourselves avoids requests guessing the charset of a large body char by char.
    text = response.content.decode(response.encoding or "utf-8", errors="replace")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return None, text
    try:
        body = json.loads(stripped)
    except ValueError:
        return None, text
    return (body if isinstance(body, dict) else None), text


def _error_parts(error: Any) -> tuple[str, str]:
    if not isinstance(error, Mapping):
        return "", ""
    message = error.get("message")
    detail = error.get("detail")
    return (str(message) if message else ""), (str(detail) if detail else "")


def _describe(status: int, message: str, detail: str) -> str:
    text = f"{status} {message}".strip()
    return f"{text}: {detail}" if detail else text


def _describe_keys(body: Mapping[str, Any]) -> str:
    keys = ", ".join(sorted(str(k) for k in body)[:8])
    return f"keys: {keys}" if keys else "an empty object"


def _retry_after_seconds(response: requests.Response, cap: float) -> float | None:
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    try:
        return max(0.0, min(float(value), cap))
    except ValueError:
        return None  # an HTTP-date; urllib3 already honoured it while retrying


def _html_title(text: str) -> str:
    match = _TITLE_RE.search(text)
    return " ".join(match.group(1).split())[:120] if match else ""


def _innermost(exc: BaseException) -> BaseException:
    """The root failure inside requests' and urllib3's wrappers."""
    reason = exc
    for _ in range(6):
        nested = getattr(reason, "reason", None)
        if isinstance(nested, BaseException):
            reason = nested
            continue
        args = getattr(reason, "args", ())
        if args and isinstance(args[0], BaseException):
            reason = args[0]
            continue
        break
    return reason


def _reason_text(reason: BaseException) -> str:
    """A short reason such as "[Errno 111] Connection refused", without the request URL."""
    text = str(reason)
    # urllib3 prefixes "<HTTPConnection object at 0x..>: " or "HTTPConnectionPool(host=..): ".
    if text.startswith(("<", "HTTP")) and ": " in text:
        text = text.split(": ", 1)[1]
    return text[:200] or type(reason).__name__
