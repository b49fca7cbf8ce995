"""The local front door: cheroot's threaded HTTP/1.1 server handing every request to the same
powertools resolver the API Lambda runs, by dressing it as an API Gateway HTTP API v2 event.

cheroot does the connections: a fixed pool of worker threads, a queue of accepted connections in
front of it (503 once full), kept-alive connections parked on a selector rather than on a thread,
idle connections closed after ``idle_timeout_s``, request lines and headers read within a size
limit, and TCP_NODELAY on every socket. What is Stepline's own: the body's framing and the
route's limit (``stepline.dev.http_body``), the browser rules of dev mode
(``stepline.dev.browser_guard``), and every answer, the server's own refusals included, in JSON
and in one write.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qsl, urlsplit

from cheroot import errors as cheroot_errors
from cheroot import server as cheroot_server
from cheroot.workers import threadpool

from stepline.dev.browser_guard import BrowserGuard
from stepline.dev.http_body import (
    BodyRefused,
    judge_framing,
    linger,
    read_body,
    refuse_unread,
)

log = logging.getLogger(__name__)

# The largest body any route takes, when the server is given no limit per path.
MAX_BODY_BYTES = 64 * 1024 * 1024
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})


class Resolver(Protocol):
    """What the server hands requests to: the API's powertools resolver, or anything else that
    takes an HTTP API v2 event and returns an API Gateway proxy result."""

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]: ...


class PerThreadResolver:
    """A resolver of its own for each serving thread, built by ``build`` on the thread's first
    request. Powertools' resolver keeps the request it is serving on itself (the path's arguments
    in ``context``; the event, see ``stepline.api.app.ApiResolver``): one resolver shared by the
    server's threads let one request read another's path arguments and headers (a route called
    without its arguments, a request judged by another's credentials). Not a lock around one
    resolver: a handler may wait on a request to this same server (a sync's PUT is answered only
    after the app has registered)."""

    def __init__(self, build: Callable[[], Resolver]) -> None:
        self._build = build
        self._local = threading.local()

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        resolver: Resolver | None = getattr(self._local, "resolver", None)
        if resolver is None:
            resolver = self._local.resolver = self._build()
        return resolver.resolve(event, context)


@dataclass(frozen=True)
class ServerLimits:
    """How much of the machine the server may take. Connections open at once are bounded by
    ``threads + queued_connections + keep_alive_connections``; beyond that a connection is
    answered 503 and closed."""

    threads: int = 32  # requests served at once
    queued_connections: int = 64  # accepted and waiting for a thread
    keep_alive_connections: int = 64  # idle between requests; past it, answers say Connection: close
    # Idle this long between requests, or silent this long inside one, and a connection is
    # closed. Longer than the SDKs' own keep-alive (4-5 s), so clients normally close first.
    idle_timeout_s: float = 15.0
    max_header_bytes: int = 64 * 1024  # the request line and headers together


def to_http_api_event(method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    parts = urlsplit(target)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query: dict[str, str] = {}
    for key, value in pairs:
        query[key] = f"{query[key]},{value}" if key in query else value
    lowered = {k.lower(): v for k, v in headers.items()}
    is_text = True
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        is_text = False
        text = base64.b64encode(body).decode("ascii")
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "queryStringParameters": query or None,
        "requestContext": {
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": client_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": not is_text,
    }


def _status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"HTTP/1.1 {status} {phrase}"


def _json_error(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()


class _HeaderReader(cheroot_server.HeaderReader):
    """cheroot's header reading, except that every repeated header is joined with ``", "`` (cheroot
    keeps only the last of most, so a second ``Content-Length`` or ``Host`` could hide), and the
    body's framing is judged as soon as the headers are in, before cheroot acts on them."""

    def __call__(self, rfile: Any, hdict: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {} if hdict is None else hdict
        name: bytes | None = None
        while True:
            line = rfile.readline()
            if not line:
                raise ValueError("Illegal end of headers.")
            if line == b"\r\n":
                break
            if not line.endswith(b"\r\n"):
                raise ValueError("HTTP requires CRLF terminators")
            if line[:1] in (b" ", b"\t"):
                if name is None:
                    raise ValueError("Illegal header line.")
                headers[name] += b" " + line.strip()  # an obsolete continuation line
                continue
            key, sep, value = line.partition(b":")
            if not sep or not key.strip():
                raise ValueError("Illegal header line.")
            name = key.strip().title()
            value = value.strip()
            headers[name] = headers[name] + b", " + value if name in headers else value
        judge_framing(headers)  # BodyRefused: not a ValueError, so it reaches _Request below
        return headers


class _Request(cheroot_server.HTTPRequest):
    """One request on a connection: cheroot reads the request line and headers; the framing is
    judged here, before cheroot acts on it; the gateway does the rest."""

    server: _Server
    header_reader = _HeaderReader()

    def read_request_headers(self) -> bool:
        try:
            if not super().read_request_headers():
                return False
        except cheroot_errors.MaxSizeExceeded:
            limit = self.server.max_request_header_size
            self.refuse(BodyRefused(431, f"request: headers over {limit} bytes"))
            return False
        except BodyRefused as refused:
            self.refuse(refused)
            return False
        return True

    def simple_response(self, status: Any, msg: Any = "") -> None:
        # cheroot's own refusals (request line too long, garbage, a bad header, timeouts) answer
        # in JSON like every other error; each of them ends the connection.
        code = int(str(status)[:3])
        text = msg.decode("latin-1") if isinstance(msg, bytes) else str(msg or "")
        self.refuse(BodyRefused(code, f"request: {text or str(status)[4:] or code}"))

    def refuse(self, refused: BodyRefused) -> None:
        if refused.close and refused.status != HTTPStatus.REQUEST_TIMEOUT:
            # The client may still be sending: read past it before hanging up (a silent one,
            # timed out, is not).
            self.conn.linger_on_close = True
        self.respond_with(refused.status, _json_error(refused.status, refused.message), {}, close=refused.close)

    def respond_with(self, status: int, body: bytes, headers: Mapping[str, Any], *, close: bool) -> None:
        """The whole answer, status line to last byte, in one write."""
        close = close or self.close_connection or not self.server.can_add_keepalive_connection
        lines = [_status_line(status)]
        has_type = False
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in ("content-length", "connection", "transfer-encoding"):
                continue
            has_type = has_type or lowered == "content-type"
            lines.append(f"{name}: {value if isinstance(value, str) else ','.join(value)}")
        if not has_type:
            lines.append("Content-Type: application/json")
        if close:
            lines.append("Connection: close")
        elif self.response_protocol == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.close_connection = close
        self.sent_headers = True  # cheroot writes nothing more for this request
        try:
            self.conn.wfile.write(head + body)
        except OSError:
            self.close_connection = True
        log.debug(
            '%s - "%s %s %s" %d %d',
            self.conn.remote_addr,
            getattr(self, "method", b"-").decode("latin-1"),
            getattr(self, "uri", b"-").decode("latin-1"),
            getattr(self, "request_protocol", b"HTTP/1.1").decode("latin-1"),
            status,
            len(body),
        )


class _Connection(cheroot_server.HTTPConnection):
    RequestHandlerClass = _Request
    linger_on_close = False

    def close(self) -> None:
        if self.linger_on_close:
            linger(self.socket, self.rfile)
        super().close()


class _ResolverGateway(cheroot_server.Gateway):
    req: _Request

    def respond(self) -> None:
        req = self.req
        server = req.server
        method = req.method.decode("latin-1")
        target = req.uri.decode("latin-1")
        if method not in METHODS:
            return req.refuse(BodyRefused(501, f"request: unsupported method ({method[:20]!r})"))
        framing = judge_framing(req.inheaders)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in req.inheaders.items()}
        rfile: BinaryIO = req.conn.rfile
        if server.guard is not None and (refusal := server.guard.check(method, headers, framing.has_body)):
            return req.refuse(refuse_unread(rfile, framing, BodyRefused(refusal.status, refusal.message)))
        path = urlsplit(target).path
        try:
            body = read_body(rfile, framing, server.body_limit(path))
        except BodyRefused as refused:
            return req.refuse(refused)
        event = to_http_api_event(method, target, headers, body, req.conn.remote_addr or "")
        try:
            result = server.resolver.resolve(event, None)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException:  # noqa: BLE001 - one request never takes the server down, nor leaves without an answer
            log.exception("unhandled error serving %s %s", method, path)
            return req.respond_with(500, _json_error(500, "internal error"), {}, close=False)
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        req.respond_with(int(result.get("statusCode", 200)), data, result.get("headers") or {}, close=False)


