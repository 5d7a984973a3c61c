"""Tests for servicenow.client against recorded-style payloads.

Request shapes, auth flows and error mapping use ``responses``. Retries happen inside
urllib3, below the adapter ``responses`` patches, so those tests talk to a tiny scripted
HTTP server on 127.0.0.1 instead; waits go through an injected ``sleep`` that records them.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from servicenow.client import (
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    ClientConfig,
    ConfigurationError,
    ConnectionFailedError,
    InstanceUnavailableError,
    NotFoundError,
    Page,
    RateLimitedError,
    ServerError,
    ServiceNowClient,
    ServiceNowError,
    TokenCache,
    TransactionCancelledError,
    UnexpectedResponseError,
    field_display,
    field_value,
)

PAYLOADS = Path(__file__).resolve().parents[2] / "fixtures" / "servicenow" / "payloads"
INSTANCE = "https://acme.service-now.com"
TABLE_URL = f"{INSTANCE}/api/now/table"
TOKEN_URL = f"{INSTANCE}/oauth_token.do"
PASSWORD = "s3cr3t-P@ss"
CLIENT_SECRET = "cl1ent-S3cret"
BETH = "46d44a23a9fe19810012d100cca80666"


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def payload_text(name: str) -> str:
    return (PAYLOADS / name).read_text(encoding="utf-8")


TOKEN = payload("oauth_token.json")
CC_TOKEN = payload("oauth_token_client_credentials.json")


# The scripted servers below listen on loopback over plain http, which the outbound policy
# allows only with allow_local (test_outbound.py tests the policy itself).
def basic_config(**overrides) -> ClientConfig:
    return ClientConfig(
        **{
            "instance_url": INSTANCE,
            "username": "sync.bot",
            "password": PASSWORD,
            "allow_local": True,
            **overrides,
        }
    )


def oauth_config(**overrides) -> ClientConfig:
    return ClientConfig(
        **{
            "instance_url": INSTANCE,
            "auth_type": "oauth_password",
            "username": "sync.bot",
            "password": PASSWORD,
            "client_id": "4f2e9c5d0b1a",
            "client_secret": CLIENT_SECRET,
            "allow_local": True,
            **overrides,
        }
    )


def query_params(request) -> dict[str, str]:
    parsed = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def form(request) -> dict[str, str]:
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- configuration ------------------------------------------------------------------------


def test_config_repr_hides_secrets_and_url_is_normalised():
    config = oauth_config(instance_url=f"{INSTANCE}/", api_path="/api/now/v2/table/")

    assert PASSWORD not in repr(config)
    assert CLIENT_SECRET not in repr(config)
    assert config.instance_url == INSTANCE
    assert config.api_path == "/api/now/v2/table"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"instance_url": "acme.service-now.com"}, "http", id="no-scheme"),
        pytest.param(
            {"instance_url": f"https://bot:{PASSWORD}@acme.service-now.com"},
            "Must not contain credentials",
            id="userinfo",
        ),
        pytest.param({"instance_url": f"{INSTANCE}?x=1"}, "query string", id="query"),
        pytest.param({"auth_type": "kerberos"}, "auth_type", id="auth-type"),
        pytest.param({"api_path": "api/now/table"}, "api_path", id="api-path"),
        pytest.param({"read_timeout": 0}, "timeouts", id="timeout"),
    ],
)
def test_config_refuses_unusable_settings(overrides, message):
    with pytest.raises(ConfigurationError, match=message) as excinfo:
        basic_config(**overrides)

    assert isinstance(excinfo.value, ValueError)
    assert PASSWORD not in str(excinfo.value)


# --- requests as sent ---------------------------------------------------------------------


def test_get_page_sends_exact_sysparms_headers_and_basic_auth(rsps):
    rsps.get(f"{TABLE_URL}/incident", json=payload("incidents_page_plain.json"))
    client = ServiceNowClient(basic_config())

    page = client.get_page(
        "incident",
        query="active=true^ORDERBYsys_updated_on",
        fields=["sys_id", "number", "sys_updated_on"],
        limit=250,
    )

    request = rsps.calls[0].request
    assert urlsplit(request.url).path == "/api/now/table/incident"
    assert query_params(request) == {
        "sysparm_query": "active=true^ORDERBYsys_updated_on",
        "sysparm_fields": "sys_id,number,sys_updated_on",
        "sysparm_limit": "250",
        "sysparm_display_value": "false",
        "sysparm_exclude_reference_link": "true",
        "sysparm_no_count": "true",
        "sysparm_suppress_pagination_header": "true",
    }
    credentials = base64.b64encode(f"sync.bot:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {credentials}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == "ladder-tracker/1"
    assert [row["number"] for row in page.rows] == ["INC0010001", "INC0010002", "INC0010003"]
    assert page == Page(
        rows=payload("incidents_page_plain.json")["result"],
        total_count=None,
        links={},
        requested_limit=250,
    )
    assert client.request_count == 1


def test_get_page_with_count_offset_and_display_values(rsps):
    rsps.get(
        f"{INSTANCE}/api/now/v1/table/incident",
        json=payload("incidents_display_value_all.json"),
        headers={
            "X-Total-Count": "2781",
            "Link": (
                f'<{INSTANCE}/api/now/v1/table/incident?sysparm_offset=0&sysparm_limit=3>;rel="first",'
                f'<{INSTANCE}/api/now/v1/table/incident?sysparm_offset=6&sysparm_limit=3>;rel="next",'
                f'<{INSTANCE}/api/now/v1/table/incident?sysparm_offset=2778&sysparm_limit=3>;rel="last"'
            ),
        },
    )
    client = ServiceNowClient(basic_config(api_path="/api/now/v1/table"))

    page = client.get_page(
        "incident", limit=3, offset=3, count=True, display_value="all", exclude_reference_link=False
    )

    assert query_params(rsps.calls[0].request) == {
        "sysparm_query": "",
        "sysparm_limit": "3",
        "sysparm_offset": "3",
        "sysparm_display_value": "all",
        "sysparm_exclude_reference_link": "false",
        "sysparm_no_count": "false",
    }
    assert page.total_count == 2781
    assert page.links == {
        "first": f"{INSTANCE}/api/now/v1/table/incident?sysparm_offset=0&sysparm_limit=3",
        "next": f"{INSTANCE}/api/now/v1/table/incident?sysparm_offset=6&sysparm_limit=3",
        "last": f"{INSTANCE}/api/now/v1/table/incident?sysparm_offset=2778&sysparm_limit=3",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"table": "incident/../sys_user"}, id="path-in-table"),
        pytest.param({"table": "incident", "limit": 0}, id="limit"),
        pytest.param({"table": "incident", "offset": -1}, id="offset"),
        pytest.param({"table": "incident", "display_value": "yes"}, id="display-value"),
    ],
)
def test_get_page_refuses_bad_arguments_before_sending(kwargs):
    client = ServiceNowClient(basic_config())

    with pytest.raises(ValueError):
        client.get_page(**kwargs)
    assert client.request_count == 0


def test_v2_empty_result_is_an_empty_page(rsps):
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))

    page = ServiceNowClient(basic_config()).get_page("incident", limit=10)

    assert page == Page(rows=[], total_count=None, links={}, requested_limit=10)


def test_v1_empty_404_is_an_empty_page_with_zero_total(rsps):
    rsps.get(f"{INSTANCE}/api/now/v1/table/incident", json=payload("empty_v1_404.json"), status=404)
    client = ServiceNowClient(basic_config(api_path="/api/now/v1/table"))

    page = client.get_page("incident", query="active=true", limit=10)

    assert page == Page(rows=[], total_count=0, links={}, requested_limit=10)


def test_get_record_returns_the_record_or_none_when_gone(rsps):
    sys_id = "1c741bd70b2322007518478d83673af3"
    rsps.get(f"{TABLE_URL}/incident/{sys_id}", json=payload("incident_record.json"))
    rsps.get(
        f"{TABLE_URL}/incident/ffffffffffffffffffffffffffffffff",
        json=payload("record_not_found_404.json"),
        status=404,
    )
    client = ServiceNowClient(basic_config())

    record = client.get_record("incident", sys_id, fields=["sys_id", "number"])
    missing = client.get_record("incident", "ffffffffffffffffffffffffffffffff")

    assert record["number"] == "INC0010001"
    assert missing is None
    assert query_params(rsps.calls[0].request) == {
        "sysparm_exclude_reference_link": "true",
        "sysparm_fields": "sys_id,number",
    }


def test_check_reads_one_sys_user_id(rsps):
    rsps.get(f"{TABLE_URL}/sys_user", json={"result": [{"sys_id": BETH}]})

    result = ServiceNowClient(basic_config()).check()

    assert query_params(rsps.calls[0].request) == {
        "sysparm_limit": "1",
        "sysparm_fields": "sys_id",
    }
    assert result == {
        "reachable": True,
        "authenticated": True,
        "elapsed_ms": result["elapsed_ms"],
        "api": "/api/now/table",
    }
    assert isinstance(result["elapsed_ms"], int)


def test_check_authenticates_with_oauth_first(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.get(f"{TABLE_URL}/sys_user", json={"result": [{"sys_id": BETH}]})
    client = ServiceNowClient(oauth_config())

    assert client.check()["authenticated"] is True
    assert [c.request.method for c in rsps.calls] == ["POST", "GET"]
    assert client.request_count == 2


# --- OAuth --------------------------------------------------------------------------------


def test_oauth_password_grant_is_a_form_post_then_bearer(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.get(f"{TABLE_URL}/incident", json=payload("incidents_page_plain.json"))

    ServiceNowClient(oauth_config()).get_page("incident")

    token_request, table_request = (c.request for c in rsps.calls)
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in token_request.headers
    assert form(token_request) == {
        "grant_type": "password",
        "username": "sync.bot",
        "password": PASSWORD,
        "client_id": "4f2e9c5d0b1a",
        "client_secret": CLIENT_SECRET,
    }
    assert table_request.headers["Authorization"] == f"Bearer {TOKEN['access_token']}"


def test_oauth_client_credentials_grant_sends_only_the_client(rsps):
    rsps.post(TOKEN_URL, json=CC_TOKEN)
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    config = oauth_config(auth_type="oauth_client_credentials", username="", password="")

    ServiceNowClient(config).get_page("incident")

    assert form(rsps.calls[0].request) == {
        "grant_type": "client_credentials",
        "client_id": "4f2e9c5d0b1a",
        "client_secret": CLIENT_SECRET,
    }
    assert rsps.calls[1].request.headers["Authorization"] == f"Bearer {CC_TOKEN['access_token']}"


def test_oauth_token_is_cached_between_pages(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    client = ServiceNowClient(oauth_config())

    client.get_page("incident")
    client.get_page("incident")

    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "GET"]
    assert client.request_count == 3


def test_oauth_token_is_refreshed_before_it_expires(rsps):
    refreshed = {**TOKEN, "access_token": "second-access-token", "refresh_token": "second-refresh"}
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.post(TOKEN_URL, json=refreshed)
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    clock = FakeClock()
    client = ServiceNowClient(oauth_config(token_refresh_margin=60), clock=clock)

    client.get_page("incident")
    clock.now += 1799 - 61  # still outside the margin
    client.get_page("incident")
    clock.now += 2  # now within 60 s of expiry
    client.get_page("incident")

    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "GET", "POST", "GET"]
    assert form(rsps.calls[3].request) == {
        "grant_type": "refresh_token",
        "refresh_token": TOKEN["refresh_token"],
        "client_id": "4f2e9c5d0b1a",
        "client_secret": CLIENT_SECRET,
    }
    assert rsps.calls[4].request.headers["Authorization"] == "Bearer second-access-token"


def test_refused_refresh_falls_back_to_a_new_grant(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.post(TOKEN_URL, json=payload("oauth_error.json"), status=401)
    rsps.post(TOKEN_URL, json={**TOKEN, "access_token": "fresh-grant-token"})
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    clock = FakeClock()
    client = ServiceNowClient(oauth_config(), clock=clock)

    client.get_page("incident")
    clock.now += 3600
    client.get_page("incident")

    grants = [form(c.request)["grant_type"] for c in rsps.calls if c.request.method == "POST"]
    assert grants == ["password", "refresh_token", "password"]
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer fresh-grant-token"


def test_an_expired_client_credentials_token_is_granted_again(rsps):
    rsps.post(TOKEN_URL, json=CC_TOKEN)
    rsps.post(TOKEN_URL, json={**CC_TOKEN, "access_token": "next-cc-token"})
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    clock = FakeClock()
    config = oauth_config(auth_type="oauth_client_credentials", username="", password="")
    client = ServiceNowClient(config, clock=clock)

    client.get_page("incident")
    clock.now += 1799
    client.get_page("incident")

    grants = [form(c.request)["grant_type"] for c in rsps.calls if c.request.method == "POST"]
    assert grants == ["client_credentials", "client_credentials"]
    assert rsps.calls[-1].request.headers["Authorization"] == "Bearer next-cc-token"


def test_a_token_answer_without_access_token_is_unexpected(rsps):
    rsps.post(TOKEN_URL, json={"scope": "useraccount", "token_type": "Bearer"})

    with pytest.raises(UnexpectedResponseError) as excinfo:
        ServiceNowClient(oauth_config()).get_page("incident")

    assert str(excinfo.value) == (
        "OAuth password grant: 200 answer without an access_token (keys: scope, token_type)"
    )


def test_a_401_re_authenticates_once_and_repeats_the_request(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.post(TOKEN_URL, json={**TOKEN, "access_token": "after-401-token"})
    rsps.get(f"{TABLE_URL}/incident", json=payload("error_401.json"), status=401)
    rsps.get(f"{TABLE_URL}/incident", json=payload("incidents_page_plain.json"))
    client = ServiceNowClient(oauth_config())

    page = client.get_page("incident")

    assert len(page.rows) == 3
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "POST", "GET"]
    assert form(rsps.calls[2].request)["grant_type"] == "password"
    assert rsps.calls[3].request.headers["Authorization"] == "Bearer after-401-token"
    assert client.request_count == 4


def test_a_second_401_is_an_authentication_error(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.get(f"{TABLE_URL}/incident", json=payload("error_401.json"), status=401)
    client = ServiceNowClient(oauth_config())

    with pytest.raises(AuthenticationError) as excinfo:
        client.get_page("incident")

    assert str(excinfo.value) == (
        "401 User Not Authenticated: Required to provide Auth information (table incident)"
    )
    assert excinfo.value.transient is False
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "POST", "GET"]


def test_a_refused_grant_is_an_authentication_error(rsps):
    rsps.post(TOKEN_URL, json=payload("oauth_error.json"), status=401)
    client = ServiceNowClient(oauth_config())

    with pytest.raises(AuthenticationError) as excinfo:
        client.get_page("incident")

    assert str(excinfo.value) == ("OAuth password grant refused: 401 server_error: access_denied")
    assert excinfo.value.status_code == 401
    assert len(rsps.calls) == 1


def test_basic_auth_401_is_not_retried(rsps):
    rsps.get(f"{TABLE_URL}/incident", json=payload("error_401.json"), status=401)
    client = ServiceNowClient(basic_config())

    with pytest.raises(AuthenticationError):
        client.get_page("incident")
    assert client.request_count == 1


def test_clients_sharing_a_token_cache_grant_once(rsps):
    rsps.post(TOKEN_URL, json=TOKEN)
    rsps.get(f"{TABLE_URL}/incident", json=payload("empty_v2.json"))
    cache = TokenCache()

    ServiceNowClient(oauth_config(), token_cache=cache).get_page("incident")
    ServiceNowClient(oauth_config(), token_cache=cache).get_page("incident")

    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "GET"]
    assert TOKEN["access_token"] not in repr(cache)


# --- error mapping ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "message", "transient"),
    [
        pytest.param(
            400,
            payload_text("error_400_invalid_table.json"),
            "application/json",
            BadRequestError,
            "400 Invalid table no_such_table (table incident)",
            False,
            id="400-invalid-table",
        ),
        pytest.param(
            401,
            payload_text("error_401.json"),
            "application/json",
            AuthenticationError,
            "401 User Not Authenticated: Required to provide Auth information (table incident)",
            False,
            id="401",
        ),
        pytest.param(
            403,
            payload_text("error_403.json"),
            "application/json",
            AuthorizationError,
            "403 User Not Authorized: Failed API level ACL Validation (table incident)",
            False,
            id="403",
        ),
        pytest.param(
            404,
            '{"error":{"message":"Requested URI does not represent any resource","detail":null},'
            '"status":"failure"}',
            "application/json",
            NotFoundError,
            "404 Requested URI does not represent any resource (table incident)",
            False,
            id="404-other",
        ),
        pytest.param(
            500,
            payload_text("transaction_cancelled.json"),
            "application/json",
            TransactionCancelledError,
            "500 Transaction cancelled: maximum execution time exceeded: Transaction cancelled: "
            "maximum execution time exceeded Check logs for error trace or enable "
            "glide.rest.debug property to verify REST request processing (table incident)",
            True,
            id="transaction-cancelled-500",
        ),
        pytest.param(
            200,
            payload_text("transaction_cancelled_partial_200.txt"),
            "application/json",
            TransactionCancelledError,
            "200 Transaction cancelled: maximum execution time exceeded (table incident)",
            True,
            id="transaction-cancelled-partial-200",
        ),
        pytest.param(
            200,
            payload_text("hibernating.html"),
            "text/html",
            InstanceUnavailableError,
            '200 instance unavailable: an HTML page "Instance Hibernating page" instead of JSON '
            "(hibernating, under maintenance, or not a ServiceNow API) (table incident)",
            True,
            id="html-200",
        ),
        pytest.param(
            200,
            "Service temporarily unavailable, try later",
            "text/plain",
            InstanceUnavailableError,
            "200 instance unavailable: a non-JSON body (text/plain) instead of JSON "
            "(hibernating, under maintenance, or not a ServiceNow API) (table incident)",
            True,
            id="text-200",
        ),
        pytest.param(
            200,
            '{"records": []}',
            "application/json",
            UnexpectedResponseError,
            '200 JSON without "result" (keys: records) (table incident)',
            False,
            id="json-without-result",
        ),
        pytest.param(
            503,
            "<html><title>503 Service Unavailable</title></html>",
            "text/html",
            ServerError,
            "503 Service Unavailable (table incident)",
            True,
            id="html-503",
        ),
    ],
)
def test_responses_map_to_typed_errors(rsps, status, body, content_type, error, message, transient):
    rsps.get(f"{TABLE_URL}/incident", body=body, status=status, content_type=content_type)

    with pytest.raises(error) as excinfo:
        ServiceNowClient(basic_config()).get_page("incident")

    assert type(excinfo.value) is error
    assert str(excinfo.value) == message
    assert excinfo.value.status_code == status
    assert excinfo.value.transient is transient
    assert excinfo.value.table == "incident"


def test_all_errors_are_service_now_errors():
    for cls in (
        BadRequestError,
        AuthenticationError,
        AuthorizationError,
        NotFoundError,
        TransactionCancelledError,
        RateLimitedError,
        ServerError,
        InstanceUnavailableError,
        ConnectionFailedError,
        UnexpectedResponseError,
        ConfigurationError,
    ):
        assert issubclass(cls, ServiceNowError)


# --- field values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "assigned_display", "state_display"),
    [
        pytest.param("incidents_page.json", BETH, "2", id="link-value"),
        pytest.param("incidents_page_plain.json", BETH, "2", id="plain"),
        pytest.param("incidents_display_value_all.json", "Beth Anglin", "In Progress", id="all"),
        pytest.param(
            "incidents_display_value_all_no_links.json", "Beth Anglin", "In Progress", id="all-nl"
        ),
        pytest.param("incidents_display_value_true.json", "Beth Anglin", "In Progress", id="true"),
    ],
)
def test_field_helpers_read_every_shape(fixture, assigned_display, state_display):
    first, _, third = payload(fixture)["result"]

    assert field_value(first["assigned_to"]) == BETH
    assert field_display(first["assigned_to"]) == assigned_display
    assert field_display(first["state"]) == state_display
    assert field_value(third["assigned_to"]) == ""
    assert field_display(third["assigned_to"]) == ""
    if fixture != "incidents_display_value_true.json":  # display_value=true has no raw values
        assert field_value(first["state"]) == "2"
        assert field_value(first["sys_updated_on"]) == "2024-03-04 10:15:02"


@pytest.mark.parametrize(
    ("value", "raw", "display"),
    [
        pytest.param(None, "", "", id="none"),
        pytest.param("", "", "", id="empty"),
        pytest.param("2", "2", "2", id="str"),
        pytest.param(True, "true", "true", id="bool"),
        pytest.param({"value": "x", "link": "https://i/api/now/table/t/x"}, "x", "x", id="link"),
        pytest.param({"display_value": "Beth", "value": "b"}, "b", "Beth", id="dv-value"),
        pytest.param({"display_value": None, "value": "b"}, "b", "b", id="dv-null"),
        pytest.param(
            {"display_value": "Beth", "link": "https://i/t/abc/"}, "abc", "Beth", id="dvl"
        ),
        pytest.param({}, "", "", id="empty-dict"),
    ],
)
def test_field_helpers_edge_shapes(value, raw, display):
    assert field_value(value) == raw
    assert field_display(value) == display


# --- scripted HTTP server for retries -----------------------------------------------------


class ScriptedServer:
    """Answers GETs from ``script`` in order and token POSTs from ``token_script`` (or a
    default token); records every request it receives."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict, str]] = []
        self.token_script: list[tuple[int, dict, str]] = []
        self.requests: list[tuple[str, str, dict, str]] = []
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                owner.requests.append((self.command, self.path, dict(self.headers), body))
                if owner.delay:
                    time.sleep(owner.delay)
                if self.path.startswith("/oauth_token.do"):
                    queue, default = owner.token_script, (200, {}, json.dumps(TOKEN))
                else:
                    queue, default = owner.script, (500, {}, '{"error":{"message":"unscripted"}}')
                status, headers, text = queue.pop(0) if queue else default
                data = text.encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass  # keep test output quiet

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that timed out and left is expected in one test

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def gets(self) -> list[tuple[str, str, dict, str]]:
        return [r for r in self.requests if r[0] == "GET"]


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_client(url: str, sleeps: list[float], **overrides) -> ServiceNowClient:
    config = basic_config(instance_url=url, **overrides)
    return ServiceNowClient(config, sleep=sleeps.append)


