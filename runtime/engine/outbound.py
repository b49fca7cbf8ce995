"""Where Stepline may connect when it calls an app (the executor's calls, app sync), and what of
an app's URL may be shown.

Outside dev mode an app URL is whatever a sync said, so it could name the infrastructure Stepline
runs on: the cloud's metadata service (169.254.169.254, fd00:ec2::254), the Lambda runtime API
on loopback, other hosts of a private network. Connections are therefore checked on the address
actually connected to, at the moment of connecting: a host name is resolved once, each address
is judged, and only an allowed one is connected to (and the socket's peer checked again), so a
name that resolves to a public address at one moment and to a private one the next (DNS
rebinding) gains nothing. Refused: loopback, link-local (the metadata addresses), private and
unique-local, shared (CGNAT), multicast, unspecified, reserved and documentation ranges, NAT64
and other IPv6 forms that embed an IPv4 address; ``allow_private_app_urls`` lets apps inside a
VPC (private, unique-local, loopback) be called, never link-local, metadata or multicast.

An app URL may carry a secret in its query string; ``redact_url`` is how it is shown in logs and
run errors.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util.timeout import _DEFAULT_TIMEOUT

from stepline.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never called, whatever the settings: the cloud's instance metadata service.
METADATA = (ipaddress.ip_network("169.254.169.254/32"), ipaddress.ip_network("fd00:ec2::254/128"))
# IPv6 prefixes that carry an IPv4 address, which is judged instead: NAT64 (well-known and local).
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# Private networks, where apps inside a VPC live: RFC 1918, carrier-grade NAT, unique-local.
PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# Query parameters of an app URL shown as they are; every other value is a possible secret.
SHOWN_PARAMS = frozenset({"fnId", "stepId"})


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outbound calls may reach. ``check`` is off in dev mode (apps run on this
    machine); ``allow_private`` admits private, unique-local and loopback addresses."""

    check: bool = True
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(check=settings.mode != "dev", allow_private=settings.allow_private_app_urls)

    def refusal(self, address: str) -> str | None:
        """Why ``address`` (a numeric IP) may not be connected to, or None when it may."""
        if not self.check:
            return None
        try:
            ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return f"{address} is not an IP address"
        return _refusal(ip, self.allow_private)


def _refusal(ip: IPAddress, allow_private: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if embedded is not None:
            reason = _refusal(embedded, allow_private)
            return f"{ip} embeds {embedded}: {reason}" if reason else None
        if ip.teredo is not None:
            return f"{ip} is a Teredo address"
    if any(ip in net for net in METADATA):
        return f"{ip} is the cloud metadata service"
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip.is_loopback:
        return None if allow_private else f"{ip} is a loopback address"
    if any(ip in net for net in PRIVATE):
        return None if allow_private else f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is a reserved address"
    return None


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class AddressRefused(NewConnectionError):
    """The host's addresses are all ones the policy refuses: nothing was connected to."""


class _Guarded:
    """What the two connection classes share: their socket is made here, to allowed addresses only."""

    policy: AddressPolicy
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        if not self.policy.check:
            return super()._new_conn()  # type: ignore[misc]
        host = self._dns_host.strip("[]")
        try:
            answers = socket.getaddrinfo(host, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as err:
            raise urllib3.exceptions.NameResolutionError(self.host, self, err) from err  # type: ignore[arg-type]
        refused: list[str] = []
        last: OSError | None = None
        for family, kind, proto, _, address in answers:
            reason = self.policy.refusal(str(address[0]))
            if reason is not None:
                refused.append(reason)
                continue
            sock = socket.socket(family, kind, proto)
            try:
                for level, name, value in self.socket_options or ():
                    sock.setsockopt(level, name, value)
                if self.timeout is not _DEFAULT_TIMEOUT:
                    sock.settimeout(self.timeout)
                sock.connect(address)
                peer = self.policy.refusal(str(sock.getpeername()[0]))
                if peer is not None:  # what the kernel connected to, not what was asked
                    sock.close()
                    refused.append(peer)
                    continue
                return sock
            except TimeoutError as err:
                sock.close()
                raise urllib3.exceptions.ConnectTimeoutError(self, f"connecting to {self.host} timed out") from err
            except OSError as err:
                sock.close()
                last = err
        if last is not None:
            raise NewConnectionError(self, f"Failed to establish a new connection: {last}")  # type: ignore[arg-type]
        raise AddressRefused(self, f"refused to connect to {self.host}: {'; '.join(refused)}")  # type: ignore[arg-type]


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    pass


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    pass


def pool_manager(policy: AddressPolicy, **kwargs: Any) -> urllib3.PoolManager:
    """A pool manager whose every connection obeys ``policy``. It follows no redirect (a
    redirect could point anywhere) and retries nothing."""

    class HTTPPool(HTTPConnectionPool):
        ConnectionCls = type("PolicyHTTPConnection", (GuardedHTTPConnection,), {"policy": policy})

    class HTTPSPool(HTTPSConnectionPool):
        ConnectionCls = type("PolicyHTTPSConnection", (GuardedHTTPSConnection,), {"policy": policy})

    manager = urllib3.PoolManager(retries=False, **kwargs)
    manager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}
    return manager


# -- showing app URLs ------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with its user info dropped and its query values hidden (but ``fnId`` and
    ``stepId``, which say which function and step a call was for)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "<an unparsable URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if _has_port(parts) else "")
    query = urlencode(
        [(k, v if k in SHOWN_PARAMS else "***") for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _has_port(parts: Any) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return False


def redact_in(text: str, url: str) -> str:
    """``text`` (an error message) without the secrets of ``url`` in it: its query string and
    user info, wherever they appear."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    for secret in (parts.query, parts.netloc.rpartition("@")[0]):
        if secret:
            text = text.replace(secret, "***")
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in SHOWN_PARAMS and len(value) >= 4:  # shorter ones would hide ordinary words
            text = text.replace(value, "***")
    return text
