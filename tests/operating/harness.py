"""A live `stepline dev` (in-process, real HTTP) with the operating tests' SDK app synced to it,
shared by the REST API, CLI and dashboard tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from stepline.dev.runtime import DevRuntime
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http, start_runtime, wait_for

APP_SCRIPT = Path(__file__).parent / "ops_app.py"
APP_ID = "ops-app"
TERMINAL = ("Completed", "Failed", "Cancelled")


def key() -> str:
    return uuid.uuid4().hex[:10]


class OpsApp:
    """tests/operating/ops_app.py (official SDK, Flask) in a subprocess, pointed at Stepline."""

    def __init__(self, stepline_url: str, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/api/inngest"
        env = {**os.environ, "INNGEST_DEV": stepline_url}
        self.proc = subprocess.Popen(
            [sys.executable, str(APP_SCRIPT), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, what="the ops app to listen")

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def count(self, fn: str, step: str, k: str) -> int:
        return http("GET", f"http://127.0.0.1:{self.port}/counters")[1].get(f"{fn}/{step}/{k}", 0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Ops:
    """The runtime and the app, plus REST helpers."""

    def __init__(self, runtime: DevRuntime, app: OpsApp) -> None:
        self.runtime = runtime
        self.app = app
        self.url = runtime.url

    def get(self, path: str) -> Any:
        status, body = http("GET", f"{self.url}{path}")
        assert status == 200, (path, status, body)
        return body

    def send(self, name: str, data: dict[str, Any]) -> str:
        status, body = http("POST", f"{self.url}/v1/events", {"name": name, "data": data})
        assert status == 200, body
        return body["ids"][0]

    def run_of(self, event_id: str, timeout_s: float = 20.0) -> dict[str, Any]:
        runs = wait_for(lambda: self.get(f"/v1/events/{event_id}/runs")["data"], timeout_s, what="a run to start")
        return runs[0]

    def run(self, run_id: str) -> dict[str, Any]:
        return self.get(f"/v1/runs/{run_id}")["data"]

    def wait_done(self, run_id: str, timeout_s: float = 30.0) -> dict[str, Any]:
        def done():
            run = self.run(run_id)
            return run if run["status"] in TERMINAL else None

        return wait_for(done, timeout_s, interval_s=0.1, what=f"run {run_id} to finish")

    def wait_step(self, run_id: str, name: str, status: str, timeout_s: float = 20.0) -> dict[str, Any]:
        def reached():
            steps = [s for s in self.run(run_id)["steps"] if s["name"] == name and s["status"] == status]
            return steps[0] if steps else None

        return wait_for(reached, timeout_s, interval_s=0.1, what=f"step {name} of {run_id} to be {status}")


def start_ops(tmp: Path, backend: str = "sqlite") -> Ops:
    app_port = free_port()
    app_url = f"http://127.0.0.1:{app_port}/api/inngest"
    # Short retry backoff: the pipeline's flaky step retries in a fraction of a second.
    settings = Settings(mode="dev", retry_base_ms=100, retry_cap_ms=300)
    runtime = start_runtime(backend, tmp, [app_url], settings=settings)
    app = OpsApp(runtime.url, app_port)
    try:
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the ops app to sync")
    except BaseException:
        app.stop()
        runtime.stop()
        raise
    return Ops(runtime, app)


def stop_ops(ops: Ops) -> None:
    ops.app.stop()
    ops.runtime.stop()
