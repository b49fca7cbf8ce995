"""`Retry-After` is the time of the retry, with a manual clock: an app that answers "again in
1 s" is called again 1 s later, even though the backoff alone would wait far longer; one that
names a time beyond the backoff waits until then (docs/protocol.md §8).

On SQLite only: these delays are under SQS's 15-minute cap, and SQS (moto's too) counts its
delays in real time, not on the engine's clock; the delay itself is worked out the same way on
both backends (``Waker``).
"""

from __future__ import annotations

import pytest

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

# A backoff of 30-60 s before the first retry: a retry after 1 s can only be the Retry-After.
SLOW_BACKOFF = Settings(mode="dev", retry_base_ms=60_000, retry_cap_ms=60_000)
BUSY = b'{"name": "Error", "message": "busy"}'

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def run_once_busy(backend, clock, step_kind: str, retry_after: str) -> tuple[Engine, ScriptedApp, str]:
    """A one-step run whose step answers 500 with ``retry_after`` the first time; the run's id."""
    fn_id = "t-app-patient"
    stage = ("parallel", ["x", "y"]) if step_kind == "planned" else ("run", "x")
    app = ScriptedApp({fn_id: [stage]})
    app.fail_first["x"] = HttpResponse(500, BUSY, {"retry-after": retry_after})
    engine = Engine(backend, SLOW_BACKOFF, clock=clock, caller=app)
    register(engine, [fn_id])
    [event_id] = engine.ingest.accept([{"name": f"app/{fn_id}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    pump(backend, engine, clock)
    assert app.executed["x"] == 1
    return engine, app, run.run_id


def status(backend, run_id: str) -> RunStatus:
    return backend.store.get_run(run_id).status


def test_a_retry_after_sooner_than_the_backoff_is_when_the_call_is_retried(backend, clock):
    engine, app, run_id = run_once_busy(backend, clock, "discovery", "1")
    clock.advance(999)
    pump(backend, engine, clock)
    assert app.executed["x"] == 1 and status(backend, run_id) is RunStatus.RUNNING
    clock.advance(1)
    pump(backend, engine, clock)
    assert app.executed["x"] == 2 and status(backend, run_id) is RunStatus.COMPLETED


def test_a_planned_steps_retry_after_is_when_it_is_retried(backend, clock):
    engine, app, run_id = run_once_busy(backend, clock, "planned", "2")
    clock.advance(1_999)
    pump(backend, engine, clock)
    assert app.executed["x"] == 1
    clock.advance(1)
    pump(backend, engine, clock)
    assert app.executed == {"x": 2, "y": 1} and status(backend, run_id) is RunStatus.COMPLETED


def test_a_retry_after_later_than_the_backoff_is_waited_for(backend, clock):
    engine, app, run_id = run_once_busy(backend, clock, "discovery", "120")
    clock.advance(119_999)
    pump(backend, engine, clock)
    assert app.executed["x"] == 1 and status(backend, run_id) is RunStatus.RUNNING
    clock.advance(1)
    pump(backend, engine, clock)
    assert app.executed["x"] == 2 and status(backend, run_id) is RunStatus.COMPLETED
