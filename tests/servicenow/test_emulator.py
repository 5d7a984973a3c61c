"""Tests for the ServiceNow Table API emulator, talking to it over real HTTP sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from servicenow.emulator import Emulator, Faults
from servicenow.emulator.encoded_query import parse_encoded_query
from servicenow.emulator.generate import demo_dataset, generate_dataset

ROOT = Path(__file__).resolve().parents[2]
USER = ("integration", "integration-pass")
CLIENT = {"client_id": "ladder-tracker", "client_secret": "ladder-tracker-secret"}

ALICE = "a" * 32
BOB = "b" * 32
CAROL = "c" * 32


def sid(number: int) -> str:
    return f"{number:032x}"


class FakeClock:
    """An injectable clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def make_dataset() -> dict[str, Any]:
    """Twelve incidents: four share one second, four share another, four stand alone."""
    users = [
        {"sys_id": ALICE, "user_name": "alice", "name": "Alice Archer", "email": "alice@x.io"},
        {"sys_id": BOB, "user_name": "bob", "name": "Bob Baker", "email": "bob@x.io"},
        {"sys_id": CAROL, "user_name": "carol", "name": "Carol Cole", "manager": ALICE},
    ]
    stamps = ["2024-01-01 10:00:00"] * 4 + ["2024-01-02 10:00:00"] * 4
    stamps += ["2024-01-03 09:00:00", "2024-01-03 10:00:00", "2024-01-04 10:00:00"]
    stamps += ["2024-01-05 10:00:00"]
    incidents = []
    for i in range(1, 13):
        incidents.append(
            {
                "sys_id": sid(i),
                "number": f"INC{i:07d}",
                "short_description": f"Error: disk full on host-{i}" if i % 2 else f"Model {i}",
                "state": "7" if i > 8 else "2",
                "priority": str(i % 5 + 1),
                "reassignment_count": str(i),  # numeric: 10 > 5 although "10" < "5"
                "category": "ml_model" if i <= 6 else "network",
                "assigned_to": "" if i in (4, 8) else (ALICE if i % 2 else BOB),
                "caller_id": CAROL,
                "sys_created_on": "2023-12-31 00:00:00",
                "sys_updated_on": stamps[i - 1],
                "sys_mod_count": "1",
            }
        )
    return {
        "tables": {"sys_user": users, "incident": incidents, "problem": []},
        "credentials": {
            "users": [
                {"user_name": "integration", "password": "integration-pass"},
                {"user_name": "limited", "password": "pw", "forbidden_tables": ["incident"]},
            ],
            "oauth_clients": [CLIENT],
        },
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock):
    emulator = Emulator(make_dataset(), clock=clock).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.auth = USER
    yield session
    session.close()


def table_get(
    http: requests.Session, emu: Emulator, table: str = "incident", prefix: str = "", **params
) -> requests.Response:
    return http.get(f"{emu.url}/api/now/{prefix}table/{table}", params=params, timeout=10)


def numbers(response: requests.Response) -> list[str]:
    return [row["number"] for row in response.json()["result"]]


def query_numbers(http: requests.Session, emu: Emulator, query: str) -> list[str]:
    response = table_get(http, emu, sysparm_query=query, sysparm_fields="number")
    assert response.status_code == 200, response.text
    return numbers(response)


def inc(*ids: int) -> list[str]:
    return [f"INC{i:07d}" for i in ids]


# -- auth --------------------------------------------------------------------------------


def test_basic_auth_ok(emu, http):
    response = table_get(http, emu, sysparm_limit=1)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json;charset=UTF-8"


@pytest.mark.parametrize("auth", [("integration", "wrong"), ("nobody", "x"), None])
def test_bad_or_missing_auth_is_401(emu, auth):
    response = requests.get(f"{emu.url}/api/now/table/incident", auth=auth, timeout=10)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "User Not Authenticated",
            "detail": "Required to provide Auth information",
        },
        "status": "failure",
    }
    assert response.headers["WWW-Authenticate"] == 'BASIC realm="Service-now"'


def oauth(emu: Emulator, **form: str) -> requests.Response:
    return requests.post(f"{emu.url}/oauth_token.do", data=form, timeout=10)


def bearer_get(emu: Emulator, token: str) -> requests.Response:
    return requests.get(
        f"{emu.url}/api/now/table/incident",
        headers={"Authorization": f"Bearer {token}"},
        params={"sysparm_limit": 1},
        timeout=10,
    )


def test_oauth_password_grant_gives_working_bearer(emu):
    response = oauth(
        emu, grant_type="password", username="integration", password="integration-pass", **CLIENT
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "useraccount"
    assert body["expires_in"] == 1800
    assert body["refresh_token"]
    assert bearer_get(emu, body["access_token"]).status_code == 200
    assert bearer_get(emu, "not-a-token").status_code == 401


def test_oauth_client_credentials_acts_as_first_user(emu):
    response = oauth(emu, grant_type="client_credentials", **CLIENT)
    assert response.status_code == 200
    assert bearer_get(emu, response.json()["access_token"]).status_code == 200


def test_oauth_refresh_token(emu):
    first = oauth(
        emu, grant_type="password", username="integration", password="integration-pass", **CLIENT
    ).json()
    refreshed = oauth(
        emu, grant_type="refresh_token", refresh_token=first["refresh_token"], **CLIENT
    )
    assert refreshed.status_code == 200
    assert refreshed.json()["access_token"] != first["access_token"]
    assert bearer_get(emu, refreshed.json()["access_token"]).status_code == 200
    bad = oauth(emu, grant_type="refresh_token", refresh_token="nope", **CLIENT)
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "password", "username": "integration", "password": "bad", **CLIENT},
        {"grant_type": "client_credentials", "client_id": "ladder-tracker", "client_secret": "x"},
        {"grant_type": "client_credentials", "client_id": "other", "client_secret": "x"},
        {"grant_type": "authorization_code", **CLIENT},
    ],
)
def test_oauth_failures(emu, form):
    response = oauth(emu, **form)
    assert response.status_code == 401
    assert response.json() == {"error_description": "access_denied", "error": "server_error"}


