"""A real HTTP proxy between the executor and a user's app, that breaks calls on purpose.

Only POSTs (executor calls) are faulted; the sync PUT and GETs pass through untouched. A fault
happens either before the request reaches the app (the app never ran) or after (the app ran the
step, its side effect happened, and the answer is lost): the second kind is what makes step
execution at-least-once, and the proxy remembers which step results (their nonces, see
tests/chaos/app.py) it threw away so the chaos suite can account for every execution.

A checkpoint stream (docs/protocol.md §17.2) that is not faulted is passed on line by line as it
comes, as a real proxy would: an app that dies mid-stream has delivered what it sent before.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from tests.faults.plan import FaultPlan

NONCE = re.compile(rb"n-[0-9a-f]{32}")
RUN_ID = re.compile(rb'"run_id"\s*:\s*"([^"]+)"')
OVERSIZED_BYTES = 20 * 1024 * 1024
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        pass  # a peer that hung up on a faulted answer is the point, not news


class FaultyAppProxy:
    def __init__(self, target_url: str, plan: FaultPlan, hang_s: float) -> None:
        target = urlsplit(target_url)
        self.target_host = target.hostname or "127.0.0.1"
        self.target_port = target.port or 80
        self.plan = plan
        self.hang_s = hang_s
        # Nonces of step results the app produced whose answer the proxy destroyed.
        self.dropped: set[str] = set()
        # Nonces of checkpoint stream lines passed on to the executor as they came.
        self.forwarded: set[str] = set()
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-app-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> "FaultyAppProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the handler ---------------------------------------------------------------------------
    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.target_host, self.target_port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            try:
                data = resp.read()
            except http.client.IncompleteRead as cut:  # the app died mid-answer
                data = cut.partial
            kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS]
            return resp.status, kept, data
        finally:
            conn.close()

    def _drop(self, request: bytes, body: bytes, fault: str) -> None:
        with self._lock:
            self.dropped.update(n.decode() for n in NONCE.findall(body))
        self.plan.note(f"app_{fault}_after_work", _where(request))

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # a streamed line leaves at once

            def log_message(self, *args) -> None:  # quiet
                pass

            def _read_body(self) -> bytes:
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _send(self, status: int, headers: list[tuple[str, str]], body: bytes, *, length: int | None = None) -> None:
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)

            def _passthrough(self) -> None:
                body = self._read_body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                headers["Host"] = self.headers.get("Host", "")
                if self.command == "POST":
                    return self._stream_through(headers, body)
                try:
                    status, out_headers, data = proxy._forward(self.command, self.path, headers, body)
                except OSError as exc:  # the app is not up (yet): what a real proxy answers
                    status, out_headers, data = 502, [("Content-Type", "text/plain")], str(exc).encode()
                self._send(status, out_headers, data)

            def _stream_through(self, headers: dict[str, str], body: bytes) -> None:
                """A call answered as it comes: whole, or line by line for a checkpoint stream."""
                conn = http.client.HTTPConnection(proxy.target_host, proxy.target_port, timeout=60)
                try:
                    try:
                        conn.request("POST", self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                    except OSError as exc:
                        return self._send(502, [("Content-Type", "text/plain")], str(exc).encode())
                    kept = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS]
                    if resp.getheader("x-stepline-checkpoint") != "stream":
                        try:
                            data = resp.read()
                        except (http.client.HTTPException, OSError):
                            return self._abort()  # the app died mid-answer: so does this one
                        return self._send(resp.status, kept, data)
                    self.send_response(resp.status)
                    for k, v in kept:
                        self.send_header(k, v)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    line = b""
                    try:
                        while True:
                            line = resp.readline()
                            if not line:
                                break
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                            with proxy._lock:
                                proxy.forwarded.update(n.decode() for n in NONCE.findall(line))
                            line = b""
                        self.wfile.write(b"0\r\n\r\n")
                    except http.client.HTTPException:
                        self._abort()  # the app died mid-stream
                    except OSError:
                        # The executor hung up: what the app sends from here on is thrown away
                        # (noted, so every step it runs meanwhile is accounted for).
                        self._drain(resp, line)
                        self._abort()
                finally:
                    conn.close()

            do_GET = _passthrough
            do_PUT = _passthrough

            def do_POST(self) -> None:
                rates = proxy.plan.rates
                fault = proxy.plan.choose([
                    ("500", rates.app_500),
                    ("hang", rates.app_hang),
                    ("close", rates.app_close),
                    ("malformed", rates.app_malformed),
                    ("truncated", rates.app_truncated),
                    ("oversized", rates.app_oversized),
                ])
                if fault is None:
                    return self._passthrough()
                after_work = proxy.plan.roll(rates.app_after_work)
                body = self._read_body()
                data = b""
                status, out_headers = 200, [("Content-Type", "application/json")]
                if after_work:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                    headers["Host"] = self.headers.get("Host", "")
                    status, out_headers, data = proxy._forward("POST", self.path, headers, body)
                    proxy._drop(body, data, fault)
                else:
                    proxy.plan.note(f"app_{fault}", _where(body))
                if fault == "500":
                    self._send(500, [("Content-Type", "text/plain")], b"injected internal error")
                elif fault == "hang":
                    time.sleep(proxy.hang_s)
                    self.close_connection = True
                    try:
                        self._send(status, out_headers, data)
                    except OSError:
                        pass  # the executor gave up long ago
                elif fault == "close":
                    self._abort()
                elif fault == "malformed":
                    self._send(200, [("Content-Type", "application/json")], b'{"op": "StepRun", "id": ' + data[:40])
                elif fault == "truncated":
                    real = data or b'[{"op": "StepRun", "id": "x", "data": "' + b"y" * 200 + b'"}]'
                    self._send(206 if status == 206 else 200, out_headers, real[: len(real) // 2], length=len(real))
                    self._abort()
                elif fault == "oversized":
                    filler = b'[{"op": "StepRun", "id": "big", "data": "' + b"z" * OVERSIZED_BYTES + b'"}]'
                    try:
                        self._send(200, [("Content-Type", "application/json")], filler)
                    except OSError:
                        pass  # the executor stopped reading at its limit
                    self.close_connection = True

            def _drain(self, resp: http.client.HTTPResponse, unsent: bytes) -> None:
                dropped = set(NONCE.findall(unsent))
                try:
                    while True:
                        line = resp.readline()
                        if not line:
                            break
                        dropped.update(NONCE.findall(line))
                except (http.client.HTTPException, OSError):
                    pass
                with proxy._lock:
                    proxy.dropped.update(n.decode() for n in dropped)

            def _abort(self) -> None:
                self.close_connection = True
                try:
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        return Handler


def _where(request: bytes) -> str:
    found = RUN_ID.search(request)
    return f"app call of run {found.group(1).decode()}" if found else "app call"