class _Server(cheroot_server.HTTPServer):
    ConnectionClass = _Connection

    def __init__(
        self,
        host: str,
        port: int,
        resolver: Resolver,
        body_limit: Callable[[str], int],
        guard: BrowserGuard | None,
        limits: ServerLimits,
    ) -> None:
        super().__init__((host, port), _ResolverGateway, minthreads=limits.threads, maxthreads=limits.threads)
        # A full queue answers 503 at once rather than stalling the thread that accepts.
        self.requests = threadpool.ThreadPool(
            self,
            min=limits.threads,
            max=limits.threads,
            accepted_queue_size=limits.queued_connections,
            accepted_queue_timeout=0,
        )
        self.resolver = resolver
        self.body_limit = body_limit
        self.guard = guard
        self.timeout = limits.idle_timeout_s  # type: ignore[assignment]  # a socket timeout: fractions work
        self.keep_alive_conn_limit = limits.keep_alive_connections
        self.max_request_header_size = limits.max_header_bytes
        self.max_request_body_size = 0  # the gateway enforces each route's own limit
        self.server_name = "stepline"
        # Bound now, not when serving starts: a port in use fails here, and the port is known.
        self._bound: socket.socket | None = self._bind_now(host, port)

    def _bind_now(self, host: str, port: int) -> socket.socket:
        failure: OSError | None = None
        for family, kind, proto, _name, _addr in socket.getaddrinfo(
            host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
        ):
            try:
                return super().bind(family, kind, proto)
            except OSError as exc:
                failure = failure or exc
        raise failure or OSError(f"no address to bind for {host}:{port}")

    def bind(self, family: Any, type: Any, proto: Any = 0) -> socket.socket:  # noqa: A002 - cheroot's signature
        # prepare() binds here: hand it the socket bound in __init__.
        if self._bound is not None:
            sock, self._bound = self._bound, None
            self.socket = sock
            return sock
        return super().bind(family, type, proto)

    def close_unserved(self) -> None:
        """Release the port of a server that never started."""
        if self._bound is not None:
            self._bound.close()
            self._bound = None

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        # cheroot reports clients that hang up or reset at INFO: routine for a server, so debug.
        log.log(level if level >= logging.WARNING else logging.DEBUG, "%s", msg, exc_info=traceback)


class DevHttpServer:
    def __init__(
        self,
        resolver: Resolver,
        host: str,
        port: int,
        body_limit: Callable[[str], int] | None = None,
        *,
        guard: BrowserGuard | None = None,
        limits: ServerLimits | None = None,
    ) -> None:
        self._server = _Server(
            host, port, resolver, body_limit or (lambda _path: MAX_BODY_BYTES), guard, limits or ServerLimits()
        )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.bind_addr[1])

    def start(self) -> None:
        self._server.prepare()  # binds: the port is known and connections queue from here on
        self._thread = threading.Thread(target=self._server.serve, name="stepline-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # Closes the listening socket and every connection, kept-alive ones included: a client
        # must not keep talking to a stopped engine.
        if self._thread is None:
            self._server.close_unserved()
            return
        self._server.stop()
        self._thread.join(5)