def test_oauth_json_body_is_rejected(emu):
    response = requests.post(
        f"{emu.url}/oauth_token.do",
        json={"grant_type": "client_credentials", **CLIENT},
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error_description"] == "access_denied"


def test_expired_bearer_token_is_401():
    emulator = Emulator(make_dataset(), token_ttl=1).start()
    try:
        token = oauth(emulator, grant_type="client_credentials", **CLIENT).json()
        assert token["expires_in"] == 1
        assert bearer_get(emulator, token["access_token"]).status_code == 200
        time.sleep(1.2)
        expired = bearer_get(emulator, token["access_token"])
        assert expired.status_code == 401
        assert expired.json()["error"]["message"] == "User Not Authenticated"
    finally:
        emulator.stop()


def test_forbidden_table_is_403(emu):
    response = requests.get(f"{emu.url}/api/now/table/incident", auth=("limited", "pw"), timeout=10)
    assert response.status_code == 403
    body = response.json()
    assert body["status"] == "failure"
    assert body["error"]["message"] == "User Not Authorized"
    assert requests.get(f"{emu.url}/api/now/table/sys_user", auth=("limited", "pw"), timeout=10).ok


# -- routing and parameters --------------------------------------------------------------


def test_invalid_table_is_400(emu, http):
    response = table_get(http, emu, table="no_such_table")
    assert response.status_code == 400
    assert response.json() == {
        "error": {"message": "Invalid table no_such_table", "detail": None},
        "status": "failure",
    }


def test_unknown_api_path_is_400(emu, http):
    response = http.get(f"{emu.url}/api/now/nothing/here", timeout=10)
    assert response.status_code == 400
    assert response.json()["status"] == "failure"


@pytest.mark.parametrize("prefix", ["", "v1/", "v2/"])
def test_get_by_sys_id(emu, http, prefix):
    response = http.get(f"{emu.url}/api/now/{prefix}table/incident/{sid(3)}", timeout=10)
    assert response.status_code == 200
    assert response.json()["result"]["number"] == "INC0000003"
    missing = http.get(f"{emu.url}/api/now/{prefix}table/incident/{'f' * 32}", timeout=10)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "No Record found",
            "detail": "Record doesn't exist or ACL restricts the record retrieval",
        },
        "status": "failure",
    }


@pytest.mark.parametrize(
    "params", [{"sysparm_limit": "ten"}, {"sysparm_offset": "x"}, {"sysparm_limit": "-1"}]
)
def test_bad_limit_or_offset_is_400(emu, http, params):
    response = table_get(http, emu, **params)
    assert response.status_code == 400
    assert response.json()["status"] == "failure"
    assert "sysparm_" in response.json()["error"]["message"]


def test_default_order_limit_and_offset(emu, http):
    assert numbers(table_get(http, emu)) == inc(*range(1, 13))
    assert numbers(table_get(http, emu, sysparm_limit=3, sysparm_offset=2)) == inc(3, 4, 5)


def test_fields_projection(emu, http):
    response = table_get(http, emu, sysparm_fields="number, state,no_such_field", sysparm_limit=2)
    assert response.json()["result"] == [
        {"number": "INC0000001", "state": "2"},
        {"number": "INC0000002", "state": "2"},
    ]
    everything = table_get(http, emu, sysparm_limit=1).json()["result"][0]
    assert everything["sys_id"] == sid(1)
    assert everything["short_description"] == "Error: disk full on host-1"


def test_dot_walked_field(emu, http):
    response = table_get(
        http,
        emu,
        sysparm_fields="number,assigned_to.email",
        sysparm_query="assigned_to.email=bob@x.io",
        sysparm_limit=1,
    )
    assert response.json()["result"] == [{"number": "INC0000002", "assigned_to.email": "bob@x.io"}]


# -- encoded queries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=7", inc(9, 10, 11, 12)),
        ("state!=2", inc(9, 10, 11, 12)),
        ("number=INC0000005", inc(5)),
        ("reassignment_count>9", inc(10, 11, 12)),  # numeric, not "10" < "9"
        ("reassignment_count>=11", inc(11, 12)),
        ("reassignment_count<3", inc(1, 2)),
        ("reassignment_count<=2", inc(1, 2)),
        ("sys_updated_on>2024-01-03 09:00:00", inc(10, 11, 12)),
        ("sys_updated_on>=2024-01-03 09:00:00", inc(9, 10, 11, 12)),
        ("sys_updated_on<2024-01-02 10:00:00", inc(1, 2, 3, 4)),
        ("sys_updated_on<=2024-01-01 10:00:00", inc(1, 2, 3, 4)),
        ("numberININC0000002,INC0000011,INC0000099", inc(2, 11)),
        ("stateNOT IN2", inc(9, 10, 11, 12)),
        ("short_descriptionSTARTSWITHmodel 1", inc(10, 12)),  # case-insensitive
        ("short_descriptionENDSWITHhost-11", inc(11)),
        ("short_descriptionLIKEdisk full^category=network", inc(7, 9, 11)),
        ("short_descriptionNOTLIKEerror^category=ml_model", inc(2, 4, 6)),
        ("assigned_toISEMPTY", inc(4, 8)),
        ("assigned_toISNOTEMPTY^state=2^category=network", inc(7)),
        ("short_description=Error: disk full on host-3", inc(3)),
        ("sys_id>" + sid(10), inc(11, 12)),
    ],
)
def test_operators(emu, http, query, expected):
    assert query_numbers(http, emu, query) == expected


