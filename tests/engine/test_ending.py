"""How runs end, on both backends with a manual clock: whichever path ends a run, what it
announces (the lifecycle events, an invoking parent's answer) says how it ended."""

from __future__ import annotations

import json

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

FAILED = "inngest/function.failed"
FINISHED = "inngest/function.finished"


def make(backend, clock, scripts: dict) -> tuple[Engine, ScriptedApp]:
    app = ScriptedApp(scripts)
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, list(scripts))
    return engine, app


def start(engine: Engine, backend, fn_id: str) -> str:
    [event_id] = engine.ingest.accept([{"name": f"app/{fn_id}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def announced(backend, name: str, run_id: str) -> list[dict]:
    events, _ = backend.store.list_events(limit=100, name=name)
    return [e.data for e in events if e.data.get("run_id") == run_id]


def test_a_parallel_step_that_fails_the_run_announces_the_failure(backend, clock):
    # The job of a planned step ends the run (its call is answered with a 400: no retry). It
    # takes the run's lease and reads the run again before ending it; what it announces must be
    # the end it writes, not the run as it read it (Running). Before the fix, function.failed
    # was never emitted (so no on_failure handler ran) and function.finished said "Running".
    engine, app = make(backend, clock, {"par": [("parallel", ["a", "b"]), ("run", "after")]})
    app.fail_first["a"] = HttpResponse(400, json.dumps({"name": "Broken", "message": "a broke"}).encode())
    run_id = start(engine, backend, "par")
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.FAILED and run.error["name"] == "Broken"
    [finished] = announced(backend, FINISHED, run_id)
    assert finished["_inngest"]["status"] == "Failed" and finished["error"]["name"] == "Broken"
    [failed] = announced(backend, FAILED, run_id)
    assert failed["error"] == run.error
    assert app.executed["after"] == 0
