"""The local front door: a threaded HTTP/1.1 server that hands every request to the same
powertools resolver the API Lambda runs, by dressing it as an API Gateway HTTP API v2 event."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

log = logging.getLogger(__name__)

# The largest body any route takes, when the server is given no limit per path.
MAX_BODY_BYTES = 64 * 1024 * 1024
# A body over its limit is read and thrown away, up to this much, so the client gets to read
# the 413 instead of a reset connection; beyond it the connection is closed unread. Memory
# never holds more than the limit, whatever the client declares or streams.
DRAIN_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# After refusing a body it will not read, the server reads past what the client still sends,
# for this long at most, before hanging up: closing on unread data resets the connection, and
# the client may then never see the answer.
LINGER_S = 2.0
_MAX_CHUNK_LINE = 1024
_MAX_TRAILERS = 100


class BodyRefused(Exception):
    def __init__(self, status: int, message: str, close: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def to_http_api_event(method: str, target: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    parts = urlsplit(target)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query: dict[str, str] = {}
    for key, value in pairs:
        query[key] = f"{query[key]},{value}" if key in query else value
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
        "headers": {k.lower(): v for k, v in headers.items()},
        "queryStringParameters": query or None,
        "requestContext": {
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": client_ip,
                "userAgent": headers.get("User-Agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": int(time.time() * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": not is_text,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive for SDKs that reuse connections
    resolver: APIGatewayHttpResolver  # set on the subclass made per server
    body_limit: Callable[[str], int]  # the largest body taken for a path; set likewise

    def _serve(self) -> None:
        try:
            body = self._read_body(self.body_limit(urlsplit(self.path).path))
        except BodyRefused as refused:
            self.close_connection = self.close_connection or refused.close
            self._reply_error(refused.status, refused.message)
            if self.close_connection:
                self._linger()
            return
        event = to_http_api_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        try:
            result = self.resolver.resolve(event, None)  # type: ignore[arg-type]  # no Lambda context here
        except Exception:  # noqa: BLE001 - never drop the connection without an answer
            log.exception("unhandled error serving %s %s", self.command, self.path)
            return self._reply(500, b'{"error":"internal error","status":500}', {})
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        self._reply(int(result.get("statusCode", 200)), data, result.get("headers") or {})

    def _read_body(self, limit: int) -> bytes:
        """The request body, never holding more than ``limit`` bytes of it in memory."""
        transfer = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if transfer:
            if lengths:
                # Two framings for one body: which one a proxy in front honoured is unknowable.
                raise BodyRefused(400, "Transfer-Encoding and Content-Length: send one or the other")
            if [t.strip().lower() for t in transfer] != ["chunked"]:
                raise BodyRefused(501, f"Transfer-Encoding: only chunked is supported, got {', '.join(transfer)!r}")
            return self._read_chunked(limit)
        if len(set(v.strip() for v in lengths)) > 1:
            raise BodyRefused(400, "Content-Length: sent more than once with different values")
        text = lengths[0].strip() if lengths else "0"
        if not text.isdigit():
            raise BodyRefused(400, f"Content-Length: not a non-negative integer: {text[:40]!r}")
        length = int(text)
        if length > limit:
            self._discard(length)
            raise BodyRefused(413, f"body: {length} bytes exceeds the limit of {limit}", close=length > DRAIN_BYTES)
        return self.rfile.read(length) if length else b""

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                size = -1
            if size < 0 or len(line) > _MAX_CHUNK_LINE or not line.endswith(b"\n"):
                raise BodyRefused(400, "body: malformed chunked encoding")
            if size == 0:
                break
            total += size
            if total > limit:
                # Unknown total: never drain a stream that may not end.
                raise BodyRefused(413, f"body: more than {limit} bytes, the limit (chunked)")
            parts.append(self.rfile.read(size))
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BodyRefused(400, "body: malformed chunked encoding")
        for _ in range(_MAX_TRAILERS):
            if self.rfile.readline(_MAX_CHUNK_LINE + 1) in (b"\r\n", b"\n", b""):
                return b"".join(parts)
        raise BodyRefused(400, "body: too many chunked trailers")

    def _discard(self, length: int) -> None:
        if length > DRAIN_BYTES:
            return
        while length > 0:
            read = len(self.rfile.read(min(_READ_CHUNK, length)))
            if not read:
                return
            length -= read

    def _linger(self) -> None:
        deadline = time.monotonic() + LINGER_S
        remaining = DRAIN_BYTES
        try:
            while remaining > 0 and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                data = self.rfile.read1(min(_READ_CHUNK, remaining))
                if not data:
                    return
                remaining -= len(data)
        except OSError:
            pass

    def _reply_error(self, status: int, message: str) -> None:
        self._reply(status, json.dumps({"error": message, "status": status}).encode(), {})

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's own refusals (request line or headers too long, garbage, unknown method)
        # answer in JSON like every other error, not in HTML.
        self.close_connection = True
        try:
            short, _ = self.responses.get(code, ("error", ""))
            self._reply_error(code, f"request: {message or short}")
        except OSError:
            pass

    def _reply(self, status: int, data: bytes, headers: dict[str, Any]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() in ("content-length", "connection"):
                continue
            self.send_header(name, value if isinstance(value, str) else ",".join(value))
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def setup(self) -> None:
        super().setup()
        self.server.open_connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        self.server.open_connections.discard(self.connection)  # type: ignore[attr-defined]
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)


class DevHttpServer:
    def __init__(
        self,
        resolver: APIGatewayHttpResolver,
        host: str,
        port: int,
        body_limit: Callable[[str], int] | None = None,
    ) -> None:
        limit = staticmethod(body_limit or (lambda _path: MAX_BODY_BYTES))
        handler = type("Handler", (_Handler,), {"resolver": resolver, "body_limit": limit})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        # Keep-alive connections outlive shutdown() (it only stops accepting): track them so
        # stop() can close them, or a client would keep talking to a stopped engine.
        self._server.open_connections = set()  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="stepline-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for conn in list(self._server.open_connections):  # type: ignore[attr-defined]
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
