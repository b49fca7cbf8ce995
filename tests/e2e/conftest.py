"""End-to-end harness: a real `stepline dev` runtime (in-process, real HTTP, real SQLite or the
AWS adapters on moto) and a real app on the official Python SDK in its own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.http import HttpCaller
from stepline.settings import Settings

APP_SCRIPT = Path(__file__).parent / "sdk_app.py"
APP_ID = "e2e-app"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: Any = None, raw: bytes | None = None, headers: dict | None = None) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            if resp.headers.get_content_type() == "text/plain":  # GET /metrics
                return resp.status, text.decode()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, text.decode(errors="replace")


def wait_for(predicate, timeout_s: float = 20.0, interval_s: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class SdkApp:
    """The official-SDK app in a subprocess, pointed at a Stepline URL through INNGEST_DEV."""

    def __init__(self, stepline_url: str, port: int | None = None, extra_env: dict | None = None,
                 script: Path = APP_SCRIPT) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        env = {**os.environ, "INNGEST_DEV": stepline_url, **(extra_env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, what="the SDK app to listen")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def counters(self) -> dict[str, int]:
        return http("GET", f"http://127.0.0.1:{self.port}/counters")[1]

    def count(self, fn: str, step: str, key: str) -> int:
        return self.counters().get(f"{fn}/{step}/{key}", 0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Stepline:
    """A running `stepline dev` plus helpers to send events and wait for runs.

    In cloud mode, pass a configured ``event_key`` and an ``authorization`` header value
    (``Bearer <hashed signing key>``): the Event API and the REST API refuse anything else.
    """

    def __init__(self, runtime: DevRuntime, event_key: str = "test-key", authorization: str | None = None) -> None:
        self.runtime = runtime
        self.url = runtime.url
        self.event_key = event_key
        self.auth_headers = {"Authorization": authorization} if authorization else {}

    def send(self, *events: dict[str, Any]) -> list[str]:
        status, body = http("POST", f"{self.url}/e/{self.event_key}", list(events))
        assert status == 200, body
        return body["ids"]

    def runs(self, event_id: str) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/v1/events/{event_id}/runs", headers=self.auth_headers)
        assert status == 200, body
        return body["data"]

    def wait_runs_done(self, event_id: str, count: int = 1, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        def done():
            runs = self.runs(event_id)
            if len(runs) >= count and all(r["status"] in ("Completed", "Failed", "Cancelled") for r in runs):
                return runs
            return None

        return wait_for(done, timeout_s, what=f"{count} finished run(s) of event {event_id}")


def start_runtime(
    backend: str,
    tmp_path: Path,
    app_urls: list[str],
    port: int | None = None,
    *,
    settings: Settings | None = None,
    caller: HttpCaller | None = None,
) -> DevRuntime:
    settings = settings or Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000)
    options = DevOptions(port=port or free_port(), db_path=str(tmp_path / "dev.db"), backend=backend, app_urls=app_urls)
    return DevRuntime(options, settings, caller=caller).start()


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def stack(request, tmp_path_factory):
    """A dev runtime on one backend with the SDK app synced to it."""
    tmp = tmp_path_factory.mktemp(f"stack-{request.param}")
    port = free_port()
    app_port = free_port()
    runtime = start_runtime(request.param, tmp, [f"http://127.0.0.1:{app_port}/api/inngest"], port=port)
    app = SdkApp(runtime.url, port=app_port)
    stepline = Stepline(runtime)
    wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
    try:
        yield stepline, app
    finally:
        app.stop()
        runtime.stop()


def pytest_collection_finish(session):
    # test_signed.py runs the TypeScript app too: install its npm packages before the first test
    # rather than inside one, where a clean clone's install would count against the test timeout.
    from tests.ts.node import install_before_tests

    install_before_tests(session)
