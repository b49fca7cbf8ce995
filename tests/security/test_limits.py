"""Size limits: too large a body, too many events, one event too large, too large a register body.
Each is a 413 naming the limit, and nothing is stored. The dev server enforces the body limit
of the route before reading the body, whatever the client declares (Content-Length) or streams
(chunked), so a client cannot make it hold more than the limit in memory."""

from __future__ import annotations

from http.client import HTTPResponse
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import http, start_runtime
from tests.security.conftest import BEARER, EVENT_KEY, cloud_settings, start_command, unique

BODY_LIMIT = 64 * 1024
EVENTS_LIMIT = 20
EVENT_LIMIT = 8 * 1024
REGISTER_LIMIT = 32 * 1024


class Limited:
    def __init__(self, url: str, port: int, store: Any) -> None:
        self.url = url
        self.port = port
        self.store = store

    def events_named(self, name: str) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/v1/events?name={name}", headers={"Authorization": BEARER})
        assert status == 200, body
        return body["data"]


@pytest.fixture(scope="module", params=["sqlite", "moto", "start"])
def limited(request, tmp_path_factory) -> Iterator[Limited]:
    settings = cloud_settings(max_event_body_bytes=BODY_LIMIT, max_events_per_request=EVENTS_LIMIT,
                              max_event_bytes=EVENT_LIMIT, max_register_body_bytes=REGISTER_LIMIT)
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    if request.param == "start":
        started = start_command(tmp, settings)  # the limits reach it through its environment
        yield Limited(started.url, started.port, started.store)
        started.stop()
        return
    runtime = start_runtime(request.param, tmp, [], settings=settings)
    yield Limited(runtime.url, runtime.server.port, runtime.backend.store)
    runtime.stop()


