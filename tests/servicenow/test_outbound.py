"""The outbound policy for instance and proxy URLs (servicenow.outbound): what is always
refused, what only SERVICENOW_ALLOW_LOCAL_INSTANCES allows, checked at save (API, admin,
connection_save) and again at connect time, before anything is sent; and the 400s naming
the field for a bad instance URL, proxy URL or CA certificate."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
import trustme
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from servicenow import outbound
from servicenow.checks import allow_local_instances_check
from servicenow.client import ClientConfig, OutboundRefusedError, ServiceNowClient
from servicenow.models import Connection, Source, SyncRun
from servicenow.outbound import OutboundRefused, instance_url_policy_problem, resolve_checked
from servicenow.services import connection_save, source_save, sync_run_request
from servicenow.sync.runs import sync_run_attempt

CONNECTIONS = "/api/v1/servicenow/connections/"
LOCAL = "allowed only when SERVICENOW_ALLOW_LOCAL_INSTANCES is on"
LINK_LOCAL = "a link-local address (where cloud metadata services live)"
GOOD_CONNECTION = {
    "name": "Acme",
    "instance_url": "https://acme.service-now.com",
    "username": "integration",
    "password": "integration-pass",
}

ALWAYS_REFUSED = [
    pytest.param("https://169.254.169.254", f"169.254.169.254 is {LINK_LOCAL}", id="aws-gcp-azure"),
    pytest.param("https://[fe80::1]", f"fe80::1 is {LINK_LOCAL}", id="ipv6-link-local"),
    pytest.param(
        "https://[::ffff:169.254.169.254]", f"169.254.169.254 is {LINK_LOCAL}", id="ipv4-mapped"
    ),
    pytest.param("https://2852039166", f"169.254.169.254 is {LINK_LOCAL}", id="decimal-form"),
    pytest.param("https://0.0.0.0", "0.0.0.0 is the unspecified address", id="unspecified"),
    pytest.param("https://[::]", ":: is the unspecified address", id="ipv6-unspecified"),
    pytest.param(
        "https://100.100.100.200", "100.100.100.200 is a cloud metadata address", id="alibaba"
    ),
    pytest.param(
        "https://[fd00:ec2::254]", "fd00:ec2::254 is a cloud metadata address", id="aws-v6"
    ),
    pytest.param(
        "https://metadata.google.internal.",
        "metadata.google.internal is a cloud metadata host name",
        id="gcp-name",
    ),
    pytest.param(
        "https://224.0.0.1", "224.0.0.1 is a multicast or reserved address", id="multicast"
    ),
]
LOCAL_ONLY = [
    pytest.param(
        "http://acme.service-now.com", f"Must be an https URL; plain http is {LOCAL}.", id="http"
    ),
    pytest.param(
        "https://127.0.0.1:8443",
        f"Refused: 127.0.0.1 is a loopback address, {LOCAL}.",
        id="loopback",
    ),
    pytest.param(
        "https://[::1]", f"Refused: ::1 is a loopback address, {LOCAL}.", id="ipv6-loopback"
    ),
    pytest.param(
        "https://localhost", f"Refused: localhost is a loopback name, {LOCAL}.", id="name"
    ),
    pytest.param(
        "https://10.1.2.3",
        f"Refused: 10.1.2.3 is a private (non-public) address, {LOCAL}.",
        id="10/8",
    ),
    pytest.param(
        "https://192.168.1.20",
        f"Refused: 192.168.1.20 is a private (non-public) address, {LOCAL}.",
        id="192.168/16",
    ),
    pytest.param(
        "https://[fd12::1]",
        f"Refused: fd12::1 is a private (non-public) address, {LOCAL}.",
        id="ipv6-ula",
    ),
]


# --- the policy, as written ---------------------------------------------------------------


@pytest.mark.parametrize("allow_local", [False, True], ids=["local-off", "local-on"])
@pytest.mark.parametrize(("url", "reason"), ALWAYS_REFUSED)
def test_always_refused_whatever_the_setting(url, reason, allow_local):
    assert instance_url_policy_problem(url, allow_local=allow_local) == f"Refused: {reason}."


@pytest.mark.parametrize(("url", "problem"), LOCAL_ONLY)
def test_local_destinations_need_the_setting(url, problem):
    assert instance_url_policy_problem(url, allow_local=False) == problem
    assert instance_url_policy_problem(url, allow_local=True) is None


@pytest.mark.parametrize("url", ["https://acme.service-now.com", "https://8.8.8.8"])
def test_public_https_is_allowed(url):
    assert instance_url_policy_problem(url, allow_local=False) is None


def test_a_name_resolving_to_a_public_and_a_metadata_address_is_refused(monkeypatch):
    fake_dns(monkeypatch, {"acme.service-now.com": ["8.8.8.8", "169.254.169.254"]})

    with pytest.raises(OutboundRefused) as caught:
        resolve_checked("acme.service-now.com", 443, allow_local=True)

    assert str(caught.value) == (
        f"refused to connect to acme.service-now.com: it resolves to 169.254.169.254, {LINK_LOCAL}"
    )


def test_the_client_refuses_a_refused_url_when_its_config_is_built():
    with pytest.raises(OutboundRefusedError, match=r"^instance_url: Refused: 169\.254"):
        ClientConfig(instance_url="https://169.254.169.254", allow_local=True)
    with pytest.raises(OutboundRefusedError, match=r"^instance_url: Must be an https URL"):
        ClientConfig(instance_url="http://acme.service-now.com")


# --- at save: API, admin, service ---------------------------------------------------------


@pytest.mark.django_db
# (Django's URL validator already refuses the decimal form.)
@pytest.mark.parametrize(("url", "reason"), [p for p in ALWAYS_REFUSED if p.id != "decimal-form"])
def test_the_api_refuses_an_always_refused_instance_url(admin_api, settings, url, reason):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = True

    response = admin_api.post(CONNECTIONS, {**GOOD_CONNECTION, "instance_url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"instance_url": [f"Refused: {reason}."]}
    assert Connection.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "problem"), LOCAL_ONLY)
def test_the_api_refuses_local_instances_when_the_setting_is_off(admin_api, settings, url, problem):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False

    response = admin_api.post(CONNECTIONS, {**GOOD_CONNECTION, "instance_url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["message"] == f"instance_url: {problem}"
    assert response.json()["error"]["detail"] == {"instance_url": [problem]}


@pytest.mark.django_db
def test_the_api_accepts_local_instances_when_the_setting_is_on(admin_api, settings):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = True

    response = admin_api.post(
        CONNECTIONS, {**GOOD_CONNECTION, "instance_url": "http://10.1.2.3:8001"}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["instance_url"] == "http://10.1.2.3:8001"


PROXY_PROBLEMS = [
    pytest.param(
        "socks5://proxy.example.com:1080",
        "SOCKS proxies are not supported; use an http:// or https:// (CONNECT) proxy.",
        id="socks",
    ),
    pytest.param(
        "ftp://proxy.example.com",
        "Must be an http:// or https:// URL such as http://proxy.example.com:3128.",
        id="scheme",
    ),
    pytest.param(
        "proxy.example.com:3128",
        "Must be an http:// or https:// URL such as http://proxy.example.com:3128.",
        id="no-scheme",
    ),
    pytest.param(
        "http://bob:hunter2@proxy.example.com:3128", "Must not contain credentials.", id="creds"
    ),
    pytest.param(
        "http://proxy.example.com:3128/x", "Must be scheme, host and port only.", id="path"
    ),
    pytest.param("http://proxy.example.com:99999", "Has an invalid port.", id="port"),
    pytest.param(
        "http://169.254.169.254:80", f"Refused: 169.254.169.254 is {LINK_LOCAL}.", id="metadata"
    ),
]
CA_PROBLEMS = [
    pytest.param(
        "hello",
        "Must be one or more PEM certificates (-----BEGIN CERTIFICATE----- blocks).",
        id="not-pem",
    ),
    pytest.param(
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----",
        "Not a valid PEM certificate: the base64 between the BEGIN/END lines is damaged.",
        id="damaged",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("proxy_url", "problem"), PROXY_PROBLEMS)
def test_a_bad_proxy_url_is_a_400_naming_the_field(admin_api, proxy_url, problem):
    response = admin_api.post(
        CONNECTIONS, {**GOOD_CONNECTION, "proxy_url": proxy_url}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"proxy_url": [problem]}
    assert "hunter2" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("pem", "problem"), CA_PROBLEMS)
def test_a_malformed_ca_certificate_is_a_400_naming_the_field(admin_api, pem, problem):
    response = admin_api.post(
        CONNECTIONS, {**GOOD_CONNECTION, "ca_certificate": pem}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {"ca_certificate": [problem]}


@pytest.mark.django_db
def test_a_ca_certificate_with_a_private_key_is_refused_and_the_key_not_echoed(admin_api):
    # given a certificate pasted together with its key (the CA field is shown back)
    issued = trustme.CA().issue_cert("acme.example.com")
    key = issued.private_key_pem.bytes().decode()
    pem = issued.cert_chain_pems[0].bytes().decode() + key

    response = admin_api.post(
        CONNECTIONS, {**GOOD_CONNECTION, "ca_certificate": pem}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["detail"] == {
        "ca_certificate": [
            "Contains a private key; paste only the CA certificate (it is shown back)."
        ]
    }
    assert key.splitlines()[1] not in response.content.decode()


@pytest.mark.django_db
def test_a_patch_with_a_bad_proxy_url_keeps_the_stored_one(admin_api):
    created = admin_api.post(
        CONNECTIONS, {**GOOD_CONNECTION, "proxy_url": "http://10.0.0.8:3128"}, format="json"
    )
    url = f"{CONNECTIONS}{created.json()['id']}/"

    response = admin_api.patch(url, {"proxy_url": "socks5h://10.0.0.8:1080"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["detail"]) == ["proxy_url"]
    assert admin_api.get(url).json()["proxy_url"] == "http://10.0.0.8:3128"


@pytest.mark.django_db
def test_connection_save_refuses_by_itself_naming_each_field(settings):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False
    connection = Connection(
        name="Direct",
        instance_url="http://metadata.google.internal",
        proxy_url="socks5://p:1",
        ca_certificate="hello",
    )

    with pytest.raises(ValidationError) as caught:
        connection_save(connection=connection, password="x")

    assert sorted(caught.value.message_dict) == ["ca_certificate", "instance_url", "proxy_url"]
    assert Connection.objects.count() == 0


@pytest.fixture
def admin_web(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("instance_url", "https://169.254.169.254", f"Refused: 169.254.169.254 is {LINK_LOCAL}."),
        ("proxy_url", "socks5://proxy:1080", "SOCKS proxies are not supported"),
        ("ca_certificate", "hello", "Must be one or more PEM certificates"),
    ],
)
def test_the_admin_form_refuses_with_the_error_on_the_field(admin_web, field, value, message):
    data = {
        "name": "Acme",
        "instance_url": "https://acme.service-now.com",
        "auth_type": "basic",
        "username": "integration",
        "password": "integration-pass",
        "page_size": "1000",
        "api_path": "/api/now/table",
        field: value,
    }

    response = admin_web.post("/admin/servicenow/connection/add/", data)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    assert message in response.context["adminform"].form.errors[field][0]
    assert Connection.objects.count() == 0


@pytest.mark.django_db
def test_the_admin_change_page_shows_the_ca_and_proxy(admin_web):
    ca = trustme.CA().cert_pem.bytes().decode()
    connection = connection_save(
        connection=Connection(
            name="Acme",
            instance_url="https://acme.service-now.com",
            username="integration",
            ca_certificate=ca,
            proxy_url="http://proxy.corp.example:3128",
        ),
        password="x",
    )

    page = admin_web.get(f"/admin/servicenow/connection/{connection.pk}/change/").content.decode()

    assert ca.strip().splitlines()[1] in page
    assert 'value="http://proxy.corp.example:3128"' in page


# --- at connect time ----------------------------------------------------------------------


def fake_dns(monkeypatch, names: dict[str, list[str]]) -> None:
    """The resolver answers these names with these addresses (what a DNS record could say,
    or come to say later); every other name resolves as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in names:
            return [
                answer for address in names[host] for answer in real(address, port, *args, **kwargs)
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)


