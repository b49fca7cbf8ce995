"""End-to-end harness for apps on our SDK: a real `stepline dev` runtime (in-process, SQLite,
driven by a manual clock) and the app served over real HTTP from a thread of this process, so
tests can look straight into the app's fake services."""

from __future__ import annotations

import json
import os
import socketserver
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import ManualClock
from stepline.settings import Settings

TERMINAL = ("Completed", "Failed", "Cancelled")


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    # A checkpoint stream writes one small line per step: each must leave at once.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass


class AppServer:
    """A WSGI app on a free loopback port."""

    def __init__(self, wsgi_app: Any, path: str = "/api/inngest") -> None:
        self.server = make_server("127.0.0.1", 0, wsgi_app, server_class=_ThreadingServer,
                                  handler_class=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{path}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="sdk-app", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else (b"" if method == "PUT" else None)
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return resp.status, json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        text = err.read()
        try:
            return err.code, json.loads(text)
        except ValueError:
            return err.code, text.decode(errors="replace")


def wait_for(predicate, timeout_s: float = 15.0, what: str = "condition", interval_s: float = 0.02):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class Stack:
    """A dev runtime on a manual clock with one app synced to it.

    The app's client finds the runtime through INNGEST_DEV, exactly as a user's app would; the
    variable is set for the life of the stack and restored afterwards.
    """

    def __init__(self, wsgi_app: Any, tmp: Path, app_id: str, clock: ManualClock | None = None,
                 settings: Settings | None = None, caller: Any = None, backend: str = "sqlite", telemetry: Any = None) -> None:
        self.clock = clock or ManualClock()
        settings = settings or Settings(mode="dev", retry_base_ms=1_000, retry_cap_ms=10_000)
        # One worker: runs progress one call at a time, so no executor ever waits on another's
        # lease (a wait the manual clock would never end).
        options = DevOptions(port=0, db_path=str(tmp / "dev.db"), workers=1, backend=backend)
        self.runtime = DevRuntime(options, settings, clock=self.clock, caller=caller, telemetry=telemetry).start()
        self.url = self.runtime.url
        self._saved_env = os.environ.get("INNGEST_DEV")
        os.environ["INNGEST_DEV"] = self.url
        self.app = AppServer(wsgi_app)
        status, body = http("PUT", self.app.url)
        assert status == 200, body
        wait_for(lambda: self.runtime.backend.store.get_app(app_id), what=f"app {app_id} to sync")

    def close(self) -> None:
        self.app.stop()
        self.runtime.stop()
        if self._saved_env is None:
            os.environ.pop("INNGEST_DEV", None)
        else:
            os.environ["INNGEST_DEV"] = self._saved_env

    # -- events and runs ---------------------------------------------------------------------
    def send(self, *events: dict[str, Any]) -> list[str]:
        status, body = http("POST", f"{self.url}/e/test-key", list(events))
        assert status == 200, body
        return body["ids"]

    def runs(self, event_id: str) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/v1/events/{event_id}/runs")
        assert status == 200, body
        return body["data"]

    def events(self, name: str) -> list[dict[str, Any]]:
        status, body = http("GET", f"{self.url}/v1/events?name={name}&limit=100")
        assert status == 200, body
        return body["data"]

    def wait_run(self, event_id: str, *, status: str | None = None, timeout_s: float = 15.0,
                 nudge_ms: int = 0) -> dict[str, Any]:
        """The event's (single) run once it ended. ``nudge_ms`` moves the clock on by that much
        on every poll, for runs that wait on a timer (a retry backoff)."""

        def done() -> dict[str, Any] | None:
            runs = self.runs(event_id)
            if runs and runs[0]["status"] in TERMINAL:
                return runs[0]
            if nudge_ms:
                self.clock.advance(nudge_ms)
            return None

        run = wait_for(done, timeout_s, what=f"the run of event {event_id}", interval_s=0.05)
        if status is not None:
            assert run["status"] == status, run
        return run

    def wait_runs(self, event_id: str, count: int, timeout_s: float = 15.0) -> list[dict[str, Any]]:
        def done():
            runs = self.runs(event_id)
            if len(runs) >= count and all(r["status"] in TERMINAL for r in runs):
                return runs
            return None

        return wait_for(done, timeout_s, what=f"{count} runs of event {event_id}")

    def running(self, event_id: str) -> dict[str, Any]:
        runs = self.runs(event_id)
        assert len(runs) == 1 and runs[0]["status"] == "Running", runs
        return runs[0]

    def settle(self, seconds: float = 0.3) -> None:
        """Let the workers drain what is due now (nothing is due until the clock moves)."""
        time.sleep(seconds)
