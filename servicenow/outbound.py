"""Where the ServiceNow client may connect: the outbound policy for instance and proxy URLs.

An instance URL is typed by an admin, and the server then connects to it and reports what
came back, so without a policy a connection is a way to reach the cloud metadata service
(credentials), or to scan the private network through *Test connection*. The rules:

- always refused: link-local addresses (169.254.0.0/16, fe80::/10, where metadata services
  live), the unspecified addresses (0.0.0.0, ::), multicast and reserved ranges, the known
  metadata addresses outside link-local, and metadata host names;
- refused unless ``allow_local`` (the setting ``SERVICENOW_ALLOW_LOCAL_INSTANCES``): plain
  http, loopback, private and other non-global addresses, ``localhost``;
- a name is checked at save time as written (a literal address, a metadata name), and again
  at connect time by resolving it: every address it resolves to must pass, and the client
  connects only to the addresses it checked (``GuardedConnectionMixin``), so a name that
  resolves differently later (DNS rebinding) cannot slip past.

A proxy is the admin's own network equipment: private and loopback addresses are fine
there, the always-refused ones are not. Proxy schemes are http and https (CONNECT); SOCKS
needs PySocks, which is not installed, so it is refused by name.

It imports nothing from Django (the client uses it).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints. Most live at 169.254.169.254 (link-local, refused as a range);
# these are the names and the addresses outside link-local.
METADATA_HOSTS = frozenset(
    {
        "metadata.google.internal",  # GCP
        "metadata.goog",  # GCP
        "metadata",  # GCP short name
        "instance-data",  # AWS
        "instance-data.ec2.internal",  # AWS
        "metadata.azure.com",  # Azure
        "metadata.tencentyun.com",  # Tencent
        "metadata.oraclecloud.com",  # Oracle
    }
)
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)
PROXY_SCHEMES = ("http", "https")
LOCAL_HINT = "allowed only when SERVICENOW_ALLOW_LOCAL_INSTANCES is on"


class OutboundRefused(Exception):
    """The policy refuses this destination. Deliberately not an OSError, so neither urllib3
    nor requests retries or wraps it: it reaches the client as it was raised."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"refused to connect to {host}: {reason}")
        self.host = host
        self.reason = reason


def _address(host: str) -> IPAddress | None:
    """The address a host names literally, in any form the resolver accepts: also
    "2852039166" or "0xa9.0xfe.0xa9.0xfe", which inet_aton reads as 169.254.169.254."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except (OSError, ValueError):
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return address


def address_kind(address: IPAddress, *, allow_local: bool, proxy: bool = False) -> str | None:
    """What makes the policy refuse this address, as "a link-local address ..." (None: it
    does not refuse it)."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast or (address.is_reserved and not address.is_loopback):
        return "a multicast or reserved address"
    if not address.is_global and not allow_local and not proxy:
        kind = "a loopback" if address.is_loopback else "a private (non-public)"
        return f"{kind} address, {LOCAL_HINT}"
    return None


def address_problem(address: IPAddress, *, allow_local: bool, proxy: bool = False) -> str | None:
    """Why the policy refuses to connect to this address (None: it does not)."""
    kind = address_kind(address, allow_local=allow_local, proxy=proxy)
    return f"{address} is {kind}" if kind else None


def host_problem(host: str, *, allow_local: bool, proxy: bool = False) -> str | None:
    """Why the policy refuses this host as written, without resolving it."""
    name = host.strip().rstrip(".").lower()
    if (address := _address(name)) is not None:
        return address_problem(address, allow_local=allow_local, proxy=proxy)
    if name in METADATA_HOSTS:
        return f"{name} is a cloud metadata host name"
    if (name == "localhost" or name.endswith(".localhost")) and not allow_local and not proxy:
        return f"{name} is a loopback name, {LOCAL_HINT}"
    return None


def instance_url_policy_problem(url: str, *, allow_local: bool) -> str | None:
    """Why the policy refuses this instance URL as written (scheme and host)."""
    parts = urlsplit(url)
    if parts.scheme != "https" and not allow_local:
        return f"Must be an https URL; plain http is {LOCAL_HINT}."
    if problem := host_problem(parts.hostname or "", allow_local=allow_local):
        return f"Refused: {problem}."
    return None