EMPTY = json.dumps({"result": []})
RATE_LIMITED = '{"error":{"message":"Rate limit exceeded","detail":null},"status":"failure"}'


def test_429_waits_for_retry_after_then_succeeds(server):
    server.script = [(429, {"Retry-After": "3"}, RATE_LIMITED), (200, {}, EMPTY)]
    sleeps: list[float] = []
    client = local_client(server.url, sleeps)

    page = client.get_page("incident")

    assert page.rows == []
    assert sleeps == [3]
    assert len(server.gets()) == 2
    assert client.request_count == 2


def test_retry_after_longer_than_the_cap_is_capped(server):
    server.script = [(429, {"Retry-After": "3600"}, RATE_LIMITED), (200, {}, EMPTY)]
    sleeps: list[float] = []

    local_client(server.url, sleeps, retry_after_cap=2.5).get_page("incident")

    assert sleeps == [2.5]


def test_503_is_retried_then_succeeds(server):
    server.script = [(503, {"Content-Type": "text/html"}, "<html>busy</html>"), (200, {}, EMPTY)]
    sleeps: list[float] = []
    client = local_client(server.url, sleeps)

    assert client.get_page("incident").rows == []
    assert len(server.gets()) == 2
    assert client.request_count == 2


def test_5xx_after_the_last_retry_is_a_server_error_with_backoff_and_jitter(server):
    failure = '{"error":{"message":"Internal server error","detail":null},"status":"failure"}'
    server.script = [(502, {}, failure), (503, {}, failure), (500, {}, failure)]
    sleeps: list[float] = []
    client = local_client(server.url, sleeps, max_retries=2, backoff_factor=0.1)

    with pytest.raises(ServerError) as excinfo:
        client.get_page("incident")

    assert str(excinfo.value) == "500 Internal server error (table incident)"
    assert excinfo.value.transient is True
    assert len(server.gets()) == 3
    assert client.request_count == 3
    # urllib3 does not wait before the first retry; the second waits 0.1 * 2 plus jitter.
    assert len(sleeps) == 1
    assert 0.2 <= sleeps[0] <= 0.3


