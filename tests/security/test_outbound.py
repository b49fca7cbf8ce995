"""Outbound calls cannot be turned on the infrastructure (SSRF). Outside dev mode the executor's
calls and app sync connect only to addresses the policy allows, judged on the address actually
connected to, at the moment of connecting (so a name that resolves elsewhere later, DNS
rebinding, gains nothing); no redirect is followed; calls ask for `Accept-Encoding: identity`,
refuse encoded answers and read at most the cap; secrets in app URLs never reach logs or run
errors.

Real HTTP servers on loopback stand for internal services: each counts what reached it. A host
name is pointed at them by replacing the resolver (``socket.getaddrinfo``) in this process."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from stepline.engine.core import Engine
from stepline.engine.http import CallFailed, PooledHttpCaller
from stepline.engine.outbound import AddressPolicy, AddressRefused, pool_manager, redact_url
from stepline.engine.ports import RunStatus
from stepline.engine.sync import sync_app
from stepline.engine.sync_guard import SyncRefused
from stepline.local import local_backend
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import pump

SIGNING_KEY = "signkey-prod-" + "7a1e" * 16
CLOUD = Settings(mode="cloud", signing_key=SIGNING_KEY, event_keys=["k"], retry_base_ms=0, retry_cap_ms=0)


class Internal(BaseHTTPRequestHandler):
    """An internal service: answers every request with the server's ``reply`` and keeps it."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))  # type: ignore[attr-defined]
        status, headers, body = self.server.reply(self)  # type: ignore[attr-defined]
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer


class Server:
    def __init__(self, reply=None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Internal)
        self.httpd.daemon_threads = True
        self.httpd.seen = []  # type: ignore[attr-defined]
        self.httpd.reply = reply or (lambda handler: (200, {"Content-Type": "application/json"}, b'{"done":true}'))  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.port = self.httpd.server_address[1]

    @property
    def seen(self) -> list[tuple[str, str, dict[str, str], bytes]]:
        return self.httpd.seen  # type: ignore[attr-defined]

    def url(self, host: str = "127.0.0.1", path: str = "/api/inngest") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def resolver(monkeypatch):
    """Names resolved as the test says: ``resolver["app.test"] = ["127.0.0.1"]`` (or a callable
    giving the answer for each lookup)."""
    answers: dict[str, Any] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            found = answers[host]() if callable(answers[host]) else answers[host]
            out = []
            for ip in found:
                family = socket.AF_INET6 if ":" in ip else socket.AF_INET
                address = (ip, port, 0, 0) if family == socket.AF_INET6 else (ip, port)
                out.append((family, socket.SOCK_STREAM, 6, "", address))
            return out
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


# -- which addresses ------------------------------------------------------------------------------

REFUSED = {
    "127.0.0.1": "loopback", "127.8.9.10": "loopback", "::1": "loopback",
    "169.254.169.254": "metadata", "fd00:ec2::254": "metadata", "169.254.10.1": "link-local", "fe80::1": "link-local",
    "10.1.2.3": "private", "172.16.0.9": "private", "192.168.1.1": "private", "fc00::5": "private",
    "100.64.0.1": "private", "224.0.0.1": "multicast", "ff02::1": "multicast", "0.0.0.0": "unspecified",
    "::": "unspecified", "64:ff9b::7f00:1": "loopback", "64:ff9b::a9fe:a9fe": "metadata",
    "64:ff9b:1::a00:1": "private", "::ffff:127.0.0.1": "loopback", "::ffff:169.254.169.254": "metadata",
    "2002:7f00:1::": "loopback", "192.0.2.10": "reserved", "240.0.0.1": "reserved", "2001::1": "Teredo",
}
# What a VPC's apps use: admitted by allow_private_app_urls. The rest stay refused.
PRIVATE = {"127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "fc00::5", "100.64.0.1",
           "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "::ffff:127.0.0.1", "2002:7f00:1::"}


@pytest.mark.parametrize("address", REFUSED, ids=lambda a: f"{a}-{REFUSED[a]}")
def test_internal_addresses_are_refused_and_only_private_ones_can_be_allowed(address):
    reason = AddressPolicy().refusal(address)
    assert reason is not None and REFUSED[address] in reason, reason
    allowed = AddressPolicy(allow_private=True).refusal(address)
    assert (allowed is None) == (address in PRIVATE), allowed


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "64:ff9b::5db8:d822"])
def test_public_addresses_are_allowed(address):
    assert AddressPolicy().refusal(address) is None


