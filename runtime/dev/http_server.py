"""The local front door: a threaded HTTP/1.1 server that hands every request to the same
powertools resolver the API Lambda runs, by dressing it as an API Gateway HTTP API v2 event."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

log = logging.getLogger(__name__)

# Refuse bodies beyond this before reading them; the routes apply their own, smaller limits.
MAX_BODY_BYTES = 64 * 1024 * 1024


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

    def _serve(self) -> None:
        length_text = self.headers.get("Content-Length") or "0"
        try:
            length = int(length_text)
        except ValueError:
            return self._reply(400, b'{"error":"Content-Length: not an integer","status":400}', {})
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return self._reply(413, b'{"error":"body: too large","status":413}', {})
        body = self.rfile.read(length) if length > 0 else b""
        event = to_http_api_event(self.command, self.path, dict(self.headers.items()), body, self.client_address[0])
        try:
            result = self.resolver.resolve(event, None)
        except Exception:  # noqa: BLE001 - never drop the connection without an answer
            log.exception("unhandled error serving %s %s", self.command, self.path)
            return self._reply(500, b'{"error":"internal error","status":500}', {})
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
        self._reply(int(result.get("statusCode", 200)), data, result.get("headers") or {})

    def _reply(self, status: int, data: bytes, headers: dict[str, Any]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() in ("content-length", "connection"):
                continue
            self.send_header(name, value if isinstance(value, str) else ",".join(value))
        if not any(k.lower() == "content-type" for k in headers):
            self.send_header("Content-Type", "application/json")
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
    def __init__(self, resolver: APIGatewayHttpResolver, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"resolver": resolver})
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