def test_or_binds_tighter_than_and(emu, http):
    # state=7 AND (number=INC0000009 OR number=INC0000001) -> only 9.
    assert query_numbers(http, emu, "state=7^number=INC0000009^ORnumber=INC0000001") == inc(9)
    assert query_numbers(http, emu, "number=INC0000001^ORnumber=INC0000003") == inc(1, 3)


def test_nq_ors_whole_queries(emu, http):
    query = "state=7^category=network^reassignment_count>11^NQnumber=INC0000002"
    assert query_numbers(http, emu, query) == inc(2, 12)


def test_keyset_query_shape(emu, http):
    query = (
        "category=ml_model^sys_updated_on>2024-01-01 10:00:00"
        f"^NQcategory=ml_model^sys_updated_on=2024-01-01 10:00:00^sys_id>{sid(2)}"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    assert query_numbers(http, emu, query) == inc(3, 4, 5, 6)


def test_keyset_paging_walks_every_row_once(emu, http):
    """Tiny pages across same-second bursts: each row exactly once, in order."""
    seen: list[str] = []
    hwm: tuple[str, str] | None = None
    for _ in range(20):
        if hwm is None:
            query = "ORDERBYsys_updated_on^ORDERBYsys_id"
        else:
            ts, last = hwm
            query = (
                f"sys_updated_on>{ts}^NQsys_updated_on={ts}^sys_id>{last}"
                "^ORDERBYsys_updated_on^ORDERBYsys_id"
            )
        page = table_get(
            http,
            emu,
            sysparm_query=query,
            sysparm_limit=3,
            sysparm_no_count="true",
            sysparm_fields="sys_id,number,sys_updated_on",
            sysparm_exclude_reference_link="true",
        ).json()["result"]
        if not page:
            break
        seen += [row["number"] for row in page]
        hwm = (page[-1]["sys_updated_on"], page[-1]["sys_id"])
    assert seen == inc(*range(1, 13))


def test_orderby_and_orderbydesc(emu, http):
    assert query_numbers(http, emu, "ORDERBYDESCnumber")[:3] == inc(12, 11, 10)
    # Numeric order for numeric fields: 2 < 10.
    assert query_numbers(http, emu, "ORDERBYreassignment_count")[:3] == inc(1, 2, 3)
    # Mixed keys, ORDERBY anywhere in the query; ties keep a stable order.
    mixed = query_numbers(http, emu, "ORDERBYDESCcategory^state=2^ORDERBYnumber")
    assert mixed == inc(7, 8, 1, 2, 3, 4, 5, 6)
    assert query_numbers(http, emu, "ORDERBYDESCsys_updated_on")[:2] == inc(12, 11)
    reverse = "ORDERBYDESCsys_updated_on^ORDERBYDESCsys_id"
    assert query_numbers(http, emu, reverse) == inc(*range(12, 0, -1))


def test_condition_on_unknown_field_is_silently_dropped(emu, http):
    assert query_numbers(http, emu, "no_such_field=1^state=7") == inc(9, 10, 11, 12)
    assert len(query_numbers(http, emu, "u_bogus=1")) == 12
    # In an OR group only the unknown term disappears.
    assert query_numbers(http, emu, "number=INC0000001^ORu_bogus=1") == inc(1)


def test_parser_structure():
    parsed = parse_encoded_query("a=1^b=2^ORc!=3^NQd>4^ORDERBYDESCe^ORDERBYf^EQ")
    assert [[[(c.field, c.op, c.value) for c in g] for g in b] for b in parsed.branches] == [
        [[("a", "=", "1")], [("b", "=", "2"), ("c", "!=", "3")]],
        [[("d", ">", "4")]],
    ]
    assert [(o.field, o.descending) for o in parsed.order_by] == [("e", True), ("f", False)]
    values = parse_encoded_query("numberIN1,2^dateBETWEEN2024-01-01 00:00:00@2024-02-01")
    assert values.branches[0][0][0].value == "1,2"
    assert values.branches[0][1][0].op == "BETWEEN"


# -- headers and empty results -----------------------------------------------------------


def parse_link(header: str) -> dict[str, str]:
    links = {}
    for part in header.split(","):
        url, rel = part.split(";")
        links[rel.removeprefix('rel="').removesuffix('"')] = url.strip("<>")
    return links


def test_total_count_and_link_header(emu, http):
    response = table_get(http, emu, sysparm_limit=5, sysparm_offset=5, sysparm_query="state=2")
    assert response.headers["X-Total-Count"] == "8"
    links = parse_link(response.headers["Link"])
    assert set(links) == {"first", "prev", "last"}  # 5 + 5 >= 8: no next
    assert links["first"].startswith(f"{emu.url}/api/now/table/incident?")
    assert "sysparm_offset=0" in links["first"]
    assert "sysparm_offset=5" in links["last"]
    assert "sysparm_query=state%3D2" in links["prev"]

    first = table_get(http, emu, sysparm_limit=5, sysparm_query="state=2")
    links = parse_link(first.headers["Link"])
    assert set(links) == {"first", "next", "last"}
    assert "sysparm_offset=5" in links["next"]
    follow = http.get(links["next"], timeout=10)
    assert numbers(follow) == inc(6, 7, 8)


def test_no_count_and_suppress_pagination_header(emu, http):
    response = table_get(
        http,
        emu,
        sysparm_limit=2,
        sysparm_no_count="true",
        sysparm_suppress_pagination_header="true",
    )
    assert response.status_code == 200
    assert "X-Total-Count" not in response.headers
    assert "Link" not in response.headers


def test_empty_result_per_api_version(emu, http):
    v1 = table_get(http, emu, prefix="v1/", sysparm_query="state=99")
    assert v1.status_code == 404
    assert v1.json() == {
        "error": {
            "message": "No Record found",
            "detail": "Records matching query not found. Check query parameter or offset parameter",
        },
        "status": "failure",
    }
    for prefix in ("v2/", ""):
        response = table_get(http, emu, prefix=prefix, sysparm_query="state=99")
        assert response.status_code == 200
        assert response.json() == {"result": []}
        assert response.headers["X-Total-Count"] == "0"
    assert table_get(http, emu, prefix="v1/", sysparm_query="state=7").status_code == 200


# -- reference and display values --------------------------------------------------------


def first_row(http, emu, **params) -> dict[str, Any]:
    params.setdefault("sysparm_fields", "assigned_to,number,caller_id")
    return table_get(http, emu, sysparm_query="number=INC0000001", **params).json()["result"][0]


def test_reference_link_and_value(emu, http):
    row = first_row(http, emu)
    assert row["assigned_to"] == {
        "link": f"{emu.url}/api/now/table/sys_user/{ALICE}",
        "value": ALICE,
    }
    assert row["number"] == "INC0000001"
    empty = table_get(
        http, emu, sysparm_query="number=INC0000004", sysparm_fields="assigned_to"
    ).json()["result"][0]
    assert empty["assigned_to"] == ""


def test_reference_plain_when_links_excluded(emu, http):
    row = first_row(http, emu, sysparm_exclude_reference_link="true")
    assert row == {"assigned_to": ALICE, "number": "INC0000001", "caller_id": CAROL}


def test_display_value_true(emu, http):
    plain = first_row(
        http, emu, sysparm_display_value="true", sysparm_exclude_reference_link="true"
    )
    assert plain == {
        "assigned_to": "Alice Archer",
        "number": "INC0000001",
        "caller_id": "Carol Cole",
    }
    linked = first_row(http, emu, sysparm_display_value="true")
    assert linked["assigned_to"] == {
        "display_value": "Alice Archer",
        "link": f"{emu.url}/api/now/table/sys_user/{ALICE}",
    }


def test_display_value_all(emu, http):
    row = first_row(http, emu, sysparm_display_value="all")
    assert row["assigned_to"] == {
        "display_value": "Alice Archer",
        "value": ALICE,
        "link": f"{emu.url}/api/now/table/sys_user/{ALICE}",
    }
    assert row["number"] == {"display_value": "INC0000001", "value": "INC0000001"}
    excluded = first_row(
        http, emu, sysparm_display_value="all", sysparm_exclude_reference_link="true"
    )
    assert excluded["assigned_to"] == {"display_value": "Alice Archer", "value": ALICE}


# -- faults ------------------------------------------------------------------------------


def statuses(http, emu, count: int, **params) -> list[int]:
    return [table_get(http, emu, sysparm_limit=2, **params).status_code for _ in range(count)]


def test_rate_limit_fault(emu, http):
    emu.set_faults_dict({"rate_limit": {"every": 3, "retry_after": 2, "times": 2}})
    codes = []
    for _ in range(9):
        response = table_get(http, emu, sysparm_limit=1)
        codes.append(response.status_code)
        if response.status_code == 429:
            assert response.headers["Retry-After"] == "2"
            assert response.json()["error"]["message"] == "Rate limit exceeded"
    assert codes == [200, 200, 429, 200, 200, 429, 200, 200, 200]


def test_server_error_fault(emu, http):
    emu.set_faults(Faults.from_dict({"server_error": {"every": 2, "status": 502}}))
    assert statuses(http, emu, 4) == [200, 502, 200, 502]
    failing = [table_get(http, emu) for _ in range(2)][1]
    assert failing.json()["status"] == "failure"


def test_html_fault(emu, http):
    emu.set_faults_dict({"html": {"every": 1, "times": 1}})
    response = table_get(http, emu)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "hibernating" in response.text
    assert table_get(http, emu).headers["Content-Type"].startswith("application/json")


def test_slow_fault(emu, http):
    emu.set_faults_dict({"slow": {"seconds": 0.3, "every": 1}})
    started = time.monotonic()
    assert table_get(http, emu).status_code == 200
    assert time.monotonic() - started >= 0.3


def _timed(call) -> float:
    started = time.monotonic()
    assert call().status_code == 200
    return time.monotonic() - started


def test_latency_delays_every_api_request_by_the_latency_plus_jitter(clock, http):
    # given an emulator built with 150 ms of latency and 100 ms of jitter
    with Emulator(make_dataset(), clock=clock, latency_ms=150, latency_jitter_ms=100) as emu:
        # when six reads and an OAuth grant are timed
        reads = [_timed(lambda: table_get(http, emu, sysparm_limit=1)) for _ in range(6)]
        grant = _timed(
            lambda: requests.post(
                f"{emu.url}/oauth_token.do",
                timeout=10,
                data={
                    "grant_type": "password",
                    "username": USER[0],
                    "password": USER[1],
                    **CLIENT,
                },
            )  # fmt: skip
        )
        # then each waited at least the latency and at most latency + jitter (+ slack),
        # and the jitter varies them
        assert all(0.15 <= t < 0.25 + 0.2 for t in [*reads, grant])
        assert max(reads) - min(reads) > 0.005
        # and the control API reads and changes it at run time
        control = f"{emu.url}/__emulator__/latency"
        assert requests.get(control, timeout=10).json()["result"] == {
            "latency_ms": 150.0, "jitter_ms": 100.0,
        }  # fmt: skip
        changed = requests.post(control, json={"latency_ms": 0}, timeout=10)
        assert changed.json()["result"] == {"latency_ms": 0.0, "jitter_ms": 0.0}
        assert _timed(lambda: table_get(http, emu, sysparm_limit=1)) < 0.15
        refused = requests.post(control, json={"latency_ms": -1}, timeout=10)
        assert refused.status_code == 400


def test_transaction_cancelled_only_for_big_limits(emu, http):
    """Default shape: the page is cut off and the error appended, on a 200 (KB1297438)."""
    emu.set_faults_dict({"transaction_cancelled": {"max_limit": 5}})
    big = table_get(http, emu, sysparm_limit=6)
    assert big.status_code == 200
    assert big.text.startswith('{"result":[{"sys_id":"')
    assert big.text.endswith(
        '],"error":{"message":"Transaction cancelled: maximum execution time exceeded",'
        '"detail":"Transaction cancelled: maximum execution time exceeded Check logs for '
        "error trace or enable glide.rest.debug property to verify REST request "
        'processing"},"status":"failure"}'
    )
    assert "Transaction cancelled" in table_get(http, emu).text  # default limit is 10000
    small = table_get(http, emu, sysparm_limit=5)
    assert small.status_code == 200 and "error" not in small.json()


def test_transaction_cancelled_while_queued_is_a_500(emu, http):
    emu.set_faults_dict({"transaction_cancelled": {"max_limit": 5, "status": 500}})
    big = table_get(http, emu, sysparm_limit=6)
    assert big.status_code == 500
    assert big.json()["error"]["message"] == (
        "Transaction cancelled: maximum execution time exceeded"
    )


def test_edit_between_pages(emu, http):
    emu.set_faults_dict({"edit_between_pages": {"rows": 2, "table": "incident"}, "seed": 3})
    before = {row["sys_id"]: row for row in emu.store.rows("incident")}
    users_before = emu.store.rows("sys_user")
    table_get(http, emu, sysparm_limit=3)
    after = {row["sys_id"]: row for row in emu.store.rows("incident")}
    changed = [key for key in before if before[key] != after[key]]
    assert len(changed) == 2
    for key in changed:
        assert after[key]["sys_mod_count"] == "2"
        assert after[key]["sys_updated_on"] == "2025-03-01 12:00:00"
        assert after[key]["short_description"] != before[key]["short_description"]
    # Other tables are left alone.
    table_get(http, emu, table="sys_user")
    assert emu.store.rows("sys_user") == users_before


def test_duplicates_fault(emu, http):
    emu.set_faults_dict({"duplicates": {"every": 2}})
    first = table_get(http, emu, sysparm_limit=5, sysparm_fields="sys_id").json()["result"]
    second = table_get(http, emu, sysparm_limit=5, sysparm_fields="sys_id").json()["result"]
    assert len({row["sys_id"] for row in first}) == len(first) == 5
    assert len(second) == 6
    assert len({row["sys_id"] for row in second}) == 5


def test_hidden_fault(emu, http):
    emu.set_faults_dict({"hidden": {"modulo": 3}})
    page = table_get(http, emu, sysparm_limit=6)
    assert page.headers["X-Total-Count"] == "12"
    assert numbers(page) == inc(1, 2, 4, 5)  # 3 and 6 fall out after the limit
    assert "next" in parse_link(page.headers["Link"])
    single = http.get(f"{emu.url}/api/now/table/incident/{sid(9)}", timeout=10)
    assert single.status_code == 404


def test_faults_do_not_touch_oauth_or_control(emu, http):
    emu.set_faults_dict({"server_error": {"every": 1}})
    assert oauth(emu, grant_type="client_credentials", **CLIENT).status_code == 200
    assert requests.get(f"{emu.url}/__emulator__/stats", timeout=10).status_code == 200
    assert table_get(http, emu).status_code == 503


def test_faults_from_dict_validates():
    with pytest.raises(ValueError, match="unknown fault"):
        Faults.from_dict({"gremlins": {}})
    with pytest.raises(ValueError, match="unknown options"):
        Faults.from_dict({"rate_limit": {"evry": 2}})
    faults = Faults.from_dict({"hidden": {"modulo": 11}, "slow": {"seconds": 0.2}})
    assert Faults.from_dict(faults.to_dict()) == faults


# -- store -------------------------------------------------------------------------------


def test_store_insert_update_delete(emu, clock):
    store = emu.store
    row = store.insert("incident", {"number": "INC0000100", "priority": 3})
    assert len(row["sys_id"]) == 32 and int(row["sys_id"], 16) >= 0
    assert row["priority"] == "3"
    assert row["sys_created_on"] == row["sys_updated_on"] == "2025-03-01 12:00:00"
    assert row["sys_mod_count"] == "0"
    assert store.rows("incident")[-1]["sys_id"] == row["sys_id"]

    clock.advance(5)
    updated = store.update("incident", row["sys_id"], {"state": "6"})
    assert updated["sys_updated_on"] == "2025-03-01 12:00:05"
    assert updated["sys_mod_count"] == "1"
    assert updated["sys_created_on"] == "2025-03-01 12:00:00"

    # An old row moves to the end of the stored order when it changes.
    clock.advance(1)
    store.update("incident", sid(1), {"state": "3"})
    assert store.rows("incident")[-1]["sys_id"] == sid(1)
    assert store.get("incident", sid(1))["sys_mod_count"] == "2"

    clock.advance(1)
    store.delete("incident", row["sys_id"])
    assert store.get("incident", row["sys_id"]) is None
    (audit,) = store.rows("sys_audit_delete")
    assert audit["tablename"] == "incident"
    assert audit["documentkey"] == row["sys_id"]
    assert audit["sys_created_on"] == audit["sys_updated_on"] == "2025-03-01 12:00:07"
    assert audit["sys_mod_count"] == "0"
    with pytest.raises(KeyError):
        store.delete("incident", row["sys_id"])
    with pytest.raises(KeyError):
        store.update("incident", "f" * 32, {"state": "1"})


def test_store_copies_are_detached(emu):
    row = emu.store.get("incident", sid(1))
    row["state"] = "mutated"
    emu.store.rows("incident")[0]["state"] = "mutated"
    assert emu.store.get("incident", sid(1))["state"] == "2"


def test_bulk_update_shares_one_second(emu, http, clock):
    clock.advance(60)
    ids = [sid(i) for i in (2, 5, 9)]
    assert emu.store.bulk_update("incident", ids, {"state": "6"}) == 3
    rows = {row["sys_id"]: row for row in emu.store.rows("incident")}
    assert {rows[i]["sys_updated_on"] for i in ids} == {"2025-03-01 12:01:00"}
    assert {rows[i]["sys_mod_count"] for i in ids} == {"2"}
    # The API sees the moved rows at the end, ordered by sys_id within the second.
    assert query_numbers(http, emu, "sys_updated_on>2024-12-31 00:00:00") == inc(2, 5, 9)


def test_sys_audit_delete_is_queryable(emu, http):
    emu.store.delete("incident", sid(4))
    response = table_get(http, emu, table="sys_audit_delete", sysparm_query="tablename=incident")
    assert [row["documentkey"] for row in response.json()["result"]] == [sid(4)]


# -- control API and log -----------------------------------------------------------------


def test_control_api(emu, http, clock):
    control = f"{emu.url}/__emulator__"
    created = requests.post(
        f"{control}/tables/incident/rows", json={"number": "INC0000200"}, timeout=10
    )
    assert created.status_code == 201
    new_id = created.json()["result"]["sys_id"]
    assert query_numbers(http, emu, "number=INC0000200") == ["INC0000200"]

    clock.advance(1)
    patched = requests.patch(
        f"{control}/tables/incident/rows/{new_id}", json={"state": "2"}, timeout=10
    )
    assert patched.json()["result"]["sys_mod_count"] == "1"

    bulk = requests.post(
        f"{control}/tables/incident/bulk_update",
        json={"sys_ids": [sid(1), sid(2)], "set": {"priority": "1"}},
        timeout=10,
    )
    assert bulk.json() == {"result": {"updated": 2}}
    assert emu.store.get("incident", sid(2))["priority"] == "1"

    deleted = requests.delete(f"{control}/tables/incident/rows/{new_id}", timeout=10)
    assert deleted.status_code == 204
    assert emu.store.get("incident", new_id) is None
    missing = requests.delete(f"{control}/tables/incident/rows/{new_id}", timeout=10)
    assert missing.status_code == 404

    faults = requests.post(f"{control}/faults", json={"rate_limit": {"every": 1}}, timeout=10)
    assert faults.json()["result"]["rate_limit"]["every"] == 1
    assert table_get(http, emu).status_code == 429
    assert requests.post(f"{control}/faults", json={"bogus": {}}, timeout=10).status_code == 400
    requests.post(f"{control}/faults", json={}, timeout=10)
    assert table_get(http, emu).status_code == 200

    stats = requests.get(f"{control}/stats", timeout=10).json()["result"]
    assert stats["table_api"] == stats["requests"] == 3
    assert stats["by_status"] == {"200": 2, "429": 1}
    assert stats["by_table"] == {"incident": 3}
    assert stats["faults_fired"] == {}  # counters restart with every new set of faults
    assert requests.post(f"{control}/reset_log", timeout=10).status_code == 204
    assert requests.get(f"{control}/stats", timeout=10).json()["result"]["requests"] == 0


def test_request_log(emu, http):
    table_get(http, emu, sysparm_limit=1)
    oauth(emu, grant_type="client_credentials", **CLIENT)
    requests.get(f"{emu.url}/__emulator__/stats", timeout=10)
    assert emu.request_log == [
        ("GET", "/api/now/table/incident?sysparm_limit=1", 200),
        ("POST", "/oauth_token.do", 200),
    ]
    emu.clear_log()
    assert emu.request_log == []


def test_keep_alive_reuses_connection(emu, http):
    for _ in range(3):
        response = table_get(http, emu, sysparm_limit=1)
        assert response.status_code == 200
    assert response.raw.version == 11
    assert response.headers.get("Connection", "").lower() != "close"


def test_concurrent_reads_and_writes(emu, clock):
    """Readers on several connections while rows change: every page stays well-formed."""
    errors: list[str] = []
    stop = threading.Event()

    def writer() -> None:
        counter = 0
        while not stop.is_set():
            counter += 1
            emu.store.update("incident", sid(counter % 12 + 1), {"state": "2"})
            emu.store.insert("problem", {"number": f"PRB{counter:07d}"})

    def reader() -> None:
        with requests.Session() as session:
            session.auth = USER
            for _ in range(40):
                response = table_get(
                    session, emu, sysparm_query="ORDERBYsys_updated_on^ORDERBYsys_id"
                )
                rows = response.json()["result"]
                keys = [(row["sys_updated_on"], row["sys_id"]) for row in rows]
                if response.status_code != 200 or len(rows) != 12 or keys != sorted(keys):
                    errors.append(f"{response.status_code}: {len(rows)} rows")

    writing = threading.Thread(target=writer)
    writing.start()
    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join()
    stop.set()
    writing.join()
    assert errors == []


def test_stop_with_open_keep_alive_connection():
    emulator = Emulator(make_dataset()).start()
    session = requests.Session()
    session.get(f"{emulator.url}/api/now/table/incident", auth=USER, timeout=10)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 3
    session.close()


# -- command line ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cli_generates_and_serves(tmp_path):
    out = tmp_path / "dataset.json"
    generated = subprocess.run(
        [
            sys.executable,
            "-m",
            "servicenow.emulator.generate",
            "--incidents",
            "50",
            "--users",
            "5",
            "--out",
            str(out),
            "--people-emails",
            "erin@example.com",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert generated.returncode == 0, generated.stderr
    assert len(json.loads(out.read_text())["tables"]["incident"]) == 50

    port = free_port()
    faults = json.dumps({"rate_limit": {"every": 2}})
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "servicenow.emulator",
            "--port",
            str(port),
            "--dataset",
            str(out),
            "--faults",
            faults,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        assert line == f"emulator listening on http://127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}/api/now/table/incident"
        first = requests.get(url, auth=USER, params={"sysparm_limit": 5}, timeout=10)
        assert first.status_code == 200
        assert len(first.json()["result"]) == 5
        assert requests.get(url, auth=USER, timeout=10).status_code == 429
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert process.returncode == 0, process.stderr.read()


def test_cli_latency_option_slows_every_request(tmp_path):
    # given the emulator started from the command line with --latency-ms and --jitter-ms
    dataset = tmp_path / "dataset.json"
    dataset.write_text(json.dumps(make_dataset()))
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "servicenow.emulator", "--port", str(port), "--dataset",
         str(dataset), "--latency-ms", "200", "--jitter-ms", "50"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout.readline().strip().startswith("emulator listening on")
        url = f"http://127.0.0.1:{port}/api/now/table/incident"
        # when a page is read, then it took at least the latency, within the jitter
        elapsed = _timed(lambda: requests.get(url, auth=USER, timeout=10))
        assert 0.2 <= elapsed < 0.25 + 0.2
        control = f"http://127.0.0.1:{port}/__emulator__/latency"
        assert requests.get(control, timeout=10).json()["result"]["latency_ms"] == 200.0
    finally:
        process.terminate()
        process.wait(timeout=10)
    refused = subprocess.run(
        [sys.executable, "-m", "servicenow.emulator", "--dataset", str(dataset),
         "--latency-ms", "-5"],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert refused.returncode == 2 and "--latency-ms" in refused.stderr


def test_cli_faults_from_file(tmp_path):
    from servicenow.emulator.__main__ import _load_faults

    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"hidden": {"modulo": 7}, "seed": 4}))
    assert _load_faults(f"@{path}") == Faults.from_dict({"hidden": {"modulo": 7}, "seed": 4})
    assert _load_faults('{"slow": {"seconds": 0.5}}').slow.seconds == 0.5
    assert _load_faults(None) == Faults()


# -- generator ---------------------------------------------------------------------------

END = datetime(2025, 6, 1, tzinfo=UTC)


def test_generator_is_deterministic():
    one = generate_dataset(300, 20, seed=5, people_emails=["erin.hale@corp.io"], end=END)
    two = generate_dataset(300, 20, seed=5, people_emails=["erin.hale@corp.io"], end=END)
    other = generate_dataset(300, 20, seed=6, people_emails=["erin.hale@corp.io"], end=END)
    assert json.dumps(one) == json.dumps(two)
    assert json.dumps(one) != json.dumps(other)


def test_generator_shape():
    people = ["erin.hale@corp.io", "sam@corp.io"]
    data = generate_dataset(2000, 25, seed=2, people_emails=people, end=END)
    tables = data["tables"]
    users = tables["sys_user"]
    assert len(users) == 25
    assert users[0]["email"] == "erin.hale@corp.io"
    assert users[0]["user_name"] == "erin.hale"
    assert users[0]["name"] == "Erin Hale"
    assert users[1]["name"] == "Sam"
    by_id = {user["sys_id"]: user for user in users}
    for user in users:  # the manager links form a tree: every chain ends at the root
        seen = set()
        current = user
        while current["manager"]:
            assert current["sys_id"] not in seen
            seen.add(current["sys_id"])
            current = by_id[current["manager"]]

    incidents = tables["incident"]
    assert len(incidents) == 2000
    assert incidents[0]["number"] == "INC0010001"
    assert len({row["sys_id"] for row in incidents}) == 2000
    for row in incidents:
        assert len(row["sys_id"]) == 32
        assert all(isinstance(value, str) for value in row.values())
        assert row["state"] in {"1", "2", "3", "6", "7"}
        assert 1 <= int(row["priority"]) <= 5
        assert row["sys_created_on"] <= row["sys_updated_on"] <= "2025-06-01 00:00:00"
        assert row["sys_updated_on"] >= "2024-06-01 00:00:00"
        assert bool(row["closed_at"]) == (row["state"] == "7")
        assert bool(row["resolved_at"]) == (row["state"] in {"6", "7"})
    people_ids = {users[0]["sys_id"], users[1]["sys_id"]}
    share = sum(row["assigned_to"] in people_ids for row in incidents) / len(incidents)
    assert 0.85 < share < 0.97
    per_second: dict[str, int] = {}
    for row in incidents:
        per_second[row["sys_updated_on"]] = per_second.get(row["sys_updated_on"], 0) + 1
    assert max(per_second.values()) >= 20

    for table, prefix in [
        ("change_request", "CHG"),
        ("problem", "PRB"),
        ("rm_story", "STRY"),
        ("sc_req_item", "RITM"),
    ]:
        assert 24 <= len(tables[table]) <= 60
        assert all(row["number"].startswith(prefix) for row in tables[table])
    assert data["credentials"]["users"][0]["user_name"] == "integration"
    assert data["credentials"]["oauth_clients"][0]["client_id"] == "ladder-tracker"
    assert "change_request" not in generate_dataset(5, 2, other_tables=False)["tables"]


def test_demo_dataset_serves(http):
    data = demo_dataset(["erin@example.com"])
    assert len(data["tables"]["incident"]) == 400
    assert len(data["tables"]["sys_user"]) == 30
    with Emulator(data) as emulator:
        response = http.get(
            f"{emulator.url}/api/now/table/sys_user",
            params={"sysparm_query": "email=erin@example.com", "sysparm_fields": "name"},
            timeout=10,
        )
        assert response.json()["result"] == [{"name": "Erin"}]


def test_generator_makes_100k_incidents():
    # Its speed is the benchmarks' business (timings are never asserted in tests).
    data = generate_dataset(100_000, 200, seed=1, end=END)
    incidents = data["tables"]["incident"]
    assert len(incidents) == 100_000
    assert len({row["sys_id"] for row in incidents}) == 100_000


def test_emulator_serves_tls_with_a_test_certificate(tls_emulator, tls_files):
    assert tls_emulator.url.startswith("https://127.0.0.1:")
    response = requests.get(
        f"{tls_emulator.url}/api/now/table/incident",
        params={"sysparm_limit": 2},
        auth=("integration", "integration-pass"),
        verify=tls_files["ca"],
        timeout=10,
    )
    assert response.status_code == 200
    assert len(response.json()["result"]) == 2
    # Without the test CA the certificate is refused: it really is TLS with our own cert.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tls_emulator.url}/api/now/table/incident", timeout=10)


def test_generator_adds_who_saw_the_work_and_the_emulator_serves_it(http):
    people = ["erin.hale@corp.io", "sam@corp.io", "kim@corp.io"]
    data = generate_dataset(200, 12, seed=4, people_emails=people, end=END)
    tables = data["tables"]
    users = {u["sys_id"]: u for u in tables["sys_user"]}
    people_names = {u["user_name"] for u in tables["sys_user"][:3]}
    incidents = {r["sys_id"]: r for r in tables["incident"]}
    co = [r for r in incidents.values() if r["additional_assignee_list"]]
    assert len(co) > 50
    for row in co:  # co-assignees are users, never the assignee
        ids = row["additional_assignee_list"].split(",")
        assert all(i in users for i in ids) and row["assigned_to"] not in ids
    notes = tables["sys_journal_field"]
    assert {n["element"] for n in notes} == {"work_notes", "comments"}
    assert sum(n["sys_created_by"] in people_names for n in notes) / len(notes) > 0.8
    approvals = tables["sysapproval_approver"]
    changes = {r["sys_id"] for r in tables["change_request"]}
    assert approvals and all(a["sysapproval"] in changes for a in approvals)
    assert all(a["approver"] in users for a in approvals)
    # the rows before the witnesses did not move: the same seed without them is the same
    plain = generate_dataset(200, 12, seed=4, people_emails=people, end=END, witnesses=False)
    assert [r["number"] for r in plain["tables"]["incident"]] == [
        r["number"] for r in tables["incident"]
    ]
    assert "sys_journal_field" not in plain["tables"]

    with Emulator(data) as emulator:
        target = notes[0]["element_id"]
        got = http.get(
            f"{emulator.url}/api/now/table/sys_journal_field",
            params={
                "sysparm_query": f"element_id={target}^elementINwork_notes,comments",
                "sysparm_fields": "sys_created_by,element",
            },
            timeout=10,
        ).json()["result"]
        assert len(got) == sum(n["element_id"] == target for n in notes)
        approval = approvals[0]
        got = http.get(
            f"{emulator.url}/api/now/table/sysapproval_approver",
            params={
                "sysparm_query": f"sysapproval={approval['sysapproval']}",
                "sysparm_display_value": "true",
            },
            timeout=10,
        ).json()["result"]
        assert users[approval["approver"]]["name"] in [a["approver"]["display_value"] for a in got]
    with Emulator(plain) as emulator:  # the tables exist (empty) on any instance
        response = http.get(f"{emulator.url}/api/now/table/sysapproval_approver", timeout=10)
        assert response.status_code == 200 and response.json()["result"] == []
