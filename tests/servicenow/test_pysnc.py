"""ServiceNow's own Python client, PySNC, against the emulator over https.

PySNC lives in a venv of its own (var/bench-venv, shared with `make bench-sync`), made
here from PyPI when missing: the project's .venv never gets it. The driver
(pysnc_driver.py) runs every scenario in one PySNC process and prints what PySNC saw;
these tests compare that with the emulator's own rows. If the venv cannot be made (no
PyPI), the tests fail: they are not optional.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from servicenow.emulator import Emulator
from servicenow.emulator.render import DEFAULT_CHOICES, DEFAULT_TIME_ZONE

from .conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "var" / "bench-venv"
DRIVER = Path(__file__).with_name("pysnc_driver.py")
PACKAGES = ("pysnc", "requests-oauthlib")  # requests-oauthlib: PySNC's OAuth flows
INSTALL_TIMEOUT = 300
DRIVER_TIMEOUT = 120
USER, PASSWORD = "integration", "integration-pass"
CLIENT_ID, CLIENT_SECRET = "ladder-tracker", "ladder-tracker-secret"


def _run(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(command)} took over {timeout}s: {exc.stderr!r}")


def pysnc_python() -> Path:
    """The PySNC venv's interpreter, creating the venv and installing PySNC when needed.

    A venv that exists but cannot import PySNC is topped up; one that cannot even do that
    (a moved base interpreter, a half-made venv) is made again from scratch, once.
    """
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import pysnc, requests_oauthlib"]
    if python.exists() and _run(probe, 60).returncode == 0:
        return python
    errors: list[str] = []
    for venv_flags in ([], ["--clear"]):
        if venv_flags or not python.exists():
            made = _run([sys.executable, "-m", "venv", *venv_flags, str(VENV)], 120)
            if made.returncode != 0:
                errors.append(made.stderr)
                continue
        installed = _run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES],
            INSTALL_TIMEOUT,
        )
        if installed.returncode == 0 and _run(probe, 60).returncode == 0:
            return python
        errors.append(installed.stderr)
    pytest.fail(f"could not install {PACKAGES} from PyPI into {VENV}: {errors}")


@pytest.fixture(scope="module")
def emu(tls_files):
    emulator = Emulator(make_dataset(incidents=500), tls=(tls_files["cert"], tls_files["key"]))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def incidents(emu) -> list[dict[str, str]]:
    return emu.store.rows("incident")


@pytest.fixture(scope="module")
def target(incidents) -> dict[str, str]:
    """An assigned, in-progress incident: every display rule applies to it."""
    return next(row for row in incidents if row["assigned_to"] and row["state"] == "2")


@pytest.fixture(scope="module")
def in_ids(incidents) -> list[str]:
    """400 ids for an IN query: 390 real ones and 10 that match nothing."""
    return sorted(row["sys_id"] for row in incidents)[:390] + [f"{n:032x}" for n in range(10)]


@pytest.fixture(scope="module")
def seen(emu, tls_files, target, in_ids) -> dict:
    """Everything PySNC saw, from one run of the driver against https://localhost:PORT
    (the emulator is bound to 127.0.0.1: links must follow the host the client used)."""
    python = pysnc_python()
    emu.clear_log()
    args = {
        "url": f"https://localhost:{emu.port}",
        "ca": tls_files["ca"],
        "user": USER,
        "password": PASSWORD,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "get_sys_id": target["sys_id"],
        "in_ids": in_ids,
        "insert": {"short_description": "Inserted by PySNC", "state": "1", "impact": "2"},
    }
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's verify= for
    # requests sent the way PySNC sends them (psf/requests#3829); drop them so the
    # client trusts exactly the test CA it is given.
    env = {k: v for k, v in os.environ.items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    done = _run([str(python), str(DRIVER), json.dumps(args)], DRIVER_TIMEOUT, env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_number(rows):
    return sorted(row["number"] for row in rows)


def test_encoded_query_is_filtered_ordered_and_counted(seen, incidents):
    expected = by_number(r for r in incidents if r["state"] == "2" and int(r["priority"]) <= 2)
    assert expected  # the dataset has such rows, so the comparison means something
    assert seen["encoded"] == expected
    assert seen["encoded_count"] == len(expected)


def test_plain_conditions_match_the_encoded_query(seen):
    assert seen["plain"] == seen["encoded"]


def test_descending_order(seen, incidents):
    assert seen["desc_first5"] == by_number(incidents)[::-1][:5]


def test_iteration_with_a_small_batch_size_pages_through_every_row(seen, emu, incidents):
    expected = by_number(r for r in incidents if r["state"] == "6")
    assert sorted(seen["batched"]) == expected
    assert len(seen["batched"]) == len(set(seen["batched"]))
    assert seen["batched_count"] == len(expected)
    pages = [
        path
        for method, path, status in emu.request_log
        if method == "GET" and "sysparm_limit=7&" in path + "&" and status == 200
    ]
    assert len(pages) == -(-len(expected) // 7)  # ceil: one request per 7 rows


def test_get_by_sys_id_with_display_values(seen, emu, target):
    user = emu.store.get("sys_user", target["assigned_to"])
    opened = datetime.strptime(target["opened_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert seen["get_found"] is True
    assert seen["get_missing"] is False
    assert seen["get"] == {
        "number": target["number"],
        "state": ["2", DEFAULT_CHOICES["incident"]["state"]["2"]],
        "priority": [
            target["priority"],
            DEFAULT_CHOICES["incident"]["priority"][target["priority"]],
        ],
        "opened_at": [
            target["opened_at"],
            opened.astimezone(ZoneInfo(DEFAULT_TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S"),
        ],
        "assigned_to": [target["assigned_to"], user["name"]],
    }
    assert seen["get"]["opened_at"][0] != seen["get"]["opened_at"][1]


def test_display_values_and_links_from_the_request_host(seen, emu, target):
    user = emu.store.get("sys_user", target["assigned_to"])
    assert seen["display_true"] == {
        "state": "In Progress",
        "assigned_to": user["name"],
        "assigned_to_link": (
            f"https://localhost:{emu.port}/api/now/table/sys_user/{target['assigned_to']}"
        ),
    }


def test_record_link_serves_a_page(seen, target):
    assert unquote(seen["get_link"]).endswith(f"/incident.do?sys_id={target['sys_id']}")
    status, content_type, page = seen["record_page"]
    assert (status, content_type.split(";")[0]) == (200, "text/html")
    assert target["number"] in page and "In Progress" in page


def test_dot_walked_fields(seen, emu, target):
    user = emu.store.get("sys_user", target["assigned_to"])
    assert seen["dotwalk"] == {"assigned_to.email": user["email"], "assigned_to.name": user["name"]}


def test_a_400_id_in_query_goes_through_the_batch_api(seen, emu, in_ids):
    assert seen["in_count"] == 390
    assert sorted(seen["in_ids"]) == in_ids[:390]
    assert ("POST", "/api/now/v1/batch", 200) in emu.request_log


def test_insert_update_delete(seen, emu):
    assert seen["insert_id"] and seen["update_id"] == seen["insert_id"]
    assert seen["after_update"] == ["6", "1"]
    assert seen["deleted"] is True
    assert seen["get_deleted"] is False
    assert emu.store.get("incident", seen["insert_id"]) is None
    audit = emu.store.rows("sys_audit_delete")
    assert seen["insert_id"] in {row["documentkey"] for row in audit}


def test_update_and_delete_multiple_go_through_the_batch_api(seen, emu):
    assert seen["update_multiple"] is True
    assert seen["bulk_states"] == ["7", "7", "7"]
    assert seen["delete_multiple"] is True
    assert [
        r for r in emu.store.rows("incident") if r.get("short_description") == "Bulk by PySNC"
    ] == []
    sub_requests = [
        (method, status) for method, path, status in emu.request_log if "Bulk" not in path
    ]
    assert sub_requests.count(("PATCH", 200)) == 3 + 1  # three in the batch, one update()
    assert sub_requests.count(("DELETE", 204)) == 3 + 1  # three in the batch, one delete()


def test_oauth_password_grant_returns_the_live_token(seen):
    assert seen["oauth_get"] is True
    assert seen["oauth_same_token"] is True
