"""Sync cannot be hijacked. An SDK that takes an unsigned sync request registers the URL its
`Host` and `X-Forwarded-*` headers name, so anyone who can reach an app could point Stepline at
an origin of their own, and receive every call (events, step results) from then on.

* Stepline's SDK refuses an unsigned sync outside dev mode (unless told otherwise), registers the
  serve origin when one is configured, and takes the signed sync Stepline sends.
* The server refuses a sync that moves an existing app to another origin, unless forced (a move
  token only the signing key makes, sent by `POST /v1/apps/sync` with `"force": true`) or the
  origin is in `allowed_app_origins`; and refuses function ids another app has registered.

Real parts: a cloud-mode `stepline dev` on SQLite, apps on Stepline's SDK served over HTTP from
this process, and the official Python SDK app of the package's `cloud` fixture."""

from __future__ import annotations

import http.client as httplib
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import make_server

import pytest

from stepline import Client, Context
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.protocol.signing import hash_signing_key, sign
from stepline.sdk.serve.wsgi import serve_wsgi
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, free_port, http
from tests.sdk.harness import AppServer, _QuietHandler, _ThreadingServer
from tests.security.conftest import BEARER

KEY = "signkey-prod-" + "3c9d" * 16
APP_AUTH = {"Authorization": f"Bearer {hash_signing_key(KEY)}"}  # what an app holding the key sends
OPERATOR_KEY = "5b4a3928" * 8
AUTH = {"Authorization": f"Bearer {hash_signing_key(OPERATOR_KEY)}"}  # POST /v1/apps/sync: operators
APP = "hijack-app"


def start_runtime(tmp_path, **overrides: Any) -> DevRuntime:
    settings = Settings(mode="cloud", signing_key=KEY, event_keys=["evt"], operator_key=OPERATOR_KEY,
                        allow_private_app_urls=True, **overrides)
    return DevRuntime(DevOptions(port=0, db_path=str(tmp_path / f"sync-{time.monotonic_ns()}.db")), settings).start()