class Connection:
    """One raw HTTP/1.1 connection: what a client that lies about its body can send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], Any]:
        resp = HTTPResponse(self.sock)
        resp.begin()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(body) if body else None

    def closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def head(path: str, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def events_body(name: str, count: int, data: dict | None = None) -> bytes:
    return json.dumps([{"name": name, "data": data or {}}] * count).encode()


# -- the limits of the routes ----------------------------------------------------------------


def test_a_body_over_the_limit_is_413_naming_it(limited):
    name = unique("sec/big-")
    raw = json.dumps([{"name": name, "data": {"blob": "x" * BODY_LIMIT}}]).encode()
    status, body = http("POST", f"{limited.url}/e/{EVENT_KEY}", raw=raw)
    assert status == 413, body
    assert body == {"error": f"body: {len(raw)} bytes exceeds the limit of {BODY_LIMIT}", "status": 413}
    assert limited.events_named(name) == []


def test_the_rest_api_send_has_the_same_limit(limited):
    name = unique("sec/big-rest-")
    raw = json.dumps([{"name": name, "data": {"blob": "x" * BODY_LIMIT}}]).encode()
    status, body = http("POST", f"{limited.url}/v1/events", raw=raw, headers={"Authorization": BEARER})
    assert status == 413 and str(BODY_LIMIT) in body["error"], body
    assert limited.events_named(name) == []


def test_more_events_than_the_limit_is_413_and_stores_none(limited):
    name = unique("sec/many-")
    status, body = http("POST", f"{limited.url}/e/{EVENT_KEY}", raw=events_body(name, EVENTS_LIMIT + 1))
    assert status == 413, body
    assert body["error"] == f"body: {EVENTS_LIMIT + 1} events exceeds the limit of {EVENTS_LIMIT}", body
    assert limited.events_named(name) == []
    # Exactly the limit is fine.
    status, body = http("POST", f"{limited.url}/e/{EVENT_KEY}", raw=events_body(name, EVENTS_LIMIT))
    assert status == 200 and len(body["ids"]) == EVENTS_LIMIT, body


def test_one_oversized_event_in_a_batch_is_named_and_only_those_before_it_are_stored(limited):
    name = unique("sec/one-big-")
    batch = [{"name": name, "data": {"i": i}} for i in range(5)]
    batch[3]["data"]["blob"] = "x" * EVENT_LIMIT
    status, body = http("POST", f"{limited.url}/e/{EVENT_KEY}", batch)
    assert status == 413, body
    assert body["error"].startswith("events[3]: ") and f"limit of {EVENT_LIMIT}" in body["error"], body
    # As on Inngest: the three before it are stored and acknowledged; it and the one after are not.
    stored = limited.events_named(name)
    assert sorted(e["data"]["i"] for e in stored) == [0, 1, 2]
    assert sorted(e["internal_id"] for e in stored) == sorted(body["ids"])


def test_an_oversized_register_body_is_413_and_registers_nothing(limited):
    app_id = unique("sec-big-app-")
    register = {"url": "http://127.0.0.1:9/api/inngest", "appName": app_id, "functions": [], "pad": "x" * REGISTER_LIMIT}
    status, body = http("POST", f"{limited.url}/fn/register", register, headers={"Authorization": BEARER})
    assert status == 413, body
    assert f"exceeds the limit of {REGISTER_LIMIT}" in body["error"], body
    assert limited.store.get_app(app_id) is None


# -- the server refuses before reading ---------------------------------------------------------


def test_a_huge_declared_length_is_refused_before_any_body_is_sent(limited):
    conn = Connection(limited.port)
    try:
        conn.send(head(f"/e/{EVENT_KEY}", Content_Length=str(10 * 1024**3)))
        conn.sock.shutdown(socket.SHUT_WR)
        # Nothing of the body has been sent: the answer can only come from the headers.
        status, headers, body = conn.response()
        assert status == 413, body
        assert body["error"] == f"body: {10 * 1024**3} bytes exceeds the limit of {BODY_LIMIT}", body
        assert headers.get("connection") == "close"
        assert conn.closed_by_server()
    finally:
        conn.close()


def test_a_body_just_over_the_limit_is_drained_and_the_connection_lives_on(limited):
    conn = Connection(limited.port)
    try:
        raw = b"[" + b" " * BODY_LIMIT + b"]"
        conn.send(head(f"/e/{EVENT_KEY}", Content_Length=str(len(raw))) + raw)
        status, _, body = conn.response()
        assert status == 413 and str(BODY_LIMIT) in body["error"], body
        # The body was read past, not parsed as the next request: the connection still works.
        name = unique("sec/after-drain-")
        good = events_body(name, 1)
        conn.send(head(f"/e/{EVENT_KEY}", Content_Length=str(len(good))) + good)
        status, _, body = conn.response()
        assert status == 200, body
    finally:
        conn.close()
    assert len(limited.events_named(name)) == 1


def test_a_chunked_body_is_read_as_one_body(limited):
    name = unique("sec/chunked-")
    raw = events_body(name, 2)
    conn = Connection(limited.port)
    try:
        conn.send(head(f"/e/{EVENT_KEY}", Transfer_Encoding="chunked") + chunk(raw[:10]) + chunk(raw[10:]) + b"0\r\n\r\n")
        status, _, body = conn.response()
    finally:
        conn.close()
    assert status == 200 and len(body["ids"]) == 2, body
    assert len(limited.events_named(name)) == 2


def test_a_chunked_stream_past_the_limit_is_refused_before_it_ends(limited):
    name = unique("sec/endless-")
    conn = Connection(limited.port)
    try:
        conn.send(head(f"/e/{EVENT_KEY}", Transfer_Encoding="chunked") + chunk(b'[{"name":"' + name.encode() + b'","data":{"x":"'))
        piece = chunk(b"x" * 16 * 1024)
        for _ in range(BODY_LIMIT // (16 * 1024) + 1):
            conn.send(piece)
        conn.sock.shutdown(socket.SHUT_WR)
        # The stream has not ended (no last chunk): the server answered from what it counted.
        status, _, body = conn.response()
        assert status == 413, body
        assert body["error"] == f"body: more than {BODY_LIMIT} bytes, the limit (chunked)", body
        assert conn.closed_by_server()
    finally:
        conn.close()
    assert limited.events_named(name) == []


@pytest.mark.parametrize(
    "headers, payload, status, fragment",
    [
        # Two framings: the classic request smuggling set-up. The "body" hides a second request.
        ({"Content_Length": "5", "Transfer_Encoding": "chunked"},
         b"0\r\n\r\nPOST /e/%s HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}" % EVENT_KEY.encode(),
         400, "Transfer-Encoding and Content-Length"),
        ({"Content_Length": "-5"}, b"", 400, "Content-Length"),
        ({"Content_Length": "5x"}, b"", 400, "Content-Length"),
        ({"Transfer_Encoding": "gzip"}, b"", 501, "Transfer-Encoding"),
        ({"Transfer_Encoding": "chunked"}, b"zz\r\n[]\r\n0\r\n\r\n", 400, "chunked"),
    ],
    ids=["cl-and-te", "negative-length", "non-numeric-length", "te-gzip", "bad-chunk-size"],
)
def test_ambiguous_or_malformed_framing_is_refused(limited, headers, payload, status, fragment):
    conn = Connection(limited.port)
    try:
        conn.send(head(f"/e/{EVENT_KEY}", **headers) + payload)
        conn.sock.shutdown(socket.SHUT_WR)
        got, reply_headers, body = conn.response()
        assert got == status, body
        assert fragment in body["error"] and body["status"] == status, body
        # The stream's framing is unknown after a refusal like this: the server hangs up.
        assert reply_headers.get("connection") == "close"
    finally:
        conn.close()


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"HEAD /e/k HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"POST /e/k HTTP/1.1\r\n" + b"X-Pad: " + b"p" * 70_000 + b"\r\n\r\n", 431),
    ],
    ids=["garbage", "unsupported-method", "header-too-long"],
)
def test_the_servers_own_refusals_are_json(limited, request_bytes, status):
    conn = Connection(limited.port)
    try:
        conn.send(request_bytes)
        raw = b""
        while chunk_ := conn.sock.recv(65536):
            raw += chunk_
    finally:
        conn.close()
    body = json.loads(raw[raw.index(b"{"):])
    assert body["status"] == status and body["error"].startswith("request: "), body


@pytest.mark.parametrize(
    "field, fragment",
    [("app", "appName: 513 bytes exceeds the limit of 512"),
     ("function", "functions[0].id: 513 bytes exceeds the limit of 512"),
     ("trigger", "functions[0].triggers[0].event: 513 bytes exceeds the limit of 512")],
)
def test_register_names_too_long_for_store_keys_are_400(limited, field, fragment):
    app_id = "a" * 513 if field == "app" else unique("sec-long-")
    fn_id = "f" * 513 if field == "function" else f"{app_id}-fn"
    trigger = "t" * 513 if field == "trigger" else "sec/never"
    url = "http://127.0.0.1:9/api/inngest"
    register = {"url": url, "appName": app_id, "functions": [{
        "id": fn_id, "name": "fn", "triggers": [{"event": trigger}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": url}}}}]}
    status, body = http("POST", f"{limited.url}/fn/register", register, headers={"Authorization": BEARER})
    assert status == 400 and body["error"] == fragment, body
    assert limited.store.get_app(app_id) is None
