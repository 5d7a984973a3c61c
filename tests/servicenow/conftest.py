"""Fixtures for sync tests: a real emulator on a loopback port, a connection and sources.

Sync tests use `transactional_db`: a run is enqueued after commit, so in the embedded mode it
runs eagerly at commit, and in CI's second pass a real Celery worker (on the same test
database) runs it; either way `run_sync` waits for the run to finish.
"""

import select
import socket
import threading
import time
from datetime import UTC, datetime

import pytest
import trustme

from servicenow.emulator import Emulator
from servicenow.emulator.generate import generate_dataset
from servicenow.models import Connection, Source, SyncRun
from servicenow.services import connection_save, source_save, sync_run_request

PEOPLE_EMAILS = ["erin@example.com", "ken@example.com", "lena@example.com"]
FIXED_END = datetime(2026, 11, 1, tzinfo=UTC)


def make_dataset(incidents: int = 300, users: int = 12, **kwargs) -> dict:
    return generate_dataset(
        incidents=incidents, users=users, seed=3, people_emails=PEOPLE_EMAILS,
        other_tables=False, end=FIXED_END, **kwargs,
    )  # fmt: skip


@pytest.fixture
def emulator():
    emu = Emulator(make_dataset()).start()
    yield emu
    emu.stop()


def make_connection(emu: Emulator, *, page_size: int = 50, **fields) -> Connection:
    connection = Connection(
        name=fields.pop("name", "Test instance"),
        instance_url=emu.url,
        auth_type=fields.pop("auth_type", Connection.AuthType.BASIC),
        username=fields.pop("username", "integration"),
        page_size=page_size,
        **fields,
    )
    return connection_save(connection=connection, password="integration-pass")


def make_source(connection: Connection, table: str = "incident", **fields) -> Source:
    kind = Source.Kind.USERS if table == "sys_user" else Source.Kind.WORK_ITEMS
    source = Source(
        connection=connection, name=fields.pop("name", table), table=table, kind=kind,
        overlap_seconds=fields.pop("overlap_seconds", 120), **fields,
    )  # fmt: skip
    return source_save(source=source)


def wait_for(run_id: int, timeout: float = 120) -> SyncRun:
    deadline = time.monotonic() + timeout
    while True:
        run = SyncRun.objects.get(pk=run_id)
        if run.status not in SyncRun.ACTIVE:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout}s: {run.log}")
        time.sleep(0.05)


def run_sync(source: Source, mode: str = "incremental") -> SyncRun:
    run = sync_run_request(source=source, mode=mode)
    return wait_for(run.pk)


@pytest.fixture
def connection(transactional_db, emulator, settings):
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    return make_connection(emulator)


@pytest.fixture
def incidents(connection):
    return make_source(connection, "incident")


@pytest.fixture
def users_source(connection):
    return make_source(connection, "sys_user", query="active=true")


@pytest.fixture(scope="session")
def tls_authority():
    """A certificate authority made for this test session (trustme), never a real one."""
    return trustme.CA()


@pytest.fixture(scope="session")
def tls_files(tls_authority, tmp_path_factory):
    """PEM files of a server certificate for 127.0.0.1/localhost and of the CA that signed it:
    ``{"cert": ..., "key": ..., "ca": ...}`` paths as strings."""
    folder = tmp_path_factory.mktemp("tls")
    server = tls_authority.issue_cert("127.0.0.1", "localhost")
    paths = {"cert": folder / "server.pem", "key": folder / "server.key", "ca": folder / "ca.pem"}
    server.private_key_pem.write_to_path(str(paths["key"]))
    # The chain (leaf first) goes in one file, as load_cert_chain expects.
    with open(paths["cert"], "wb") as handle:
        for blob in server.cert_chain_pems:
            handle.write(blob.bytes())
    tls_authority.cert_pem.write_to_path(str(paths["ca"]))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture
def tls_emulator(tls_files):
    """The emulator serving https with a certificate the tests made (see ``tls_files``)."""
    emu = Emulator(make_dataset(), tls=(tls_files["cert"], tls_files["key"])).start()
    yield emu
    emu.stop()


class ConnectProxy:
    """A small real forwarding proxy (HTTP CONNECT tunnels only), recording each tunnel it
    opened, so a test can tell that the client's requests went through it."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []  # "host:port" of each CONNECT
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def start(self) -> "ConnectProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._server.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host.strip("[]"), int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pipe(client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        sockets = [client, upstream]
        while not self._stop.is_set():
            readable, _, _ = select.select(sockets, [], [], 0.1)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (upstream if sock is client else client).sendall(data)


@pytest.fixture
def connect_proxy():
    proxy = ConnectProxy().start()
    yield proxy
    proxy.stop()


@pytest.fixture
def unrelated_ca_bundle(tmp_path):
    """A CA bundle that trusts nothing the tests serve: what a stray REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE on the server could point at."""
    path = tmp_path / "unrelated-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)