class App(AppServer):
    """An app on Stepline's SDK in cloud mode, served on ``port`` (any free one when 0)."""

    def __init__(self, runtime_url: str, port: int = 0, app_id: str = APP, **client: Any) -> None:
        sdk = Client(app_id, dev=False, signing_key=KEY, base_url=runtime_url, **client)

        @sdk.function("fn", trigger="hijack/go")
        def fn(ctx: Context) -> str:
            return "ran"

        self.server = make_server("127.0.0.1", port, serve_wsgi(sdk), server_class=_ThreadingServer,
                                  handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/inngest"
        self.thread = threading.Thread(target=self.server.serve_forever, name="hijack-app", daemon=True)
        self.thread.start()


def start_app(runtime_url: str, **kwargs: Any) -> App:
    return App(runtime_url, **kwargs)


@pytest.fixture
def stack(tmp_path) -> Iterator[tuple[DevRuntime, App]]:
    runtime = start_runtime(tmp_path)
    app = start_app(runtime.url)
    yield runtime, app
    app.stop()
    runtime.stop()


def put(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A raw PUT, with the headers exactly as given (a forged Host included)."""
    parts = urlsplit(url)
    conn = httplib.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("PUT", parts.path + (f"?{parts.query}" if parts.query else ""), skip_host=True)
        for name, value in {"Content-Length": "0", **headers}.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


FORGED = {"Host": "attacker.example.com", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "attacker.example.com"}


def signed() -> dict[str, str]:
    return {"X-Inngest-Signature": sign(b"", KEY, int(time.time()))}


def registered_url(runtime: DevRuntime, app_id: str = APP) -> str | None:
    app = runtime.backend.store.get_app(app_id)
    return app.url if app else None


# -- our SDK -----------------------------------------------------------------------------------------


def test_an_unsigned_sync_naming_another_host_is_refused_by_our_sdk(stack):
    runtime, app = stack
    status, body = put(app.url, FORGED)
    assert status == 401 and b"Unauthorized" in body
    assert registered_url(runtime) is None


def test_the_sync_stepline_sends_is_signed_and_registers_the_app(stack):
    runtime, app = stack
    code, body = http("POST", f"{runtime.url}/v1/apps/sync", {"url": app.url}, headers=AUTH)
    assert code == 200, body
    assert registered_url(runtime) == app.url


def test_the_configured_serve_origin_is_registered_whatever_the_request_says(tmp_path):
    runtime = start_runtime(tmp_path)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    app = start_app(runtime.url, port=port, serve_origin=origin)
    try:
        status, _ = put(app.url, {**FORGED, **signed()})
        assert status == 200
        assert registered_url(runtime) == f"{origin}/api/inngest"
    finally:
        app.stop()
        runtime.stop()


def test_unsigned_syncs_are_taken_only_when_asked_for_and_then_the_serve_origin_still_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("INNGEST_ENABLE_UNAUTHED_SYNC", "true")
    runtime = start_runtime(tmp_path)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    app = start_app(runtime.url, port=port, serve_origin=origin)
    try:
        status, _ = put(app.url, FORGED)
        assert status == 200
        assert registered_url(runtime) == f"{origin}/api/inngest"
    finally:
        app.stop()
        runtime.stop()


# -- the server ----------------------------------------------------------------------------------


def test_a_sync_that_moves_an_app_is_refused_unless_forced(stack):
    runtime, first = stack
    assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": first.url}, headers=AUTH)[0] == 200
    second = start_app(runtime.url)  # the same app id, at another origin
    try:
        # Asked directly (signed), the app registers its new URL: the server refuses the move.
        status, body = put(second.url, signed())
        assert status == 409 and b"a sync may not move it to" in body, body
        assert registered_url(runtime) == first.url

        code, body = http("POST", f"{runtime.url}/v1/apps/sync", {"url": second.url}, headers=AUTH)
        assert code == 502 and "answered the sync request (PUT) with 409" in body["error"], body
        assert "a sync may not move it to" in body["error"]
        assert registered_url(runtime) == first.url

        code, body = http("POST", f"{runtime.url}/v1/apps/sync", {"url": second.url, "force": True}, headers=AUTH)
        assert code == 200, body
        assert registered_url(runtime) == second.url
    finally:
        second.stop()


def test_a_move_token_is_bound_to_the_origin_it_was_made_for(stack):
    runtime, first = stack
    assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": first.url}, headers=AUTH)[0] == 200
    second = start_app(runtime.url)
    try:
        from stepline.engine.sync_guard import move_token, origin

        other = move_token(KEY, "http://127.0.0.1:1", int(time.time()))
        stale = move_token(KEY, origin(second.url), int(time.time()) - 3600)
        forged = move_token("signkey-prod-" + "00" * 32, origin(second.url), int(time.time()))
        for token in (other, stale, forged):
            status, _ = put(f"{second.url}?deployId={token}", signed())
            assert status == 409
        assert registered_url(runtime) == first.url
    finally:
        second.stop()


def test_an_allowed_origin_takes_the_app_without_force(tmp_path):
    port = free_port()
    runtime = start_runtime(tmp_path, allowed_app_origins=[f"http://127.0.0.1:{port}"])
    first = start_app(runtime.url)
    moved = None
    try:
        assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": first.url}, headers=AUTH)[0] == 200
        moved = start_app(runtime.url, port=port)
        code, body = http("POST", f"{runtime.url}/v1/apps/sync", {"url": moved.url}, headers=AUTH)
        assert code == 200, body
        assert registered_url(runtime) == moved.url
    finally:
        if moved is not None:
            moved.stop()
        first.stop()
        runtime.stop()


def register(runtime_url: str, app_id: str, fn_id: str, url: str, headers: dict[str, str]) -> tuple[int, Any]:
    body = {"url": url, "appName": app_id, "deployType": "ping", "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
            "functions": [{"id": fn_id, "name": "f", "triggers": [{"event": f"{app_id}/never"}],
                           "steps": {"step": {"id": "step", "name": "step",
                                              "runtime": {"type": "http", "url": f"{url}?fnId={fn_id}&stepId=step"}}}}]}
    return http("POST", f"{runtime_url}/fn/register", body, headers=headers)


def test_a_sync_cannot_claim_another_apps_function(stack):
    runtime, app = stack
    assert http("POST", f"{runtime.url}/v1/apps/sync", {"url": app.url}, headers=AUTH)[0] == 200
    code, body = register(runtime.url, "hijack", "hijack-app-fn", "http://127.0.0.1:9/api/inngest", APP_AUTH)
    assert code == 409 and body["status"] == 409, body
    assert "functions[0].id: 'hijack-app-fn' belongs to app 'hijack-app'" in body["error"]
    assert runtime.backend.store.get_function("hijack-app-fn").app_id == APP
    assert runtime.backend.store.get_app("hijack") is None


def test_the_official_sdk_app_cannot_be_moved_by_a_register_from_elsewhere(cloud):
    before = cloud.store.get_app(APP_ID)
    code, body = register(cloud.url, APP_ID, f"{APP_ID}-multi-step", "http://127.0.0.1:9/api/inngest",
                          {"Authorization": BEARER})
    assert code == 409 and "a sync may not move it to http://127.0.0.1:9" in body["error"], body
    after = cloud.store.get_app(APP_ID)
    assert (after.url, after.synced_at) == (before.url, before.synced_at)