def test_dev_mode_checks_nothing():
    assert AddressPolicy.from_settings(Settings(mode="dev")).refusal("169.254.169.254") is None


# -- the executor's calls ------------------------------------------------------------------------


def app_body(url: str, step_url: str | None = None) -> bytes:
    step = step_url or f"{url}?fnId=ssrf-app-go&stepId=step"
    fn = {"id": "ssrf-app-go", "name": "go", "triggers": [{"event": "ssrf/go"}],
          "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": step}}}}
    return json.dumps({"appname": "ssrf-app", "url": url, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
                       "functions": [fn]}).encode()


def run_once(tmp_path, clock, settings: Settings, app_url: str) -> Any:
    """Register an app at ``app_url``, send its event, run the engine until the run ends."""
    with local_backend(str(tmp_path / "ssrf.db"), clock) as backend:
        engine = Engine(backend, settings, clock=clock)
        engine.registry.register(parse_register(app_body(app_url)))
        [event_id] = engine.ingest.accept([{"name": "ssrf/go", "data": {}}])
        [run] = backend.store.runs_for_event(event_id)
        deadline = time.monotonic() + 20
        while not backend.store.get_run(run.run_id).status.terminal and time.monotonic() < deadline:
            pump(backend, engine, clock)
            clock.advance(3_600_000)
        return backend.store.get_run(run.run_id)


def test_a_name_that_resolves_to_loopback_is_never_called(tmp_path, clock, server, resolver):
    # The name passes every check a URL can have; the address it resolves to does not.
    resolver["app.example.com"] = ["127.0.0.1"]
    run = run_once(tmp_path, clock, CLOUD, server.url("app.example.com"))

    assert run.status == RunStatus.FAILED
    assert run.error["name"] == "CallFailed"
    assert "refused to connect to app.example.com: 127.0.0.1 is a loopback address" in run.error["message"]
    assert server.seen == []


def test_private_app_urls_are_called_when_the_setting_allows_them(tmp_path, clock, server, resolver):
    resolver["app.vpc.internal"] = ["127.0.0.1"]
    run = run_once(tmp_path, clock, CLOUD.model_copy(update={"allow_private_app_urls": True}),
                   server.url("app.vpc.internal"))

    assert run.status == RunStatus.COMPLETED and run.output == {"done": True}
    [(method, path, headers, _)] = server.seen
    assert method == "POST" and path.startswith("/api/inngest?fnId=ssrf-app-go")
    assert headers["Accept-Encoding"] == "identity"


def test_each_connection_is_judged_on_what_its_name_resolves_to_then(resolver, monkeypatch, server):
    # DNS rebinding: the name is public at the first lookup and loopback at the second. The first
    # connection goes (here to nowhere: no network), the second is refused before connecting.
    lookups = iter([["93.184.216.34"], ["127.0.0.1"]])
    resolver["rebind.example.com"] = lambda: next(lookups)
    connected: list[Any] = []
    real_connect = socket.socket.connect

    def connect(sock, address):
        connected.append(address[0])
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError("no network in this test")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    caller = PooledHttpCaller(policy=AddressPolicy())
    with pytest.raises(CallFailed, match="no network"):
        caller.post(server.url("rebind.example.com"), b"{}", {}, 5)
    with pytest.raises(CallFailed, match="127.0.0.1 is a loopback address"):
        caller.post(server.url("rebind.example.com"), b"{}", {}, 5)

    assert connected == ["93.184.216.34"]
    assert server.seen == []


def test_a_name_with_several_addresses_is_refused_if_all_are_internal(resolver, server):
    resolver["multi.example.com"] = ["10.0.0.7", "169.254.169.254", "::1"]
    manager = pool_manager(AddressPolicy())
    with pytest.raises(AddressRefused) as refused:
        manager.request("GET", server.url("multi.example.com"), retries=False)
    text = str(refused.value)
    assert "10.0.0.7 is a private address" in text and "cloud metadata" in text and "::1 is a loopback" in text


