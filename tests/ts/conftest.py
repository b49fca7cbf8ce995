"""End-to-end harness for the TypeScript SDK: the same in-process `stepline dev` as tests/e2e,
and the Node app of tests/ts/app on the npm `inngest` SDK 3.x or 4.x.

One runtime and one app process serve every test of a (major, backend) pair. Scenarios that
spend their time waiting (sleeps, retry backoffs, timeouts) are all started as soon as the app is
synced, so their waits overlap instead of adding up; each test then checks its own scenario.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import pytest

from tests.e2e.call_log import CallLog
from tests.e2e.conftest import SdkApp, Stepline, free_port, start_runtime, wait_for
from tests.ts.node import APP_ID, TsApp, install_before_tests, ts_packages  # noqa: F401 (fixture)

STACKS = [(3, "sqlite"), (3, "moto"), (4, "sqlite"), (4, "moto")]

# name -> the event that starts the scenario ("key" is filled in per scenario).
EARLY = {
    "sleep": {"name": "test/sleep", "data": {"seconds": 2}},
    "flaky": {"name": "test/flaky", "data": {"failures": 2}},
    "doomed": {"name": "test/doomed", "data": {}},
    "wait-timeout": {"name": "test/approval.requested", "data": {"timeout_s": 2}},
    "parallel": {"name": "test/parallel", "data": {"branch_ms": 600}},
    "caught": {"name": "test/careful", "data": {}},
    "rethrown": {"name": "test/careful", "data": {"rethrow": True}},
    "invoke-timeout": {"name": "test/parent", "data": {"linger_s": 30, "timeout_s": 2}},
    "patient": {"name": "test/patient", "data": {}},
}


@dataclass
class Started:
    key: str
    event_id: str
    at: float  # time.monotonic() when the event was sent


@dataclass
class TsStack:
    major: int
    backend: str
    stepline: Stepline
    app: SdkApp
    early: dict[str, Started] = field(default_factory=dict)
    calls: CallLog = field(default_factory=CallLog)  # every call the executor made to an app


def key() -> str:
    return uuid.uuid4().hex[:12]


def pytest_collection_finish(session):
    install_before_tests(session)


@pytest.fixture(scope="module", params=STACKS, ids=[f"v{m}-{b}" for m, b in STACKS])
def ts_stack(request, ts_packages, tmp_path_factory):
    major, backend = request.param
    tmp = tmp_path_factory.mktemp(f"ts{major}-{backend}")
    port, app_port = free_port(), free_port()
    calls = CallLog()
    runtime = start_runtime(backend, tmp, [f"http://127.0.0.1:{app_port}/api/inngest"], port=port, caller=calls)
    app = None
    try:
        app = TsApp(major, runtime.url, port=app_port, log_dir=tmp)
        try:
            wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the TS app to sync")
        except AssertionError as err:
            raise AssertionError(f"{err}\n{app.log_tail()}") from None
        stack = TsStack(major, backend, Stepline(runtime), app, calls=calls)
        for name, event in EARLY.items():
            k, at = key(), time.monotonic()
            [event_id] = stack.stepline.send({"name": event["name"], "data": {**event["data"], "key": k}})
            stack.early[name] = Started(k, event_id, at)
        yield stack
    finally:
        if app is not None:
            app.stop()
        runtime.stop()
