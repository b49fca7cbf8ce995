"""Checkpointed execution with Stepline's own SDK, end to end on SQLite and on the AWS adapters
(moto): the app (tests/e2e/own_app.py) in its own process, on Werkzeug (WSGI) and uvicorn (ASGI)
streaming each step on the call's own connection, and on a WSGI server that cannot stream (as
on AWS Lambda), checkpointing through POST /v1/checkpoint instead.

The app appends every step body it runs to a file, so counts survive killing it; the
executor's call log says how many calls a run took."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from stepline.engine.sync import sync_app
from stepline.settings import Settings
from tests.e2e.call_log import CallLog
from tests.e2e.conftest import SdkApp, Stepline, free_port, http, start_runtime, wait_for

APP_SCRIPT = Path(__file__).parent / "own_app.py"
APP_ID = "own-e2e"
STACKS = [("sqlite", "wsgi"), ("moto", "wsgi"), ("sqlite", "asgi"), ("moto", "buffered"), ("sqlite", "buffered")]


class OwnApp(SdkApp):
    def __init__(self, stepline_url: str, server: str, tmp: Path, port: int | None = None) -> None:
        self.counter_file = tmp / "counts"
        (tmp / "crashes").mkdir(exist_ok=True)
        env = {"COUNTER_FILE": str(self.counter_file), "CRASH_DIR": str(tmp / "crashes")}
        self.server = server
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.proc = subprocess.Popen(
            [sys.executable, str(APP_SCRIPT), "--port", str(self.port), "--server", server],
            env={**os.environ, "INNGEST_DEV": stepline_url, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, what="the app to listen")

    def count(self, fn: str, step: str, key: str) -> int:
        if not self.counter_file.exists():
            return 0
        return Counter(self.counter_file.read_text().splitlines())[f"{fn}/{step}/{key}"]


@dataclass
class OwnStack:
    backend: str
    server: str
    stepline: Stepline
    app: OwnApp
    calls: CallLog
    tmp: Path

    def memos(self, run_id: str) -> list:
        state = self.stepline.runtime.backend.store.load_run(run_id)
        return sorted(state.memos, key=lambda m: m.seq)

    def checkpointed(self, run_id: str) -> int:
        return sum(1 for m in self.memos(run_id) if m.detail.get("checkpointed"))


@pytest.fixture(scope="module", params=STACKS, ids=[f"{b}-{s}" for b, s in STACKS])
def own(request, tmp_path_factory):
    backend, server = request.param
    tmp = tmp_path_factory.mktemp(f"own-{backend}-{server}")
    calls = CallLog()
    # A short call budget, so that a run of slow steps spans several calls (and long enough for
    # a chain checkpointed through the API, one HTTP request per step).
    settings = Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000, checkpoint_call_budget_s=4.0)
    runtime = start_runtime(backend, tmp, [], settings=settings, caller=calls)
    app = stack = None
    try:
        app = OwnApp(runtime.url, server, tmp)
        assert sync_app(app.url, runtime.settings, attempts=20, interval_s=0.25).ok
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
        stack = OwnStack(backend, server, Stepline(runtime), app, calls, tmp)
        yield stack
    finally:
        # A test that restarts the app puts its new process on the stack: stop that one too.
        for running in (app, stack.app if stack is not None else None):
            if running is not None:
                running.stop()
        runtime.stop()


def key() -> str:
    return uuid.uuid4().hex[:12]


@pytest.mark.parametrize("fn", ["chain", "chain-async"])
def test_a_long_chain_runs_in_one_call(own, fn):
    k = key()
    event = "own/chain" if fn == "chain" else "own/chain.async"
    [event_id] = own.stepline.send({"name": event, "data": {"key": k, "steps": 40}})
    [run] = own.stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed" and run["output"] == {"total": sum(range(1, 41))}, run
    assert [own.app.count(fn, f"s{i}", k) for i in range(1, 41)] == [1] * 40
    calls = own.calls.for_run(run["run_id"])
    assert len(calls) == 1, calls
    assert calls[0].streamed == (own.server != "buffered")
    assert own.checkpointed(run["run_id"]) == 40
    assert [m.value for m in own.memos(run["run_id"])] == [{"data": i} for i in range(1, 41)]


def test_with_checkpointing_off_every_step_is_a_call_of_its_own(own):
    k = key()
    [event_id] = own.stepline.send({"name": "own/chain.plain", "data": {"key": k, "steps": 5}})
    [run] = own.stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed" and run["output"] == {"total": 15}, run
    assert [own.app.count("chain-plain", f"s{i}", k) for i in range(1, 6)] == [1] * 5
    assert len(own.calls.for_run(run["run_id"])) == 6
    assert own.checkpointed(run["run_id"]) == 0


def test_a_call_ends_at_its_time_budget_and_the_next_resumes(own):
    """The stack's calls may run 4 s; 12 steps of 500 ms take more than one call, each step once."""
    k = key()
    [event_id] = own.stepline.send({"name": "own/chain", "data": {"key": k, "steps": 12, "step_ms": 500}})
    [run] = own.stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed" and run["output"] == {"total": 78}, run
    assert [own.app.count("chain", f"s{i}", k) for i in range(1, 13)] == [1] * 12
    assert 2 <= len(own.calls.for_run(run["run_id"])) <= 8