def test_429_after_the_last_retry_is_rate_limited_with_retry_after(server):
    server.script = [(429, {"Retry-After": "7"}, RATE_LIMITED)] * 2
    sleeps: list[float] = []

    with pytest.raises(RateLimitedError) as excinfo:
        local_client(server.url, sleeps, max_retries=1).get_page("incident")

    assert excinfo.value.retry_after == 7
    assert excinfo.value.transient is True
    assert str(excinfo.value) == "429 Rate limit exceeded (table incident)"
    assert sleeps == [7]


def test_the_token_post_is_not_retried_on_a_5xx(server):
    server.token_script = [(503, {"Content-Type": "text/html"}, "<html>down</html>")]
    config = oauth_config(instance_url=server.url)
    client = ServiceNowClient(config, sleep=lambda _s: None)

    with pytest.raises(ServerError) as excinfo:
        client.get_page("incident")

    assert str(excinfo.value) == "OAuth password grant: 503 Service Unavailable"
    assert [r[0] for r in server.requests] == ["POST"]
    assert client.request_count == 1


def test_connection_refused_is_a_connection_failure_after_retries():
    port = closed_port()
    sleeps: list[float] = []
    client = local_client(f"http://127.0.0.1:{port}", sleeps, max_retries=2)

    with pytest.raises(ConnectionFailedError) as excinfo:
        client.get_page("incident")

    assert str(excinfo.value).startswith(f"could not connect to 127.0.0.1:{port}: ")
    assert "Connection refused" in str(excinfo.value)
    assert excinfo.value.status_code is None
    assert excinfo.value.transient is True
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert client.request_count == 3


