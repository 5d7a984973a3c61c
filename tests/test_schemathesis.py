"""Schemathesis over every operation of the API, as an admin and as an engineer, with every
check (no 5xx, status codes and bodies as the schema documents them, content types, headers,
auth enforced, ...), against a live server holding an org, packets and ServiceNow config.

Bounded: a fixed seed, MAX_EXAMPLES per operation and phase, one worker, and a time cap per
role; the run prints its duration. Only the operations that would leave loopback are out:
the connection check and a sync request call the ServiceNow instance a connection names.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.utils import timezone

from apps.security.services import token_create
from servicenow.models import Connection, Source, SyncRun, WorkItem
from tests.factories import EvidenceFactory, PacketFactory

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5"))
MAX_SECONDS = int(os.environ.get("SCHEMATHESIS_MAX_SECONDS", "50"))  # per role
PHASES = os.environ.get("SCHEMATHESIS_PHASES", "examples,fuzzing")
# call the ServiceNow instance a connection names (off loopback)
OUTBOUND = r"^/api/v1/servicenow/(connections/\{id\}/test|sources/\{id\}/sync)/$"


@pytest.fixture
def world(org, cycle, ladder_version):
    eng, peer, manager, committee = org.engineer, org.peer, org.manager, org.committee
    items = [EvidenceFactory(person=eng, title=f"Work {i}") for i in range(3)]
    PacketFactory(person=eng, cycle=cycle, ladder_version=ladder_version, state="submitted",
                  evidence=items)  # fmt: skip
    PacketFactory(person=peer, cycle=cycle, ladder_version=ladder_version, state="endorsed",
                  evidence=[EvidenceFactory(person=peer, title="Peer work")], reviewer=manager,
                  decider=None)  # fmt: skip
    connection = Connection.objects.create(name="Acme", instance_url="https://acme.example.com")
    source = Source.objects.create(connection=connection, name="incident", table="incident")
    SyncRun.objects.create(source=source, status="succeeded")
    WorkItem.objects.create(connection=connection, source=source, table="incident",
                            sys_id="a" * 32, number="INC0000001", sys_updated_on=timezone.now(),
                            person=eng)  # fmt: skip
    return {"admin": org.admin.user, "engineer": eng.user, "committee": committee.user}


def schemathesis_run(
    base_url: str, token: str, schema_file: Path, report: Path
) -> subprocess.CompletedProcess:
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG),
        "run", str(schema_file),
        "--url", base_url,
        "--header", f"Authorization: Token {token}",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20261203",
        "--workers", "1",
        "--no-shrink",
        "--phases", PHASES,
        "--max-time", str(MAX_SECONDS),
        "--request-timeout", "30",
        "--exclude-path-regex", OUTBOUND,
        "--report", "junit", "--report-junit-path", str(report),
    ]  # fmt: skip
    env = {
        **os.environ,
        "NO_COLOR": "1",
        "SCHEMATHESIS_TELEMETRY": "false",
        "LT_SCHEMATHESIS_HOOKS": str(HOOKS),
    }
    return subprocess.run(
        command, cwd=report.parent, env=env, capture_output=True, text=True, timeout=MAX_SECONDS * 3
    )


@pytest.mark.parametrize("role", ["admin", "engineer"])
def test_every_operation_passes_every_check(world, live_server, role, tmp_path, spec):
    _, token = token_create(actor=world[role], name="schemathesis")
    # the schema as /api/schema/ serves it (the `spec` fixture), from a file: generating it
    # takes seconds, longer than Schemathesis waits for a URL on a loaded machine
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(spec))

    started = time.monotonic()
    result = schemathesis_run(live_server.url, token, schema_file, tmp_path / "junit.xml")
    elapsed = time.monotonic() - started

    print(f"schemathesis as {role}: {elapsed:.1f}s, max {MAX_EXAMPLES} examples per operation")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "No issues found" in output or "passed" in output, output[-5000:]