def test_parallel_sleep_and_a_failing_step_end_calls(own):
    k = key()
    [event_id] = own.stepline.send({"name": "own/mixed", "data": {"key": k}})
    [run] = own.stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed", run
    assert run["output"] == {"steps": ["a", "b", "p1", "p2", "c", "d", "flaky", "e"]}
    assert [own.app.count("mixed", n, k) for n in ("a", "b", "p1", "p2", "c", "d", "e")] == [1] * 7
    assert own.app.count("mixed", "flaky", k) == 3  # two failures, then success: retried as ever
    memos = {m.name: m for m in own.memos(run["run_id"])}
    assert {n for n, m in memos.items() if m.detail.get("checkpointed")} == {"a", "b", "c", "d", "e"}
    assert memos["flaky"].detail["attempt"] == 2


def test_an_output_over_the_limit_fails_its_step_as_before(own):
    k = key()
    [event_id] = own.stepline.send({"name": "own/big", "data": {"key": k}})
    [run] = own.stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["output"] == {"first": "small", "huge_failed_with": "OutputTooLarge", "last": "after"}, run
    assert [own.app.count("big", n, k) for n in ("small", "huge", "after")] == [1, 1, 1]


def test_a_cancelled_run_stops_mid_call(own):
    k = key()
    [event_id] = own.stepline.send({"name": "own/chain", "data": {"key": k, "steps": 200, "step_ms": 100}})
    run_id = wait_for(lambda: (own.stepline.runs(event_id) or [{}])[0].get("run_id"), what="the run")
    wait_for(lambda: own.app.count("chain", "s3", k) == 1, timeout_s=30, what="three steps")
    code, _ = http("DELETE", f"{own.stepline.url}/v1/runs/{run_id}")
    assert code == 200
    time.sleep(2.5)  # the call notices within a second and stops; the app at its next step
    ran = sum(own.app.count("chain", f"s{i}", k) for i in range(1, 201))
    time.sleep(1.0)
    assert sum(own.app.count("chain", f"s{i}", k) for i in range(1, 201)) == ran < 60
    assert own.stepline.runs(event_id)[0]["status"] == "Cancelled"


def test_the_app_killed_after_k_steps_resumes_at_k_plus_one(own):
    """The process dies inside step 6 of 10: steps 1-5 were stored as they finished and never
    run again; step 6, the one in flight, runs once more; the restarted process finishes."""
    k = key()
    [event_id] = own.stepline.send({"name": "own/chain", "data": {"key": k, "steps": 10, "crash_at": 6}})
    wait_for(lambda: own.app.proc.poll() is not None, timeout_s=30, what="the app to crash")
    own.app = OwnApp(own.stepline.url, own.server, own.tmp, port=own.app.port)
    [run] = own.stepline.wait_runs_done(event_id, timeout_s=60)
    assert run["status"] == "Completed" and run["output"] == {"total": 55}, run
    assert [own.app.count("chain", f"s{i}", k) for i in range(1, 11)] == [1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert [m.step_id for m in own.memos(run["run_id"])][:5] == [
        m.step_id for m in own.memos(run["run_id"]) if m.detail.get("checkpointed")
    ][:5]