def test_redirects_are_not_followed_and_encoded_or_oversized_answers_are_refused(resolver):
    target = Server()
    redirecting = Server(lambda h: (307, {"Location": target.url()}, b""))
    gzipped = Server(lambda h: (200, {"Content-Encoding": "gzip"}, gzip.compress(b'{"a":' + b"1" * 10_000 + b"}")))
    big = Server(lambda h: (200, {}, b"x" * 5000))
    try:
        caller = PooledHttpCaller(policy=AddressPolicy(allow_private=True), max_response_bytes=4096)
        assert caller.post(redirecting.url(), b"{}", {}, 5).status == 307
        with pytest.raises(CallFailed, match="encoded as 'gzip'; calls ask for identity"):
            caller.post(gzipped.url(), b"{}", {}, 5)
        with pytest.raises(CallFailed, match="larger than 4096 bytes"):
            caller.post(big.url(), b"{}", {}, 5)
        assert target.seen == []
        assert all(s[2]["Accept-Encoding"] == "identity" for s in redirecting.seen + gzipped.seen + big.seen)
    finally:
        for s in (target, redirecting, gzipped, big):
            s.stop()


# -- app sync --------------------------------------------------------------------------------------


def test_sync_refuses_internal_addresses_and_follows_no_redirect(server, resolver):
    resolver["sync.example.com"] = ["169.254.169.254"]
    metadata = sync_app("http://sync.example.com/api/inngest", CLOUD, attempts=1, interval_s=0)
    assert not metadata.ok and "169.254.169.254 is the cloud metadata service" in metadata.said
    loopback = sync_app(server.url(), CLOUD, attempts=1, interval_s=0)  # not allowed by default
    assert not loopback.ok and "127.0.0.1 is a loopback address" in loopback.said
    assert server.seen == []

    redirecting = Server(lambda h: (302, {"Location": server.url()}, b""))
    try:
        allowed = CLOUD.model_copy(update={"allow_private_app_urls": True})
        answer = sync_app(redirecting.url(), allowed, attempts=1, interval_s=0)
        assert (answer.ok, answer.status) == (False, 302)
        [(method, _, headers, _)] = redirecting.seen
        # The PUT is signed: an SDK that refuses unsigned syncs takes it.
        assert method == "PUT" and headers["X-Inngest-Signature"].startswith("t=")
        assert server.seen == []
    finally:
        redirecting.stop()


@pytest.mark.parametrize("url, fragment", [
    ("http://127.0.0.1:9/api/inngest", "127.0.0.1 is a loopback address"),
    ("http://localhost:9/api/inngest", "127.0.0.1 is a loopback address"),
    ("http://[::1]:9/api/inngest", "::1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata service"),
    ("http://10.0.0.8/api/inngest", "10.0.0.8 is a private address"),
])
def test_a_register_naming_an_internal_address_is_refused(tmp_path, clock, url, fragment):
    with local_backend(str(tmp_path / "reg.db"), clock) as backend:
        engine = Engine(backend, CLOUD, clock=clock)
        with pytest.raises(SyncRefused) as refused:
            engine.registry.register(parse_register(app_body(url)))
        assert refused.value.status == 400 and fragment in refused.value.message
        assert backend.store.get_app("ssrf-app") is None


def test_a_step_url_off_the_apps_origin_is_refused(tmp_path, clock):
    body = app_body("https://app.example.com/api/inngest", "https://elsewhere.example.com/api/inngest?fnId=x&stepId=step")
    with local_backend(str(tmp_path / "reg.db"), clock) as backend:
        engine = Engine(backend, CLOUD, clock=clock)
        with pytest.raises(SyncRefused, match="is not on the app's origin https://app.example.com"):
            engine.registry.register(parse_register(body))


# -- secrets in app URLs ---------------------------------------------------------------------------

SECRET = "tok-8d1f0c2b9e"


def test_a_secret_in_an_app_url_is_in_no_log_and_no_run_error(tmp_path, clock, caplog, resolver):
    resolver["secret.example.com"] = ["127.0.0.1"]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: every call fails
    url = f"http://secret.example.com:{port}/api/inngest?token={SECRET}"
    settings = CLOUD.model_copy(update={"allow_private_app_urls": True})
    with caplog.at_level(logging.DEBUG):
        run = run_once(tmp_path, clock, settings, url)
        assert not sync_app(url, settings, attempts=2, interval_s=0).ok

    assert run.status == RunStatus.FAILED and "calling http://secret.example.com" in run.error["message"]
    assert "token=***" in run.error["message"]
    assert SECRET not in json.dumps(run.error)
    assert SECRET not in caplog.text and "token=***" in caplog.text


def test_redacted_urls_keep_what_says_which_call_it_was():
    url = "https://user:pw@app.example.com:8443/api/inngest?fnId=a-b&stepId=step&token=s3&sig=x#frag"
    assert redact_url(url) == "https://app.example.com:8443/api/inngest?fnId=a-b&stepId=step&token=***&sig=***"
