"""Security tests: a real runtime in cloud mode (configured event keys, signed calls, bearer
auth) on each backend, in this process, and `stepline start` as its own process (SQLite), with the
e2e app on the official Python SDK synced to it in its production mode, so every refusal is
checked end to end and the store is inspected afterwards.

Keys: the current signing key, the fallback key of a rotation in progress, and a revoked key
(the one the fallback replaced, configured nowhere any more).
"""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, SdkApp, Stepline, free_port, http, start_runtime, wait_for
from tests.e2e.started import StartedStepline
from tests.e2e.test_signed import RecordingCaller, cloud_env

SIGNING_KEY = "signkey-prod-" + "5e1f" * 16
FALLBACK_KEY = "signkey-prod-" + "a7c3" * 16
REVOKED_KEY = "signkey-prod-" + "0d9b" * 16
EVENT_KEY = "evt-security-key"
# A key that is valid in another environment (another stack), never configured here.
OTHER_ENV_EVENT_KEY = "evt-other-environment-key"

BEARER = f"Bearer {hash_signing_key(SIGNING_KEY)}"
# The operators' credential: the routes that steer runs (cancel, sync, ...) take it only.
OPERATOR_KEY = "0f1e2d3c" * 8
OPERATOR = f"Bearer {hash_signing_key(OPERATOR_KEY)}"


def unique(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


@dataclass
class Cloud:
    backend: str  # "sqlite" or "moto" in this process, or "start": `stepline start` in its own
    url: str
    store: Any
    stepline: Stepline
    app: SdkApp
    # The executor's calls, captured; None for `stepline start`, whose calls leave another process.
    recorder: RecordingCaller | None

    def authed(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.url}{path}", body, headers={"Authorization": BEARER})

    def operator(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, f"{self.url}{path}", body, headers={"Authorization": OPERATOR})

    def events_named(self, name: str) -> list[dict[str, Any]]:
        status, body = self.authed("GET", f"/v1/events?name={urllib.parse.quote(name, safe='')}")
        assert status == 200, body
        return body["data"]

    def run_of(self, event_id: str) -> dict[str, Any] | None:
        runs = self.stepline.runs(event_id)
        return runs[0] if runs else None

    def wait_status(self, event_id: str, status: str, timeout_s: float = 20.0) -> dict[str, Any]:
        def reached():
            run = self.run_of(event_id)
            return run if run and run["status"] == status else None

        return wait_for(reached, timeout_s, what=f"the run of {event_id} to be {status}")


def cloud_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mode": "cloud",
        "signing_key": SIGNING_KEY,
        "signing_key_fallback": FALLBACK_KEY,
        "event_keys": [EVENT_KEY],
        "retry_base_ms": 200,
        "retry_cap_ms": 1000,
        "allow_private_app_urls": True,  # the app runs on this machine
        "operator_key": OPERATOR_KEY,
    }
    return Settings(**{**values, **overrides})


def start_command(tmp, settings: Settings, args: list[str] | None = None, port: int | None = None) -> StartedStepline:
    """`stepline start` with ``settings`` (keys included) from its environment."""
    return StartedStepline(tmp / "stepline.db", args, env=settings.to_env(), port=port)


@pytest.fixture(scope="package", params=["sqlite", "moto", "start"])
def cloud(request, tmp_path_factory) -> Iterator[Cloud]:
    """A cloud-mode runtime on one backend, with the official-SDK app synced in production mode."""
    tmp = tmp_path_factory.mktemp(f"security-{request.param}")
    port, app_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}/api/inngest"
    recorder: RecordingCaller | None = None
    if request.param == "start":
        runtime: Any = start_command(tmp, cloud_settings(), ["-u", app_url], port=port)
        store = runtime.store
    else:
        recorder = RecordingCaller()
        runtime = start_runtime(request.param, tmp, [app_url], port=port, settings=cloud_settings(), caller=recorder)
        store = runtime.backend.store
    app = None
    try:
        app = SdkApp(runtime.url, port=app_port, extra_env=cloud_env(runtime.url, SIGNING_KEY, FALLBACK_KEY, EVENT_KEY))
        stepline = Stepline(runtime, event_key=EVENT_KEY, authorization=BEARER)
        wait_for(lambda: store.get_app(APP_ID), what="the app to sync in cloud mode")
        yield Cloud(request.param, runtime.url, store, stepline, app, recorder)
    finally:
        if app is not None:
            app.stop()
        runtime.stop()
