"""The embedded default as a user runs it, in subprocesses: `manage.py runserver` and a real
`celery -A ladder_tracker worker` on kombu's SQLAlchemy broker, both on SQLite files of
their own under a temp folder (never var/, never the suite's test database), with
`ladder_tracker.settings.base` (not the suite's eager settings).

The ServiceNow instance is an in-process emulator the caller starts; the stack's connection
and source point at it over real HTTP. Used by tests/servicenow/test_embedded_worker.py and
the browser journey tests/e2e/test_sync_progress_journey.py. Works the same in CI's second
pass: the stack's own environment replaces DATABASE_URL and CELERY_BROKER_URL.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
ADMIN = ("stack-admin", "stack-pass-2026")

SETUP = """
import json
from django.contrib.auth import get_user_model
from apps.security.services import token_create
from servicenow.models import Connection, Source
from servicenow.services import connection_save, source_save

admin = get_user_model().objects.create_superuser({username!r}, "admin@example.com", {password!r})
connection = connection_save(
    connection=Connection(name="Emulator", instance_url={url!r}, username="integration",
                          page_size={page_size}),
    password="integration-pass",
)
source = source_save(source=Source(connection=connection, name="Incidents", table="incident",
                                   kind=Source.Kind.WORK_ITEMS))
_, token = token_create(actor=admin, name="stack")
print(json.dumps({{"source": source.pk, "token": token}}))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedStack:
    """`with EmbeddedStack(tmp_path, emulator_url, worker=True) as stack:` — server up,
    worker up (when asked), an admin, a connection and an incident source ready.

    worker=False with eager=True is the other embedded runtime: no worker at all, tasks
    eager, and "Sync now" still answering at once (the run goes to a thread of the server)."""

    def __init__(
        self,
        folder: Path,
        emulator_url: str,
        *,
        worker: bool = True,
        eager: bool = False,
        page_size: int = 50,
    ) -> None:
        self.folder = folder
        self.emulator_url = emulator_url
        self.want_worker = worker
        self.page_size = page_size
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.broker_url = f"sqla+sqlite:///{folder / 'celery-broker.sqlite'}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "BROKER_", "CACHE_URL"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="ladder_tracker.settings.base",
            DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
            CELERY_BROKER_URL=self.broker_url,
            CELERY_RESULT_BACKEND=f"db+sqlite:///{folder / 'celery-results.sqlite'}",
            CELERY_TASK_ALWAYS_EAGER="true" if eager else "false",
            SERVICENOW_RUN_RETRY_BASE_SECONDS="0.2",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        self.env = env
        self.processes: list[subprocess.Popen] = []
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.source_id = 0
        self.token = ""

    # -- lifecycle -----------------------------------------------------------------------

    def _run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=180,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, *args], cwd=ROOT, env=self.env, stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def start(self) -> EmbeddedStack:
        self._run("manage.py", "migrate", "--noinput", "-v0")
        script = SETUP.format(
            username=ADMIN[0], password=ADMIN[1], url=self.emulator_url, page_size=self.page_size
        )
        ids = json.loads(self._run("manage.py", "shell", "-c", script).strip().splitlines()[-1])
        self.source_id, self.token = ids["source"], ids["token"]
        if self.want_worker:
            self.worker = self._spawn(
                "worker", "-m", "celery", "-A", "ladder_tracker", "worker", "--pool=solo",
                "--loglevel=INFO", "--hostname", f"stack-{self.port}@%h",
            )  # fmt: skip
        self.server = self._spawn(
            "server", "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"
        )
        self._wait(self._server_up, 60, "the server", "server")
        if self.worker is not None:
            self._wait(lambda: "ready." in self.log("worker"), 60, "the worker", "worker")
        # the server's first API answer imports and builds what later ones reuse: not timed
        assert self.api("GET", f"servicenow/sources/{self.source_id}/").status_code == 200
        return self

    def _server_up(self) -> bool:
        try:
            return requests.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def _wait(self, predicate, timeout: float, what: str, log: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for process in self.processes:
                if process.poll() is not None:
                    raise AssertionError(f"{process.args} exited:\n{self.log(log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.log(log)}")
            time.sleep(0.1)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)

    def __enter__(self) -> EmbeddedStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the API, as an admin with a token ------------------------------------------------

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/api/v1/{path}", headers=headers, timeout=30, **kwargs
        )

    def run(self, run_id: int) -> dict:
        response = self.api("GET", f"servicenow/runs/{run_id}/")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_run(self, run_id: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run["status"] not in ("queued", "running"):
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} still {run['status']} after {timeout}s\n"
                    f"worker: {self.log('worker') if self.worker else '-'}\n"
                    f"server: {self.log('server')}"
                )
            time.sleep(0.1)
