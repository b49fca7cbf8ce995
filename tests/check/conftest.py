"""Fixtures for `stepline check`: the official-SDK app in its own process, a `stepline dev`
runtime in this one, and helpers to serve an app from a thread and to read reports."""

from __future__ import annotations

import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from stepline.check import CheckReport, Status
from stepline.check.registry import run_checks
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).parent / "apps"
OFFICIAL_APP = APPS / "official_app.py"
CHECK_IDS = ["serve-handler", "functions-served", "step-names", "wait-timeout", "concurrency", "typed-events",
             "unique-ids", "sleep-durations", "retries", "payment-idempotency"]
SOURCE_CHECKS = ["step-names", "wait-timeout", "typed-events", "sleep-durations"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def reports(view) -> dict[str, CheckReport]:
    out = {r.id: r for r in run_checks(view)}
    assert list(out) == CHECK_IDS
    return out


def result_for(report: CheckReport, function: str) -> Any:
    found = [r for r in report.results if r.function == function]
    assert len(found) == 1, (function, report.results)
    return found[0]


def statuses(report: CheckReport) -> dict[str | None, Status]:
    return {r.function: r.status for r in report.results}


class OfficialApp:
    """tests/check/apps/official_app.py (official `inngest` SDK) in a subprocess, registering with
    127.0.0.1:<register_port>, where the test or the checker listens."""

    def __init__(self) -> None:
        self.register_port = free_port()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        env = {**os.environ, "INNGEST_DEV": f"http://127.0.0.1:{self.register_port}"}
        self.proc = subprocess.Popen([sys.executable, str(OFFICIAL_APP), "--port", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._up, what="the official-SDK app to listen")

    def _up(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=1) as resp:
                return resp.status == 200
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError("the official-SDK app exited") from None
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="session")
def official_app():
    app = OfficialApp()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture(scope="module")
def dev_runtime(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check-dev")
    runtime = DevRuntime(DevOptions(port=0, db_path=str(tmp / "dev.db"), workers=1), Settings(mode="dev")).start()
    try:
        yield runtime
    finally:
        runtime.stop()


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class AppServer:
    """A WSGI app on a free loopback port, served from a thread of this process."""

    def __init__(self, wsgi_app: Any, path: str) -> None:
        self.server = make_server("127.0.0.1", 0, wsgi_app, server_class=_ThreadingServer,
                                  handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        # A short poll, so that stopping is quick.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    """Serve WSGI apps from this process on free ports: ``serve(app) -> url``."""
    servers: list[AppServer] = []

    def start(wsgi_app: Any, path: str = "/api/inngest") -> str:
        server = AppServer(wsgi_app, path)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()