class Listener:
    """A real socket on loopback that tells whether anything connected to it."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.3)
        self.port = self.server.getsockname()[1]

    def connected(self) -> bool:
        try:
            accepted, _ = self.server.accept()
        except TimeoutError:
            return False
        accepted.close()
        return True


@pytest.fixture
def listener():
    listening = Listener()
    yield listening
    listening.server.close()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("allow_local", "resolves_to", "reason"),
    [
        pytest.param(False, "127.0.0.1", f"127.0.0.1, a loopback address, {LOCAL}", id="loopback"),
        pytest.param(True, "169.254.169.254", f"169.254.169.254, {LINK_LOCAL}", id="metadata"),
    ],
)
def test_test_connection_refuses_a_name_that_resolves_to_a_refused_address(
    admin_api, settings, monkeypatch, listener, allow_local, resolves_to, reason
):
    # given a connection saved with a public-looking name, whose DNS now answers otherwise
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = allow_local
    port = listener.port
    created = admin_api.post(
        CONNECTIONS,
        {**GOOD_CONNECTION, "instance_url": f"https://acme.service-now.com:{port}"},
        format="json",
    )
    fake_dns(monkeypatch, {"acme.service-now.com": [resolves_to]})

    # when the admin tests it
    body = admin_api.post(f"{CONNECTIONS}{created.json()['id']}/test/").json()

    # then it is refused before anything is sent, and the answer says why
    assert created.status_code == 201
    assert body == {
        "ok": False,
        "error": "OutboundRefusedError",
        "problem": "Blocked by the outbound URL policy: nothing was sent",
        "reachable": False,
        "authenticated": False,
        "message": f"refused to connect to acme.service-now.com: it resolves to {reason} "
        "(table sys_user)",
    }
    assert listener.connected() is False


@pytest.mark.django_db
def test_test_connection_is_no_port_scanner(admin_api, settings, listener):
    # given two connections saved while local instances were allowed: one port that
    # listens, one that does not
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = True
    open_port = listener.port
    ids = [
        admin_api.post(
            CONNECTIONS,
            {**GOOD_CONNECTION, "name": f"c{port}", "instance_url": f"https://127.0.0.1:{port}"},
            format="json",
        ).json()["id"]
        for port in (open_port, closed_port())
    ]

    # when local instances are turned off and the admin tests both
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False
    answers = [admin_api.post(f"{CONNECTIONS}{pk}/test/").json() for pk in ids]

    # then both get the same refusal: nothing tells an open port from a closed one
    expected = f"instance_url: Refused: 127.0.0.1 is a loopback address, {LOCAL}."
    assert [(a["ok"], a["error"], a["message"]) for a in answers] == [
        (False, "OutboundRefusedError", expected)
    ] * 2
    assert listener.connected() is False


def test_a_name_that_rebinds_after_the_check_is_not_looked_up_again(monkeypatch, emulator):
    # given a name (real DNS has no .test) whose first answer is the emulator and every later
    # one the metadata address: DNS rebinding
    port = emulator.url.rsplit(":", 1)[1]
    real = socket.getaddrinfo
    lookups = []

    def getaddrinfo(host, *args, **kwargs):
        if host == "acme.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "169.254.169.254"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(outbound.socket, "getaddrinfo", getaddrinfo)
    config = ClientConfig(
        instance_url=f"http://acme.test:{port}",
        username="integration",
        password="integration-pass",
        allow_local=True,
        connect_timeout=1.0,
    )

    # when the client checks the instance
    with ServiceNowClient(config) as client:
        result = client.check()

    # then it connected to the address it checked, resolving the name once
    assert result["authenticated"] is True
    assert lookups == ["acme.test"]


@pytest.mark.django_db
def test_a_sync_run_of_a_refused_instance_fails_at_once_without_retrying(settings, emulator):
    # given a connection to the emulator saved while local instances were allowed
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = True
    connection = connection_save(
        connection=Connection(name="Local", instance_url=emulator.url, username="integration"),
        password="integration-pass",
    )
    source = source_save(source=Source(connection=connection, name="i", table="incident"))
    run = sync_run_request(source=source, enqueue=False)

    # when local instances are turned off and the run is attempted
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False
    outcome = sync_run_attempt(run_id=run.pk)

    # then it fails once, saying why, and the emulator saw nothing
    run.refresh_from_db()
    assert outcome == "failed"
    assert run.status == SyncRun.Status.FAILED
    assert run.error == f"instance_url: Must be an https URL; plain http is {LOCAL}."
    assert emulator.request_log == []


# --- deploy check -------------------------------------------------------------------------


def test_check_deploy_warns_while_local_instances_are_allowed(settings):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = True
    assert [w.id for w in allow_local_instances_check(None)] == ["servicenow.W001"]
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False
    assert allow_local_instances_check(None) == []


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedirectingServer:
    """A real http server on loopback that answers every request with a redirect to
    ``location``."""

    def __init__(self, location: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_redirect_to_a_refused_address_is_refused():
    # given an instance (allowed: local instances on) that redirects to the metadata service
    server = RedirectingServer("http://169.254.169.254/latest/meta-data/")
    config = ClientConfig(
        instance_url=server.url, username="u", password="p", allow_local=True, max_retries=0
    )

    # when the client follows it, then the redirect's connection is refused like any other
    try:
        with ServiceNowClient(config) as client, pytest.raises(OutboundRefusedError) as caught:
            client.check()
    finally:
        server.stop()
    assert str(caught.value) == (
        f"refused to connect to 169.254.169.254: 169.254.169.254 is {LINK_LOCAL} (table sys_user)"
    )


@pytest.mark.django_db
def test_the_sync_page_says_how_each_connection_connects(admin_web):
    connection_save(
        connection=Connection(
            name="Corp",
            instance_url="https://acme.service-now.com",
            username="integration",
            ca_certificate=trustme.CA().cert_pem.bytes().decode(),
            proxy_url="http://proxy.corp.example:3128",
        ),
        password="x",
    )
    connection_save(
        connection=Connection(
            name="Lab", instance_url="https://lab.service-now.com", username="i", verify_tls=False
        ),
        password="x",
    )

    page = admin_web.get("/servicenow/").content.decode()

    assert page.count("via proxy http://proxy.corp.example:3128") == 1
    assert page.count("trusts its own CA certificate") == 1
    assert page.count("TLS certificate not verified") == 1


@pytest.mark.django_db
def test_the_demo_command_refuses_a_loopback_url_when_local_instances_are_off(settings):
    settings.SERVICENOW_ALLOW_LOCAL_INSTANCES = False

    with pytest.raises(CommandError) as caught:
        call_command("servicenow_demo", "--url", "http://127.0.0.1:8001", stdout=StringIO())

    assert str(caught.value) == f"instance_url: Must be an https URL; plain http is {LOCAL}."
    assert Connection.objects.count() == 0