def proxy_url_problem(url: str) -> str | None:
    """Why this proxy URL is unusable (None: it is fine)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("socks"):
        return "SOCKS proxies are not supported; use an http:// or https:// (CONNECT) proxy."
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        return "Must be an http:// or https:// URL such as http://proxy.example.com:3128."
    if parts.username is not None or parts.password is not None:
        # The proxy URL is shown back in the API and the admin; a secret must not be.
        return "Must not contain credentials."
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "Must be scheme, host and port only."
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "Has an invalid port."
    if problem := host_problem(parts.hostname, allow_local=True, proxy=True):
        return f"Refused: {problem}."
    return None


def resolve_checked(
    host: str, port: int, *, allow_local: bool, proxy: bool = False
) -> list[tuple[int, str]]:
    """Resolve ``host`` and check every address: ``[(family, address)]`` to connect to.

    Raises OutboundRefused if the name or any address it resolves to is refused (a name
    that resolves to a public and a metadata address is refused as a whole), and
    socket.gaierror when it does not resolve.
    """
    name = host.strip("[]")
    if problem := host_problem(name, allow_local=allow_local, proxy=proxy):
        raise OutboundRefused(name, problem)
    infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    checked: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        text = str(sockaddr[0])
        address = _address(text)
        if address is None:
            continue
        if kind := address_kind(address, allow_local=allow_local, proxy=proxy):
            raise OutboundRefused(name, f"it resolves to {address}, {kind}")
        if (family, text) not in checked:
            checked.append((family, text))
    if not checked:
        raise OutboundRefused(name, "it resolves to no IP address")
    return checked


@dataclass(frozen=True)
class OutboundPolicy:
    """What one client may connect to. ``proxy_host`` is the proxy in use, if any: a
    connection to it is checked with the proxy rules."""

    allow_local: bool = False
    proxy_host: str | None = None

    def instance_precheck(self, host: str, port: int) -> None:
        """Through a proxy the proxy resolves the instance; check what it resolves to here
        when it resolves here (a proxied network often cannot resolve outside names)."""
        try:
            resolve_checked(host, port, allow_local=self.allow_local)
        except socket.gaierror:
            if problem := host_problem(host, allow_local=self.allow_local):
                raise OutboundRefused(host, problem) from None


class GuardedConnectionMixin:
    """Resolves and checks the destination, then connects only to the checked addresses.

    urllib3 resolves inside ``create_connection``; doing it here instead means the address
    that was checked is the address that is used.
    """

    outbound_policy: OutboundPolicy = OutboundPolicy()
    _dns_host: str
    _tunnel_host: str | None
    port: int
    host: str

    def _new_conn(self) -> socket.socket:
        policy = self.outbound_policy
        name = getattr(self, "_outbound_name", None) or self._dns_host
        self._outbound_name = name
        # A tunnel (https through a CONNECT proxy), or the proxy of a plain http request:
        # this socket goes to the proxy (the client checks the instance before sending).
        to_proxy = bool(self._tunnel_host) or (
            policy.proxy_host is not None and name == policy.proxy_host
        )
        try:
            targets = resolve_checked(
                name, self.port, allow_local=policy.allow_local, proxy=to_proxy
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        last_error: Exception | None = None
        for _, address in targets:
            # HTTPConnection._new_conn connects to _dns_host; the TLS name stays self.host.
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc]
            except OSError as exc:  # NewConnectionError, ConnectTimeoutError
                last_error = exc
            finally:
                self._dns_host = name
        assert last_error is not None
        raise last_error


def guarded_pool_classes(policy: OutboundPolicy) -> dict[str, Any]:
    """urllib3 pool classes (for ``PoolManager.pool_classes_by_scheme``) whose connections
    follow ``policy``."""
    attrs = {"outbound_policy": policy}
    http_conn = type("GuardedHTTPConnection", (GuardedConnectionMixin, HTTPConnection), attrs)
    https_conn = type("GuardedHTTPSConnection", (GuardedConnectionMixin, HTTPSConnection), attrs)
    http_pool = type(
        "GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}
    )
    https_pool = type(
        "GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}
    )
    return {"http": http_pool, "https": https_pool}