def test_a_read_timeout_is_a_connection_failure(server):
    server.delay = 0.5
    server.script = [(200, {}, EMPTY)]
    client = local_client(server.url, [], max_retries=0, read_timeout=0.1)

    with pytest.raises(ConnectionFailedError, match=r"^timed out talking to 127\.0\.0\.1"):
        client.get_page("incident")


# --- secrets ------------------------------------------------------------------------------


def _chain_text(exc: BaseException) -> str:
    parts = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        stack += [current.__cause__, current.__context__]
    return "\n".join(parts)


def test_no_secret_reaches_logs_or_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    echo = json.dumps(
        {"error": {"message": "Bad request", "detail": f"password={PASSWORD}"}, "status": "failure"}
    )
    failures: list[BaseException] = []

    def run(client: ServiceNowClient, table: str = "incident") -> None:
        try:
            client.get_page(table)
        except ServiceNowError as exc:
            failures.append(exc)

    def client(config: ClientConfig, **kwargs) -> ServiceNowClient:
        return ServiceNowClient(config, sleep=lambda _s: None, **kwargs)

    cache = TokenCache()
    retrying = client(oauth_config(instance_url=server.url, max_retries=1), token_cache=cache)
    oauth = client(oauth_config(instance_url=server.url, max_retries=0))
    basic = client(basic_config(instance_url=server.url, max_retries=0))
    server.script = [
        (429, {"Retry-After": "1"}, RATE_LIMITED),  # retrying: a retry, then success
        (200, {}, payload_text("incidents_page_plain.json")),
        (503, {}, "<html>down</html>"),  # retrying: 5xx after the last retry
        (503, {}, "<html>down</html>"),
        (400, {}, echo),  # oauth: an instance echoing a secret back
        (400, {}, payload_text("error_400_invalid_table.json")),
        (401, {}, payload_text("error_401.json")),  # re-authenticates...
        (401, {}, payload_text("error_401.json")),  # ...and fails again
        (403, {}, payload_text("error_403.json")),
        (404, {}, '{"error":{"message":"Not found","detail":null},"status":"failure"}'),
        (500, {}, payload_text("transaction_cancelled.json")),
        (200, {"Content-Type": "text/html"}, payload_text("hibernating.html")),
        (200, {}, '{"status": "success"}'),
        (429, {"Retry-After": "1"}, RATE_LIMITED),
        (401, {}, payload_text("error_401.json")),  # basic auth
    ]
    run(retrying)
    run(retrying)
    for _ in range(9):
        run(oauth)
    run(basic)
    server.token_script = [(401, {}, payload_text("oauth_error.json"))]
    run(client(oauth_config(instance_url=server.url)))
    run(client(basic_config(instance_url=f"http://127.0.0.1:{closed_port()}", max_retries=0)))

    assert server.script == []
    raised = {type(exc) for exc in failures}
    assert raised == {
        BadRequestError,
        AuthenticationError,
        AuthorizationError,
        NotFoundError,
        TransactionCancelledError,
        InstanceUnavailableError,
        UnexpectedResponseError,
        RateLimitedError,
        ServerError,
        ConnectionFailedError,
    }
    assert any("retrying" in r.getMessage() for r in caplog.records)
    basic_header = base64.b64encode(f"sync.bot:{PASSWORD}".encode()).decode()
    secrets = [PASSWORD, CLIENT_SECRET, TOKEN["access_token"], TOKEN["refresh_token"], basic_header]
    text = "\n".join(
        [caplog.text, *(r.getMessage() for r in caplog.records)]
        + [_chain_text(exc) for exc in failures]
        + [repr(oauth), repr(oauth.config), repr(basic.config), repr(cache)]
    )
    for secret in secrets:
        assert secret not in text
    assert "password=***" in text  # the echoed secret was redacted, not dropped silently
