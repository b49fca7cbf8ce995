"""What keeps a web page from using `stepline dev` through the browser of the developer running it.

Dev mode asks for no credential, so anything that can make a request to its port can send events,
register apps and cancel runs. Non-browser clients on this machine are trusted; a browser is not,
because any page it shows can aim requests at 127.0.0.1. Three rules close that:

* **Host**: only loopback names and addresses (``localhost``, ``*.localhost``, 127.0.0.0/8,
  ``[::1]``), the host the server was told to bind, and hosts allowed by configuration. A DNS
  rebinding page (``evil.example`` made to resolve to 127.0.0.1) is same-origin with the server
  as far as the browser knows, but its requests still say ``Host: evil.example``.
* **Origin**: a request that names a foreign ``Origin`` (or ``null``, a sandboxed or file page)
  is refused; pages served from the same loopback and allowed hosts, any port, are not. Browsers
  send ``Origin`` on every cross-origin request and every POST, which is what cross-site request
  forgery needs.
* **JSON on writes**: a write that carries a body must say ``Content-Type: application/json``.
  The content types a page can send without a CORS preflight (forms, ``text/plain``) are refused,
  so even a browser that sent no ``Origin`` could not post an event or a register body. The
  official SDKs (Python and TypeScript) and Stepline's own clients send JSON; a bodiless write
  (cancel, replay) has nothing to mistake.

Cloud mode (`stepline start`) does not use these rules: every route there that reads or changes
state needs an event key or the signing key's bearer, which a page cannot send on the user's
behalf.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_MEDIA_TYPES = frozenset({"application/json"})
# Binding to every interface names no host a client would use.
_WILDCARD_BINDS = frozenset({"", "0.0.0.0", "::", "[::]"})


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str


def host_name(authority: str) -> str:
    """The host part of a ``Host`` header or an origin's authority, lower-cased, without the port
    and without the brackets of an IPv6 literal."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        return authority[1:end] if end > 0 else authority
    host, _, _port = authority.partition(":") if authority.count(":") == 1 else (authority, "", "")
    return host.rstrip(".")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        # RFC 6761: browsers resolve these to loopback themselves, never through DNS.
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BrowserGuard:
    def __init__(self, bind_host: str, allowed_hosts: Iterable[str] = ()) -> None:
        names = {host_name(h) for h in allowed_hosts if h.strip()}
        if bind_host.strip().lower() not in _WILDCARD_BINDS:
            names.add(host_name(bind_host))
        self.allowed_hosts = frozenset(names)

    def host_allowed(self, host: str) -> bool:
        return is_loopback(host) or host in self.allowed_hosts

    def check(self, method: str, headers: Mapping[str, str], has_body: bool) -> Refusal | None:
        """The refusal for a request (``headers`` with lower-case names), or None to serve it."""
        host = headers.get("host")
        # No Host at all is an HTTP/1.0 tool, never a browser: it passes.
        if host is not None and not self.host_allowed(host_name(host)):
            return Refusal(
                403,
                f"host: {host[:100]!r} is not a loopback name or address; stepline dev answers only those "
                "and the hosts given with --allow-host",
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin):
            return Refusal(403, f"origin: requests from {origin[:100]!r} are refused; only pages on loopback hosts")
        if method in WRITE_METHODS and has_body:
            media_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
            if media_type not in JSON_MEDIA_TYPES:
                shown = repr(media_type) if media_type else "none"
                return Refusal(415, f"content-type: a request body must be application/json, got {shown}")
        return None

    def _origin_allowed(self, origin: str) -> bool:
        parts = urlsplit(origin.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False  # "null" (sandboxed frames, file: pages) and anything that is not a web origin
        return self.host_allowed(host_name(parts.netloc))
