"""Caps on fan-out, on both backends with a scripted app: a request that would start too many
runs is refused before anything is stored; a reply with too many ops, or one that would take a
run past its step limit, fails the run with an error naming the limit and its setting."""

from __future__ import annotations

import pytest

from stepline.engine.core import Engine
from stepline.engine.limits import STEP_LIMIT, TOO_MANY_OPS
from stepline.engine.ports import RunStatus
from stepline.protocol.errors import ProtocolError
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

SCRIPTS = {
    "long": [("run", f"s{i}") for i in range(5)],
    "wide": [("parallel", [f"p{i}" for i in range(6)])],
    "other": [("run", "only")],
}


def make(backend, clock, **limits) -> tuple[Engine, ScriptedApp]:
    app = ScriptedApp(SCRIPTS)
    engine = Engine(backend, Settings(mode="dev", **limits), clock=clock, caller=app)
    register(engine, list(SCRIPTS), {"other": {"triggers": [{"event": "app/long"}, {"event": "app/other"}]}})
    return engine, app


def run_of(backend, engine, name: str):
    [event_id] = engine.ingest.accept([{"name": name, "data": {}}])
    return backend.store.runs_for_event(event_id)


def test_a_run_fails_when_a_reply_would_take_it_past_its_step_limit(backend, clock):
    engine, app = make(backend, clock, max_steps_per_run=3)
    [run] = [r for r in run_of(backend, engine, "app/long") if r.fn_id == "long"]
    pump(backend, engine, clock)
    ended = backend.store.get_run(run.run_id)
    assert ended.status == RunStatus.FAILED
    assert ended.error["name"] == STEP_LIMIT
    assert "limit for long is 3" in ended.error["message"] and "max_steps_per_run" in ended.error["message"]
    assert [m.step_id for m in backend.store.load_run(run.run_id).memos] == ["s0", "s1", "s2"]
    assert app.executed["s4"] == 0  # nothing after the refused step was asked for


def test_a_function_may_have_a_step_limit_of_its_own(backend, clock):
    engine, _ = make(backend, clock, max_steps_per_run=3, max_steps_by_function="long=5")
    [run] = [r for r in run_of(backend, engine, "app/long") if r.fn_id == "long"]
    pump(backend, engine, clock)
    assert backend.store.get_run(run.run_id).status == RunStatus.COMPLETED


def test_a_reply_with_too_many_ops_fails_the_run_without_retrying(backend, clock):
    engine, app = make(backend, clock, max_ops_per_reply=5)
    [run] = run_of(backend, engine, "app/wide")
    pump(backend, engine, clock)
    ended = backend.store.get_run(run.run_id)
    assert ended.status == RunStatus.FAILED and ended.error["name"] == TOO_MANY_OPS
    assert "6 ops" in ended.error["message"] and "max_ops_per_reply" in ended.error["message"]
    assert sum(app.executed.values()) == 0 and backend.store.load_run(run.run_id).pending == {}


def test_a_request_that_would_start_too_many_runs_is_refused_and_stores_nothing(backend, clock):
    engine, _ = make(backend, clock)
    # Two events, each triggering two functions (long, other): four runs.
    events = [{"name": "app/long", "data": {"n": n}} for n in range(2)]
    with pytest.raises(ProtocolError) as refused:
        engine.ingest.accept(events, max_runs=3)
    assert refused.value.status == 413
    assert "would start 4 runs" in refused.value.message and "max_runs_per_request" in refused.value.message
    assert backend.store.list_events(limit=10) == ([], None)
    ids = engine.ingest.accept(events, max_runs=4)  # at the limit: accepted
    assert sum(len(backend.store.runs_for_event(i)) for i in ids) == 4


def test_the_event_api_answers_413_naming_the_limit(tmp_path):
    from stepline.dev.runtime import DevOptions, DevRuntime
    from tests.e2e.conftest import free_port, http

    options = DevOptions(port=free_port(), db_path=str(tmp_path / "db"))
    runtime = DevRuntime(options, Settings(mode="dev", max_runs_per_request=1)).start()
    try:
        register(runtime.engine, ["long", "other"], {"other": {"triggers": [{"event": "app/long"}]}})
        body = [{"name": "app/long", "data": {}}]
        code, reply = http("POST", f"{runtime.url}/e/any", body)
        assert code == 413 and "max_runs_per_request" in reply["error"], reply
        code, reply = http("POST", f"{runtime.url}/e/any", [{"name": "app/nothing"}])
        assert code == 200, reply
    finally:
        runtime.stop()


def test_limits_are_settings_with_defaults_as_inngest_has_them():
    settings = Settings()
    assert (settings.max_steps_per_run, settings.max_ops_per_reply, settings.max_runs_per_request) == (1000, 1000, 5000)
    with pytest.raises(ValueError, match="<function id>=<steps>"):
        Settings(max_steps_by_function="fn-without-a-number")
    assert Settings(max_steps_by_function="app-a=1, app-b = 20").steps_limits() == {"app-a": 1, "app-b": 20}
