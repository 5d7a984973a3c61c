"""TLS and proxies against the emulator serving https with a certificate the tests made: the
connection's verify_tls / ca_certificate / proxy_url decide, never REQUESTS_CA_BUNDLE or
CURL_CA_BUNDLE; HTTPS_PROXY (and NO_PROXY) count only when the connection names no proxy."""

import pytest

from servicenow.client import (
    ClientConfig,
    ConfigurationError,
    ConnectionFailedError,
    ServiceNowClient,
)
from servicenow.models import Connection, SyncRun, WorkItem

from .conftest import make_connection, make_source, run_sync

CONNECTIONS = "/api/v1/servicenow/connections/"
PROXY_VARIABLES = ["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch):
    """Start from an environment without proxies; each test sets what it is about."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def ca_pem(tls_authority) -> str:
    return tls_authority.cert_pem.bytes().decode()


def tls_client(emu, **overrides) -> ServiceNowClient:
    config = ClientConfig(
        **{
            "instance_url": emu.url,
            "username": "integration",
            "password": "integration-pass",
            "allow_local": True,  # the emulator listens on 127.0.0.1
            "max_retries": 0,
            **overrides,
        }
    )
    return ServiceNowClient(config)


def table_requests(emu) -> int:
    return sum(1 for _, path, _ in emu.request_log if path.startswith("/api/now/table/"))


# --- certificates -------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_the_connection_ca_verifies_the_instance_whatever_the_environment_bundle(
    tls_emulator, ca_pem, unrelated_ca_bundle, monkeypatch, variable
):
    # given the environment pointing requests at a bundle that does not trust the emulator
    monkeypatch.setenv(variable, unrelated_ca_bundle)

    # when a client with the connection's CA checks the instance
    with tls_client(tls_emulator, ca_certificate=ca_pem) as client:
        result = client.check()

    # then the certificate is verified with the connection's CA, and the check succeeds
    assert (result["reachable"], result["authenticated"]) == (True, True)
    assert table_requests(tls_emulator) == 1


def test_without_the_ca_the_certificate_is_refused_even_if_the_environment_trusts_it(
    tls_emulator, tls_files, monkeypatch
):
    # given REQUESTS_CA_BUNDLE that does trust the emulator, and a connection with no CA
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_files["ca"])

    # when the client checks the instance
    with tls_client(tls_emulator) as client, pytest.raises(ConnectionFailedError) as caught:
        client.check()

    # then only the public CAs count: a TLS error that waiting will not fix
    assert str(caught.value).startswith("TLS error talking to 127.0.0.1:")
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert caught.value.transient is False
    assert table_requests(tls_emulator) == 0


def test_a_wrong_connection_ca_is_refused(tls_emulator, unrelated_ca_bundle):
    with open(unrelated_ca_bundle) as handle:
        other_ca = handle.read()

    client = tls_client(tls_emulator, ca_certificate=other_ca)
    with client, pytest.raises(ConnectionFailedError, match="CERTIFICATE_VERIFY_FAILED"):
        client.check()
    assert table_requests(tls_emulator) == 0


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_verify_tls_off_connects_whatever_the_environment_sets(
    tls_emulator, unrelated_ca_bundle, monkeypatch, variable
):
    # given a bundle in the environment (requests would let it override session.verify)
    monkeypatch.setenv(variable, unrelated_ca_bundle)

    # when a client with verify_tls off checks the instance
    with tls_client(tls_emulator, verify_tls=False) as client:
        result = client.check()

    # then it connects without verifying
    assert result["authenticated"] is True
    assert table_requests(tls_emulator) == 1


# --- proxies ------------------------------------------------------------------------------


def test_the_connection_proxy_carries_every_request(tls_emulator, ca_pem, connect_proxy):
    port = tls_emulator.url.rsplit(":", 1)[1]

    with tls_client(tls_emulator, ca_certificate=ca_pem, proxy_url=connect_proxy.url) as client:
        client.check()
        client.get_page("incident", limit=5)

    # one tunnel (the pooled connection is reused), to the instance, and both requests in it
    assert connect_proxy.tunnels == [f"127.0.0.1:{port}"]
    assert table_requests(tls_emulator) == 2


def test_https_proxy_from_the_environment_is_honoured_without_a_connection_proxy(
    tls_emulator, ca_pem, connect_proxy, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)

    with tls_client(tls_emulator, ca_certificate=ca_pem) as client:
        client.check()

    assert connect_proxy.tunnels == [f"127.0.0.1:{tls_emulator.url.rsplit(':', 1)[1]}"]


def test_no_proxy_from_the_environment_bypasses_https_proxy(
    tls_emulator, ca_pem, connect_proxy, monkeypatch
):
    monkeypatch.setenv("HTTPS_PROXY", connect_proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")

    with tls_client(tls_emulator, ca_certificate=ca_pem) as client:
        client.check()

    assert connect_proxy.tunnels == []
    assert table_requests(tls_emulator) == 1


def test_the_connection_proxy_wins_over_https_proxy(
    tls_emulator, ca_pem, connect_proxy, monkeypatch
):
    # given the environment naming another proxy, which would refuse the connection
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")

    with tls_client(tls_emulator, ca_certificate=ca_pem, proxy_url=connect_proxy.url) as client:
        client.check()

    assert len(connect_proxy.tunnels) == 1


# --- the whole way: API, Test connection, a sync run --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connection_with_ca_and_proxy_tests_and_syncs_over_tls(
    admin_api, tls_emulator, ca_pem, connect_proxy, unrelated_ca_bundle, monkeypatch, settings
):
    # given the server environment trusting an unrelated bundle
    settings.SERVICENOW_RUN_RETRY_BASE_SECONDS = 0.05
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", unrelated_ca_bundle)

    # when an admin creates a connection with the corporate CA and a proxy
    created = admin_api.post(
        CONNECTIONS,
        {
            "name": "On premise",
            "instance_url": tls_emulator.url,
            "username": "integration",
            "password": "integration-pass",
            "ca_certificate": f"\n{ca_pem}\n",
            "proxy_url": f"{connect_proxy.url}/",
            "page_size": 100,
        },
        format="json",
    )
    connection = Connection.objects.get()
    checked = admin_api.post(f"{CONNECTIONS}{connection.pk}/test/")
    run = run_sync(make_source(connection, "incident"))

    # then the CA and proxy are shown back (trimmed), the check passes through the proxy,
    # and a sync imports every incident over TLS through it
    assert created.status_code == 201
    assert created.json()["ca_certificate"] == ca_pem.strip()
    assert created.json()["proxy_url"] == connect_proxy.url
    assert checked.json()["ok"] is True, checked.json()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert WorkItem.objects.filter(table="incident").count() == 300
    assert len(connect_proxy.tunnels) >= 2  # the check's client and the run's client
    assert {t.rsplit(":", 1)[0] for t in connect_proxy.tunnels} == {"127.0.0.1"}


@pytest.mark.django_db(transaction=True)
def test_test_connection_without_the_ca_reports_the_tls_error(admin_api, tls_emulator):
    connection = make_connection(tls_emulator)

    body = admin_api.post(f"{CONNECTIONS}{connection.pk}/test/").json()

    assert (body["ok"], body["error"], body["reachable"]) == (False, "ConnectionFailedError", False)
    assert body["message"].startswith("TLS error talking to 127.0.0.1:")


def test_a_socks_proxy_from_the_environment_is_refused_by_name(tls_emulator, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "socks5://127.0.0.1:1080")

    with pytest.raises(ConfigurationError) as caught:
        tls_client(tls_emulator)

    assert str(caught.value) == (
        "proxy from the environment (https_proxy): SOCKS proxies are not supported; "
        "use an http:// or https:// (CONNECT) proxy."
    )
    assert table_requests(tls_emulator) == 0
