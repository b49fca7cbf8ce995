"""The local server's limits on connections (stepline.dev.http_server.ServerLimits), on a real
server with small limits and a resolver whose requests the test holds open: a fixed number of
threads serve at once, a bounded queue waits for them and anything beyond is answered 503, idle
kept-alive connections are closed after the idle timeout and silent new ones too, and no more
than the limit of connections is kept alive."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from stepline.dev.http_server import DevHttpServer, ServerLimits
from tests.e2e.conftest import free_port, wait_for


class NativePanic(BaseException):
    """What a native library's panic looks like from Python: not an Exception."""


class HeldResolver:
    """Answers at once, except ``/hold``, which waits until the test releases it, and ``/panic``,
    which raises what a native library's panic raises."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.holding = 0
        self._lock = threading.Lock()

    def resolve(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        if event["rawPath"] == "/panic":
            raise NativePanic("the library gave up")
        if event["rawPath"] == "/hold":
            with self._lock:
                self.holding += 1
            self.release.wait(30)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"path": event["rawPath"]})}


def serve(limits: ServerLimits) -> tuple[DevHttpServer, HeldResolver]:
    resolver = HeldResolver()
    server = DevHttpServer(resolver, "127.0.0.1", free_port(), limits=limits)
    server.start()
    return server, resolver


def limited(idle_timeout_s: float) -> Iterator[tuple[DevHttpServer, HeldResolver]]:
    server, resolver = serve(ServerLimits(threads=2, queued_connections=1, keep_alive_connections=1,
                                          idle_timeout_s=idle_timeout_s))
    try:
        yield server, resolver
    finally:
        resolver.release.set()
        server.stop()


@pytest.fixture
def small() -> Iterator[tuple[DevHttpServer, HeldResolver]]:
    yield from limited(idle_timeout_s=10.0)


@pytest.fixture
def short_idle() -> Iterator[tuple[DevHttpServer, HeldResolver]]:
    yield from limited(idle_timeout_s=0.5)


def get(conn: http.client.HTTPConnection, path: str) -> http.client.HTTPResponse:
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True once the server has closed ``sock`` (EOF or reset), False if it is still open after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def test_requests_past_the_threads_wait_in_the_queue_and_past_that_get_503(small):
    server, resolver = small
    held = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(3)]
    results: list[int] = []

    def hold(conn: http.client.HTTPConnection) -> None:
        results.append(get(conn, "/hold").status)

    threads = [threading.Thread(target=hold, args=(c,)) for c in held[:2]]
    # One at a time: two connections arriving together could find the queue of one still full.
    for busy, t in enumerate(threads, start=1):
        t.start()
        wait_for(lambda n=busy: resolver.holding == n, 10, what=f"{busy} thread(s) to be busy")
    # The third connection is accepted and queued: no thread is free to read it.
    third = threading.Thread(target=hold, args=(held[2],))
    third.start()
    wait_for(lambda: server._server.requests.qsize == 1, 10, what="the third connection to be queued")
    # The fourth finds the queue full: 503 at once, while the others are still held.
    extra = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert get(extra, "/").status == 503
    extra.close()
    assert resolver.holding == 2 and results == []
    resolver.release.set()
    for t in [*threads, third]:
        t.join(10)
    assert sorted(results) == [200, 200, 200]
    for c in held:
        c.close()


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(short_idle):
    server, _ = short_idle
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        first = get(conn, "/a")
        assert first.status == 200 and first.getheader("connection") is None  # kept alive
        assert get(conn, "/b").status == 200  # the same connection, used again at once
        assert conn.sock is not None
        assert closed_within(conn.sock, 5.0), "the idle connection was never closed"
    finally:
        conn.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_idle_timeout(short_idle):
    server, _ = short_idle
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert closed_within(sock, 5.0), "the silent connection was never closed"


def test_connections_past_the_keep_alive_limit_are_closed_after_their_answer(small):
    server, _ = small
    kept = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    other = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        assert get(kept, "/a").getheader("connection") is None
        # Once the first is parked, the limit (one) is reached.
        wait_for(lambda: not server._server.can_add_keepalive_connection, 10, what="the first connection to be parked")
        resp = get(other, "/b")
        assert resp.status == 200 and resp.getheader("connection") == "close"
        assert other.sock is None or closed_within(other.sock, 5.0)
        assert get(kept, "/c").status == 200  # the parked one still serves
    finally:
        kept.close()
        other.close()


def test_a_request_that_raises_a_base_exception_is_a_500_and_the_server_goes_on():
    server, _ = serve(ServerLimits(threads=2, queued_connections=8))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/panic")
        resp = conn.getresponse()
        assert resp.status == 500 and json.loads(resp.read()) == {"error": "internal error", "status": 500}
        assert get(conn, "/after").status == 200  # the connection lives on
        conn.close()
        # More panics than the pool has threads, each on a new connection: none of them died.
        statuses = []
        for path in ("/panic", "/panic", "/panic", "/ok"):
            fresh = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            statuses.append(get(fresh, path).status)
            fresh.close()
        assert statuses == [500, 500, 500, 200]
    finally:
        server.stop()
