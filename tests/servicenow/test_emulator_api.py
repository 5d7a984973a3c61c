"""The emulator's APIs beyond the paged Table API read, over real HTTP sockets: links from
the request's host, name-value pair filters, display values of choices and dates, Table API
writes, the Batch and Aggregate APIs, OAuth token reuse and record pages."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from servicenow.emulator import Emulator
from servicenow.models import record_url

from .test_emulator import ALICE, BOB, CAROL, CLIENT, USER, FakeClock, make_dataset, sid


def dataset() -> dict[str, Any]:
    data = make_dataset()
    data["tables"]["incident"][0]["opened_at"] = "2024-07-01 03:30:00"  # PDT is UTC-7
    data["tables"]["incident"][0]["category"] = "network"
    data["display"] = {"time_zone": "America/Los_Angeles"}
    data["credentials"]["users"].append(
        {"user_name": "tokyo", "password": "pw", "time_zone": "Asia/Tokyo"}
    )
    return data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock):
    emulator = Emulator(dataset(), clock=clock).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def http():
    session = requests.Session()
    session.auth = USER
    yield session
    session.close()


def url(emu: Emulator, path: str) -> str:
    return f"{emu.url}{path}"


def get(http, emu, path: str, **params) -> requests.Response:
    return http.get(url(emu, path), params=params, timeout=10)


def numbers(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row["number"] for row in response.json()["result"]]


# -- links follow the host the client used -------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "base"),
    [
        pytest.param({"Host": "sn.example.test:8443"}, "http://sn.example.test:8443", id="host"),
        pytest.param(
            {
                "Host": "10.0.0.5",
                "X-Forwarded-Host": "acme.example.com",
                "X-Forwarded-Proto": "https",
            },
            "https://acme.example.com",
            id="tls-terminator",
        ),
        pytest.param({"Host": "evil.test/<script>"}, None, id="malformed-host-ignored"),
    ],
)
def test_links_use_the_request_host(emu, http, headers, base):
    base = base or emu.url
    response = http.get(
        url(emu, "/api/now/table/incident"),
        params={
            "sysparm_limit": 1,
            "sysparm_fields": "assigned_to",
            "sysparm_query": "number=INC0000001",
        },
        headers=headers,
        timeout=10,
    )
    assert response.json()["result"][0]["assigned_to"]["link"] == (
        f"{base}/api/now/table/sys_user/{ALICE}"
    )
    assert response.headers["Link"].startswith(f"<{base}/api/now/table/incident?")


# -- name-value pair filters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"state": "7"}, [9, 10, 11, 12], id="raw-value"),
        pytest.param({"state": "Closed"}, [9, 10, 11, 12], id="choice-label"),
        pytest.param({"state": "closed"}, [9, 10, 11, 12], id="choice-label-any-case"),
        pytest.param({"state": "7", "category": "network"}, [9, 10, 11, 12], id="and"),
        pytest.param({"state": "2", "assigned_to": "alice"}, [1, 3, 5, 7], id="ref-user-name"),
        pytest.param({"state": "2", "assigned_to": "Bob Baker"}, [2, 6], id="ref-display"),
        pytest.param({"assigned_to.email": "bob@x.io", "state": "7"}, [10, 12], id="dot-walk"),
        pytest.param({"no_such_field": "x", "state": "7"}, [9, 10, 11, 12], id="unknown-ignored"),
    ],
)
def test_name_value_pair_filters(emu, http, params, expected):
    response = get(
        http,
        emu,
        "/api/now/table/incident",
        sysparm_fields="number",
        sysparm_query="ORDERBYnumber",
        **params,
    )
    assert numbers(response) == [f"INC{i:07d}" for i in expected]
    assert response.headers["X-Total-Count"] == str(len(expected))


def test_name_value_pairs_and_with_sysparm_query(emu, http):
    response = get(
        http,
        emu,
        "/api/now/table/incident",
        sysparm_fields="number",
        sysparm_query="priority=1^ORDERBYnumber",
        state="2",
    )
    assert numbers(response) == [f"INC{i:07d}" for i in (5,)]


# -- display values of choices and dates ---------------------------------------------------


def first_incident(http, emu, auth=USER, **params) -> dict[str, Any]:
    response = http.get(
        url(emu, f"/api/now/table/incident/{sid(1)}"),
        params={"sysparm_fields": "state,priority,opened_at,category,number", **params},
        auth=auth,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_display_value_true_shows_labels_and_local_dates(emu, http):
    assert first_incident(http, emu, sysparm_display_value="true") == {
        "state": "In Progress",
        "priority": "2 - High",
        "opened_at": "2024-06-30 20:30:00",
        "category": "Network",
        "number": "INC0000001",
    }


def test_display_value_all_pairs_each_value_with_its_display(emu, http):
    row = first_incident(http, emu, sysparm_display_value="all")
    assert row["state"] == {"display_value": "In Progress", "value": "2"}
    assert row["opened_at"] == {
        "display_value": "2024-06-30 20:30:00",
        "value": "2024-07-01 03:30:00",
    }
    assert row["number"] == {"display_value": "INC0000001", "value": "INC0000001"}


def test_dates_follow_the_users_own_time_zone(emu, http):
    row = first_incident(http, emu, auth=("tokyo", "pw"), sysparm_display_value="true")
    assert row["opened_at"] == "2024-07-01 12:30:00"


def test_raw_values_are_untouched(emu, http):
    assert first_incident(http, emu) == {
        "state": "2",
        "priority": "2",
        "opened_at": "2024-07-01 03:30:00",
        "category": "network",
        "number": "INC0000001",
    }


def test_a_value_missing_from_the_choice_list_shows_as_stored(emu, http):
    response = get(
        http,
        emu,
        f"/api/now/table/incident/{sid(2)}",
        sysparm_fields="category",
        sysparm_display_value="true",
    )
    assert response.json()["result"] == {"category": "ml_model"}


# -- Table API writes ----------------------------------------------------------------------


def test_post_creates_a_record(emu, http, clock):
    response = http.post(
        url(emu, "/api/now/table/incident"),
        params={
            "sysparm_display_value": "all",
            "sysparm_fields": "sys_id,number,state,sys_created_on",
        },
        json={"number": "INC0000100", "state": "1", "sys_created_on": "2000-01-01 00:00:00"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    new_id = result["sys_id"]["value"]
    assert response.headers["Location"] == f"{emu.url}/api/now/table/incident/{new_id}"
    assert result["state"] == {"display_value": "New", "value": "1"}
    # System fields are the instance's own: a client cannot backdate a record.
    assert result["sys_created_on"]["value"] == "2025-03-01 12:00:00"
    stored = emu.store.get("incident", new_id)
    assert stored["category"] == ""  # every column exists on a new record, empty if not given
    assert (stored["number"], stored["sys_updated_on"], stored["sys_mod_count"]) == (
        "INC0000100",
        "2025-03-01 12:00:00",
        "0",
    )


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_patch_and_put_update_the_record_and_its_stamp(emu, http, clock, method):
    clock.advance(60)
    response = http.request(
        method,
        url(emu, f"/api/now/table/incident/{sid(3)}"),
        json={"state": {"value": "6", "display_value": "Resolved"}, "sys_mod_count": "99"},
        params={"sysparm_fields": "state,sys_updated_on,sys_mod_count,number"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {
        "state": "6",
        "sys_updated_on": "2025-03-01 12:01:00",
        "sys_mod_count": "2",
        "number": "INC0000003",
    }
    # An incremental read now sees the write after everything else.
    newest = get(
        http,
        emu,
        "/api/now/table/incident",
        sysparm_query="ORDERBYDESCsys_updated_on",
        sysparm_limit=1,
        sysparm_fields="number",
    )
    assert numbers(newest) == ["INC0000003"]


def test_delete_removes_the_record_and_audits_it(emu, http):
    response = http.delete(url(emu, f"/api/now/table/incident/{sid(4)}"), timeout=10)
    assert (response.status_code, response.content) == (204, b"")
    assert emu.store.get("incident", sid(4)) is None
    assert [r["documentkey"] for r in emu.store.rows("sys_audit_delete")] == [sid(4)]
    again = http.delete(url(emu, f"/api/now/table/incident/{sid(4)}"), timeout=10)
    assert again.status_code == 404
    assert again.json()["error"]["message"] == "No Record found"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        pytest.param("POST", f"/api/now/table/incident/{sid(1)}", {"json": {}}, 405, id="post-id"),
        pytest.param("PATCH", "/api/now/table/incident", {"json": {}}, 405, id="patch-no-id"),
        pytest.param("DELETE", "/api/now/table/incident", {}, 405, id="delete-no-id"),
        pytest.param(
            "PATCH", f"/api/now/table/incident/{'f' * 32}", {"json": {}}, 404, id="missing"
        ),
        pytest.param("POST", "/api/now/table/incident", {"data": b"{nope"}, 400, id="bad-json"),
        pytest.param("POST", "/api/now/table/incident", {"json": [1]}, 400, id="not-object"),
        pytest.param("POST", "/api/now/table/nope", {"json": {}}, 400, id="invalid-table"),
        pytest.param(
            "POST",
            "/api/now/table/incident",
            {"json": {}, "auth": ("limited", "pw")},
            403,
            id="forbidden",
        ),
        pytest.param(
            "POST", "/api/now/table/incident", {"json": {}, "auth": ("x", "y")}, 401, id="no-auth"
        ),
        pytest.param(
            "POST", "/api/now/table/incident", {"json": {"sys_id": sid(1)}}, 400, id="dup-sys-id"
        ),
    ],
)
def test_write_errors(emu, http, method, path, kwargs, status):
    before = emu.store.rows("incident")
    response = http.request(method, url(emu, path), timeout=10, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["status"] == "failure"
    assert emu.store.rows("incident") == before


def test_writes_do_not_fire_or_count_faults(emu, http):
    emu.set_faults_dict({"server_error": {"every": 2, "status": 503}})
    assert http.patch(url(emu, f"/api/now/table/incident/{sid(1)}"), json={}, timeout=10).ok
    assert [get(http, emu, "/api/now/table/incident").status_code for _ in range(2)] == [200, 503]


# -- Batch API -----------------------------------------------------------------------------


def b64(payload: Any) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def served_body(item: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(item["body"])) if item["body"] else None


def test_batch_runs_each_request_as_the_caller(emu, http):
    long_in = ",".join([sid(i) for i in (1, 2, 3)] + ["0" * 32] * 500)
    response = http.post(
        url(emu, "/api/now/v1/batch"),
        json={
            "batch_request_id": 7,
            "rest_requests": [
                {
                    "id": "a",
                    "method": "GET",
                    "url": "/api/now/table/incident?sysparm_fields=number"
                    f"&sysparm_query=sys_idIN{long_in}",
                    "headers": [{"name": "Accept", "value": "application/json"}],
                },
                {
                    "id": "b",
                    "method": "POST",
                    "url": "/api/now/table/incident",
                    "body": b64({"number": "INC0000200"}),
                    "exclude_response_headers": True,
                },
                {"id": "c", "method": "GET", "url": "/api/now/table/nope"},
            ],
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["batch_request_id"], body["unserviced_requests"]) == ("7", [])
    first, second, third = body["serviced_requests"]
    assert (first["id"], first["status_code"], first["status_text"]) == ("a", 200, "OK")
    assert [r["number"] for r in served_body(first)["result"]] == [
        "INC0000001",
        "INC0000002",
        "INC0000003",
    ]
    headers = {h["name"]: h["value"] for h in first["headers"]}
    assert headers["X-Total-Count"] == "3"
    assert headers["Content-Type"].startswith("application/json")
    assert (second["status_code"], second["headers"]) == (201, [])
    assert served_body(second)["result"]["number"] == "INC0000200"
    assert third["status_code"] == 400
    assert ("GET", "/api/now/table/nope", 400) in emu.request_log


def test_batch_items_cannot_switch_user(emu, http):
    response = http.post(
        url(emu, "/api/now/v1/batch"),
        auth=("limited", "pw"),
        json={
            "rest_requests": [
                {
                    "id": "1",
                    "method": "GET",
                    "url": "/api/now/table/incident",
                    "headers": [
                        {
                            "name": "Authorization",
                            "value": "Basic "
                            + base64.b64encode(b"integration:integration-pass").decode(),
                        }
                    ],
                }
            ]
        },
        timeout=10,
    )
    assert response.json()["serviced_requests"][0]["status_code"] == 403


@pytest.mark.parametrize(
    ("path", "kwargs", "status"),
    [
        pytest.param("/api/now/batch", {"json": {"rest_requests": []}}, 400, id="unversioned"),
        pytest.param("/api/now/v1/batch", {"json": {}}, 400, id="no-rest-requests"),
        pytest.param("/api/now/v1/batch", {"data": b"{"}, 400, id="bad-json"),
        pytest.param(
            "/api/now/v1/batch",
            {"json": {"rest_requests": []}, "auth": ("x", "y")},
            401,
            id="no-auth",
        ),
    ],
)
def test_batch_errors(emu, http, path, kwargs, status):
    assert http.post(url(emu, path), timeout=10, **kwargs).status_code == status


@pytest.mark.parametrize(
    ("item", "status"),
    [
        pytest.param({"id": "1", "method": "POST", "url": "/api/now/v1/batch"}, 400, id="nested"),
        pytest.param({"id": "1", "method": "GET"}, 400, id="no-url"),
        pytest.param(
            {"id": "1", "method": "POST", "url": "/api/now/table/incident", "body": "!!"},
            400,
            id="bad-b64",
        ),
    ],
)
def test_batch_item_errors(emu, http, item, status):
    response = http.post(url(emu, "/api/now/v1/batch"), json={"rest_requests": [item]}, timeout=10)
    assert response.status_code == 200
    assert response.json()["serviced_requests"][0]["status_code"] == status


# -- Aggregate API -------------------------------------------------------------------------


def stats(http, emu, **params) -> Any:
    response = get(http, emu, "/api/now/stats/incident", **params)
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_aggregate_count_and_field_stats(emu, http):
    assert stats(
        http,
        emu,
        sysparm_count="true",
        sysparm_avg_fields="reassignment_count",
        sysparm_min_fields="reassignment_count,number",
        sysparm_max_fields="reassignment_count",
        sysparm_sum_fields="reassignment_count",
        sysparm_query="state=2",
    ) == {
        "stats": {
            "count": "8",
            "avg": {"reassignment_count": "4.5000"},
            "min": {"reassignment_count": "1", "number": "INC0000001"},
            "max": {"reassignment_count": "8"},  # numeric: 8, not "8" > "10" by text
            "sum": {"reassignment_count": "36"},
        }
    }


def test_aggregate_takes_name_value_pairs(emu, http):
    assert stats(http, emu, sysparm_count="true", state="Closed") == {"stats": {"count": "4"}}


def test_aggregate_group_by_in_value_order(emu, http):
    result = stats(http, emu, sysparm_count="true", sysparm_group_by="state")
    assert result == [
        {"stats": {"count": "8"}, "groupby_fields": [{"field": "state", "value": "2"}]},
        {"stats": {"count": "4"}, "groupby_fields": [{"field": "state", "value": "7"}]},
    ]


def test_aggregate_group_by_with_display_values_having_and_order(emu, http):
    result = stats(
        http,
        emu,
        sysparm_count="true",
        sysparm_group_by="assigned_to",
        sysparm_display_value="all",
        sysparm_having="count^assigned_to^>^2",
        sysparm_order_by="COUNT^DESC",
    )
    assert result == [
        {
            "stats": {"count": "6"},
            "groupby_fields": [
                {"field": "assigned_to", "value": ALICE, "display_value": "Alice Archer"}
            ],
        },
        {
            "stats": {"count": "4"},
            "groupby_fields": [
                {"field": "assigned_to", "value": BOB, "display_value": "Bob Baker"}
            ],
        },
    ]


@pytest.mark.parametrize(
    ("path", "params", "auth", "status"),
    [
        pytest.param(
            "/api/now/stats/nope", {"sysparm_count": "true"}, USER, 400, id="invalid-table"
        ),
        pytest.param(
            "/api/now/stats/incident", {"sysparm_having": "count^x"}, USER, 400, id="bad-having"
        ),
        pytest.param("/api/now/stats/incident", {}, ("limited", "pw"), 403, id="forbidden"),
        pytest.param("/api/now/stats/incident", {}, ("x", "y"), 401, id="no-auth"),
    ],
)
def test_aggregate_errors(emu, http, path, params, auth, status):
    response = http.get(url(emu, path), params=params, auth=auth, timeout=10)
    assert response.status_code == status
    assert response.json()["status"] == "failure"


# -- OAuth: the live token comes back ------------------------------------------------------


def oauth(emu, **form) -> dict[str, Any]:
    response = requests.post(url(emu, "/oauth_token.do"), data={**CLIENT, **form}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(
            {"grant_type": "password", "username": "integration", "password": "integration-pass"},
            id="password",
        ),
        pytest.param({"grant_type": "client_credentials"}, id="client-credentials"),
    ],
)
def test_a_new_grant_returns_the_live_token_with_its_life_extended(emu, clock, form):
    first = oauth(emu, **form)
    clock.advance(1000)
    second = oauth(emu, **form)
    assert (second["access_token"], second["refresh_token"]) == (
        first["access_token"],
        first["refresh_token"],
    )
    clock.advance(1000)  # 2000 s after the first grant, 1000 s after the second
    still = requests.get(
        url(emu, "/api/now/table/incident"),
        params={"sysparm_limit": 1},
        headers={"Authorization": f"Bearer {first['access_token']}"},
        timeout=10,
    )
    assert still.status_code == 200
    clock.advance(1000)
    assert oauth(emu, **form)["access_token"] != first["access_token"]  # expired: a new one


def test_client_secret_in_a_basic_header(emu):
    response = requests.post(
        url(emu, "/oauth_token.do"),
        data={"grant_type": "password", "username": "integration", "password": "integration-pass"},
        auth=(CLIENT["client_id"], CLIENT["client_secret"]),
        timeout=10,
    )
    assert response.status_code == 200
    wrong = requests.post(
        url(emu, "/oauth_token.do"),
        data={"grant_type": "client_credentials"},
        auth=(CLIENT["client_id"], "wrong"),
        timeout=10,
    )
    assert wrong.status_code == 401


# -- record pages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"/nav_to.do?uri=incident.do?sys_id={sid(1)}", id="nav-to-unencoded"),
        pytest.param(f"/nav_to.do?uri=%2Fincident.do%3Fsys_id%3D{sid(1)}", id="nav-to-encoded"),
        pytest.param(f"/incident.do?sys_id={sid(1)}&sysparm_stack=x", id="form"),
    ],
)
def test_record_page(emu, path):
    emu.store.update("incident", sid(1), {"short_description": "<b>disk</b> full"})
    response = requests.get(url(emu, path), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "<h1>INC0000001</h1>" in page
    assert "&lt;b&gt;disk&lt;/b&gt; full" in page and "<b>disk</b>" not in page
    assert "In Progress <code>2</code>" in page
    assert f'href="/nav_to.do?uri=sys_user.do%3Fsys_id%3D{ALICE}">Alice Archer</a>' in page
    caller = requests.get(url(emu, f"/nav_to.do?uri=sys_user.do%3Fsys_id%3D{CAROL}"), timeout=10)
    assert "<h1>Carol Cole</h1>" in caller.text


def test_the_links_ladder_tracker_shows_lead_to_the_record(emu):
    response = requests.get(record_url(emu.url + "/", "incident", sid(10)), timeout=10)
    assert response.status_code == 200
    assert "<h1>INC0000010</h1>" in response.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param(f"/nav_to.do?uri=incident.do?sys_id={'f' * 32}", 404, id="missing-record"),
        pytest.param(f"/nav_to.do?uri=nope.do?sys_id={sid(1)}", 404, id="missing-table"),
        pytest.param("/nav_to.do?uri=incident.do", 404, id="no-sys-id"),
    ],
)
def test_record_page_not_found(emu, path, status):
    response = requests.get(url(emu, path), timeout=10)
    assert response.status_code == status
