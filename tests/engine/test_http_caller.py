"""The executor's HTTP client against a real server that misbehaves: every broken answer is a
retriable ``CallFailed``, and an oversized one is cut off, not read into memory."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stepline.engine.http import CallFailed, PooledHttpCaller


class _App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"ok": true}'
        if self.path == "/huge":
            body = b"x" * (3 * 1024 * 1024)
        length = len(body) * 2 if self.path == "/truncated" else len(body)
        if self.path == "/truncated":
            body = body[:5]
        if self.path == "/trickle":
            # Headers at once, then a byte every 0.1 s for 3 s: each read is quick, the whole slow.
            self.send_response(200)
            self.send_header("Content-Length", "30")
            self.end_headers()
            for _ in range(30):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.1)
            return
        if self.path == "/close":
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/truncated":
            self.close_connection = True


@pytest.fixture(scope="module")
def app_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_normal_answer_is_read_whole(app_url):
    resp = PooledHttpCaller().post(f"{app_url}/ok", b"{}", {}, 5)
    assert (resp.status, resp.body, resp.headers["content-type"]) == (200, b'{"ok": true}', "application/json")


def test_an_answer_over_the_limit_fails_the_call_without_reading_it(app_url):
    caller = PooledHttpCaller(max_response_bytes=1024 * 1024)
    with pytest.raises(CallFailed, match="larger than 1048576 bytes"):
        caller.post(f"{app_url}/huge", b"{}", {}, 5)
    # The connection it gave up on is not reused: the next call is answered normally.
    assert caller.post(f"{app_url}/ok", b"{}", {}, 5).body == b'{"ok": true}'


@pytest.mark.parametrize("path", ["/truncated", "/close"])
def test_a_cut_off_answer_fails_the_call(app_url, path):
    with pytest.raises(CallFailed):
        PooledHttpCaller().post(f"{app_url}{path}", b"{}", {}, 5)


def test_the_timeout_bounds_the_whole_call_not_each_read(app_url):
    # urllib3's read timeout is per read: an answer trickled a byte at a time would be waited
    # for as long as the app liked, and a call started near the end would outrun its Lambda.
    started = time.monotonic()
    with pytest.raises(CallFailed, match="no complete answer within 0.5 s|timed out"):
        PooledHttpCaller().post(f"{app_url}/trickle", b"{}", {}, 0.5)
    assert time.monotonic() - started < 2.5  # gave up at its deadline, not when the app finished
