"""Parallel groups on the engine alone, on both backends with a manual clock: a group joins in one
discovery call, and a planned step whose call fails the run is never lost, whichever job holds
the run when it fails (docs/protocol.md §7.5, §8)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import APP_URL, DISCOVERY, ScriptedApp, pump, receive_all

FN = "t-app-group"
# The Python SDK's answer to a targeted call for a step its code no longer reaches.
UNEXPECTED = HttpResponse(
    500,
    json.dumps({"code": "step_unexpected", "name": "StepUnexpectedError", "message": "found step \"after\"",
                "stack": None}).encode(),
    {"x-inngest-req-version": "2"},
)


class CountingApp(ScriptedApp):
    """Counts the calls by target (``step`` for discovery)."""

    def __init__(self, scripts: dict[str, list[Any]]) -> None:
        super().__init__(scripts)
        self.calls: dict[str, int] = {}

        def count(fn_id: str, target: str) -> None:
            self.calls[target] = self.calls.get(target, 0) + 1

        self.before_call = count


def make(backend, clock, retries: int) -> tuple[Engine, CountingApp, str]:
    app = CountingApp({FN: [("parallel", ["x", "y", "z"]), ("run", "after")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    url = f"{APP_URL}?fnId={FN}&stepId=step"
    fn = {"id": FN, "name": FN, "triggers": [{"event": f"app/{FN}"}],
          "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": url},
                             "retries": {"attempts": retries}}}}
    body = {"appname": "t-app", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
            "functions": [fn]}
    engine.registry.register(parse_register(json.dumps(body).encode()))
    [event_id] = engine.ingest.accept([{"name": f"app/{FN}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return engine, app, run.run_id


def handle_visible(backend, engine: Engine) -> None:
    for message in receive_all(backend):
        engine.executor.handle(message.body)
        backend.queue.ack(message.handle)


def test_a_group_joins_in_one_discovery_and_the_next_step_runs_inside_it(backend, clock):
    engine, app, run_id = make(backend, clock, retries=0)
    pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1, "z": 1, "after": 1}
    # Discovery plans the group; three targeted calls; the last branch joins with one discovery,
    # in which `after` runs at once; the last discovery returns.
    assert app.calls == {DISCOVERY: 3, "x": 1, "y": 1, "z": 1}


def test_a_planned_step_that_fails_the_run_while_another_job_holds_it_is_recorded(backend, clock):
    engine, app, run_id = make(backend, clock, retries=0)
    app.fail_first["z"] = UNEXPECTED
    handle_visible(backend, engine)  # discovery: x, y and z planned, one message each
    now = clock.now_ms()
    assert backend.store.acquire_lease(run_id, "another-job", now + 60_000, now)

    handle_visible(backend, engine)  # x and y written; z's call fails the run, without the lease
    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error["name"] == "StepUnexpectedError"

    # Whatever was left (the branches' joins, retried behind the busy lease) changes nothing, and
    # with retries=0 z was called exactly once.
    backend.store.release_lease(run_id, "another-job")
    for _ in range(4):
        clock.advance(35_000)
        pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status is RunStatus.FAILED
    assert app.calls.get("z") == 1 and "after" not in app.executed
    events, _ = backend.store.list_events(name="inngest/function.failed", limit=100)
    failed = [e for e in events if e.data["run_id"] == run_id]
    assert len(failed) == 1 and failed[0].data["error"]["name"] == "StepUnexpectedError"


# On SQLite only: the retry's backoff is a delay under SQS's cap, which SQS (moto's too) counts in
# real time, not on the engine's clock.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_planned_steps_failed_attempts_are_retried_exactly(backend, clock):
    engine, app, run_id = make(backend, clock, retries=1)
    app.fail_first["z"] = HttpResponse(500, b'{"name": "Error", "message": "flaky"}', {"x-inngest-req-version": "2"})
    handle_visible(backend, engine)
    now = clock.now_ms()
    assert backend.store.acquire_lease(run_id, "another-job", now + 60_000, now)
    handle_visible(backend, engine)  # z's first attempt fails: its retry needs no lease
    backend.store.release_lease(run_id, "another-job")
    for _ in range(4):
        clock.advance(35_000)
        pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status is RunStatus.COMPLETED
    assert app.calls.get("z") == 2 and app.executed == {"x": 1, "y": 1, "z": 2, "after": 1}
