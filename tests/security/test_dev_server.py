"""`stepline dev` checks no credential, so it must not be reachable through a browser: it answers
only loopback Host names (and the bound and allowed hosts), refuses requests that name a foreign
Origin, and takes writes only as JSON. Each refusal is checked to store nothing, and each rule
has its control: what an SDK, the CLI or the dashboard sends passes.

The connection limits (threads, queue, kept-alive connections, idle timeout) are tested on the
same server class with small limits, in test_dev_connections.py."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.settings import Settings
from tests.e2e.conftest import free_port
from tests.security.conftest import unique

ALLOWED_HOST = "stepline.test"


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Iterator[DevRuntime]:
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("dev-guard") / "dev.db"),
                         allowed_hosts=[ALLOWED_HOST])
    runtime = DevRuntime(options, Settings(mode="dev")).start()
    try:
        yield runtime
    finally:
        runtime.stop()


def request(runtime: DevRuntime, method: str, path: str, body: bytes | None = None,
            **headers: str) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", runtime.server.port, timeout=10)
    try:
        # A Host given here replaces the one http.client would send.
        conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def send(runtime: DevRuntime, name: str, **headers: str) -> tuple[int, Any]:
    headers.setdefault("Content_Type", "application/json")
    return request(runtime, "POST", "/e/dev", json.dumps([{"name": name, "data": {}}]).encode(), **headers)


def stored(runtime: DevRuntime, name: str) -> int:
    events, _ = runtime.backend.store.list_events(limit=10, name=name)
    return len(events)


# -- Host ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "localhost.:{port}",
    "[::1]:{port}", "127.8.9.10:{port}", "app.localhost:{port}", ALLOWED_HOST, f"{ALLOWED_HOST}:{{port}}",
])
def test_loopback_and_allowed_hosts_are_served(dev, host):
    name = unique("guard/host-ok-")
    status, body = send(dev, name, Host=host.format(port=dev.server.port))
    assert status == 200, body
    assert stored(dev, name) == 1


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:{port}", "localhost.evil.example:{port}", "127.0.0.1.nip.io:{port}",
    "192.168.1.20:{port}", "10.0.0.1", "[2001:db8::1]:{port}", "0.0.0.0:{port}", "stepline.test.evil.example",
    "127.0.0.1, evil.example",
])
def test_a_foreign_host_is_403_and_stores_nothing(dev, host):
    # What a DNS-rebinding page sends: its own name, resolved to 127.0.0.1.
    name = unique("guard/host-bad-")
    status, body = send(dev, name, Host=host.format(port=dev.server.port))
    assert status == 403, body
    assert body["status"] == 403 and body["error"].startswith("host: "), body
    assert stored(dev, name) == 0


def test_a_foreign_host_cannot_read_either(dev):
    status, body = request(dev, "GET", "/v1/events", Host="evil.example")
    assert status == 403 and "host" in body["error"], body
    status, _ = request(dev, "GET", "/", Host="evil.example")  # the dashboard page
    assert status == 403


def test_a_repeated_host_header_is_judged_whole(dev):
    # Two Host headers: the server reads both, so a loopback one cannot vouch for a foreign one.
    conn = http.client.HTTPConnection("127.0.0.1", dev.server.port, timeout=10)
    try:
        conn.putrequest("GET", "/v1/events", skip_host=True)
        conn.putheader("Host", "127.0.0.1")
        conn.putheader("Host", "evil.example")
        conn.endheaders()
        resp = conn.getresponse()
        assert resp.status == 403, resp.read()
    finally:
        conn.close()


# -- Origin --------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [
    "http://evil.example", "https://evil.example:8288", "http://localhost.evil.example:3000",
    "http://192.168.1.20:8288", "null", "file://", "chrome-extension://abcdef",
])
def test_a_foreign_origin_is_403_and_stores_nothing(dev, origin):
    name = unique("guard/origin-bad-")
    status, body = send(dev, name, Origin=origin)
    assert status == 403, body
    assert body["error"].startswith("origin: "), body
    assert stored(dev, name) == 0
    status, body = request(dev, "GET", "/v1/events", Origin=origin)
    assert status == 403, body


@pytest.mark.parametrize("origin", [
    "http://localhost:3000", "http://127.0.0.1:{port}", "https://localhost", "http://[::1]:5173",
    "http://my-app.localhost:3000", f"http://{ALLOWED_HOST}:{{port}}",
])
def test_pages_on_loopback_origins_are_served(dev, origin):
    name = unique("guard/origin-ok-")
    status, body = send(dev, name, Origin=origin.format(port=dev.server.port))
    assert status == 200, body
    assert stored(dev, name) == 1


# -- JSON on writes ------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    # What a page can send without a CORS preflight, and no type at all.
    "text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", None, "application/jsonp", "text/json",
])
def test_a_write_whose_body_is_not_json_is_415_and_stores_nothing(dev, content_type):
    name = unique("guard/type-bad-")
    body = json.dumps([{"name": name, "data": {}}]).encode()
    headers = {"Content_Type": content_type} if content_type else {}
    status, reply = request(dev, "POST", "/e/dev", body, **headers)
    assert status == 415, reply
    assert reply["error"].startswith("content-type: a request body must be application/json"), reply
    assert stored(dev, name) == 0
    status, reply = request(dev, "POST", "/fn/register", json.dumps({"url": "http://127.0.0.1:9/x"}).encode(),
                            **headers)
    assert status == 415, reply


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_writes_are_served(dev, content_type):
    name = unique("guard/type-ok-")
    status, body = send(dev, name, Content_Type=content_type)
    assert status == 200, body
    assert stored(dev, name) == 1


def test_a_bodiless_write_needs_no_content_type(dev):
    # Cancel and replay carry no body: the route answers, not the JSON rule.
    status, body = request(dev, "POST", "/v1/runs/01JAAAAAAAAAAAAAAAAAAAAAAA/replay")
    assert status == 404 and "run" in body["error"], body


def test_the_python_sdk_sends_events_through_the_rules(dev):
    # The official SDK's own client, as an app uses it (its syncs pass in every e2e test).
    import inngest

    name = unique("guard/sdk-")
    client = inngest.Inngest(app_id=unique("guard-sdk-app-"), is_production=False,
                             api_base_url=f"http://127.0.0.1:{dev.server.port}",
                             event_api_base_url=f"http://127.0.0.1:{dev.server.port}")
    ids = client.send_sync(inngest.Event(name=name, data={"x": 1}))
    assert len(ids) == 1
    assert stored(dev, name) == 1
