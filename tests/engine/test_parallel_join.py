"""Parallel groups on the engine alone, on both backends with a manual clock: a group joins in one
discovery call, and a planned step whose call fails the run is never lost, whichever job holds
the run when it fails (docs/protocol.md §7.5, §8)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.engine.scripted_app import APP_URL, DISCOVERY, ScriptedApp, pump, receive_all, register

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


RACE_FN = "t-app-race"


class RaceApp:
    """A race-mode group as the TypeScript 4.x SDK answers it (``group.parallel({mode: "race"})``
    around ``Promise.race([fast, slow])``, then ``after``): once a branch has won and ``after`` is
    done, the function returns, so a call for the losing branch answers that it completed."""

    def __init__(self) -> None:
        self.executed: dict[str, int] = {}

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        target = parse_qs(urlsplit(url).query)["stepId"][0]
        memos = json.loads(body)["steps"]
        race = {"parallelMode": "race"}
        winner = next((s for s in ("fast", "slow") if s in memos), None)
        if winner is None:
            if target in ("fast", "slow"):
                return self._run(target)
            return _reply(206, [{"op": "StepPlanned", "id": s, "name": s, "opts": race} for s in ("fast", "slow")])
        if "after" not in memos:
            if target == "after":
                return self._run("after")
            losing = [{"op": "StepPlanned", "id": "slow", "name": "slow", "opts": race}] if "slow" not in memos else []
            return _reply(206, [*losing, {"op": "StepPlanned", "id": "after", "name": "after", "opts": {}}])
        if target == "step" and "slow" not in memos:
            return _reply(206, [{"op": "StepPlanned", "id": "slow", "name": "slow", "opts": race}])
        return _reply(200, {"winner": memos[winner]["data"], "after": memos["after"]["data"]})

    def _run(self, step: str) -> HttpResponse:
        self.executed[step] = self.executed.get(step, 0) + 1
        return _reply(206, [{"op": "StepRun", "id": step, "name": step, "data": step}])


def _reply(status: int, value: Any) -> HttpResponse:
    return HttpResponse(status, json.dumps(value).encode(), {"x-inngest-req-version": "2"})


def test_a_race_branch_called_after_the_run_moved_on_may_complete_it(backend, clock):
    # The losing branch's call comes only once the winner's result, and the step after the race,
    # are in: the app answers that the function completed. In a race that is the run's end, not
    # a failed call of a step gone from the code (as it would be for a wait-mode branch).
    app = RaceApp()
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, [RACE_FN], {RACE_FN: {"steps": {"step": {
        "id": "step", "name": "step", "runtime": {"type": "http", "url": f"{APP_URL}?fnId={RACE_FN}&stepId=step"},
        "retries": {"attempts": 0}}}}})
    [event_id] = engine.ingest.accept([{"name": f"app/{RACE_FN}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)

    handle_visible(backend, engine)  # discovery plans both branches, one message each
    branches = {m.body["step"]: m for m in receive_all(backend)}
    assert set(branches) == {"fast", "slow"}
    engine.executor.handle(branches["fast"].body)  # the winner, then `after` at once
    backend.queue.ack(branches["fast"].handle)
    assert app.executed == {"fast": 1, "after": 1}
    engine.executor.handle(branches["slow"].body)  # the loser's call, late
    backend.queue.ack(branches["slow"].handle)
    pump(backend, engine, clock)

    done = backend.store.get_run(run.run_id)
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.output == {"winner": "fast", "after": "after"}
    assert app.executed == {"fast": 1, "after": 1}


class FlagApp(ScriptedApp):
    """Records each call as (target, the request's ``ctx.disable_immediate_execution``)."""

    def __init__(self, scripts: dict[str, list[Any]]) -> None:
        super().__init__(scripts)
        self.flags: list[tuple[str, bool]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        target = parse_qs(urlsplit(url).query)["stepId"][0]
        self.flags.append((target, json.loads(body)["ctx"]["disable_immediate_execution"]))
        return super().post(url, body, headers, timeout_s)


def test_immediate_execution_is_off_only_while_a_group_is_out_whatever_came_before(backend, clock):
    """What the SDK is told (docs/protocol.md §7.3): a branch's call plans every other step; a
    discovery call may run a step inline whenever nothing of the run is out, so the step after
    each group, a second group's included, runs inside the discovery that joins it."""
    fn = "t-app-groups"
    app = FlagApp({fn: [("parallel", ["x", "y"]), ("run", "between"), ("parallel", ["p", "q"]), ("run", "last")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, [fn])
    [event_id] = engine.ingest.accept([{"name": f"app/{fn}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    pump(backend, engine, clock)

    assert backend.store.get_run(run.run_id).status is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1, "between": 1, "p": 1, "q": 1, "last": 1}
    by_target = {target: flag for target, flag in app.flags if target != DISCOVERY}
    assert by_target == {"x": True, "y": True, "p": True, "q": True}
    # Discovery plans x and y; the join runs `between` inline and the next discovery plans p and
    # q; the second join runs `last` inline, and the last discovery returns.
    assert [flag for target, flag in app.flags if target == DISCOVERY] == [False] * 5


def test_a_run_an_earlier_version_stored_with_immediate_execution_off_still_runs_steps_inline(backend, clock):
    """Earlier versions stored ``disable_immediate`` on the run for good once a reply held several
    ops. Such a run loads, and its next discovery is told to run steps like any other's."""
    app = FlagApp({FN: [("parallel", ["x", "y"]), ("run", "after")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, [FN])
    [event_id] = engine.ingest.accept([{"name": f"app/{FN}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    if backend.name == "sqlite":
        with backend.store._db.write() as conn:
            conn.execute("UPDATE runs SET disable_immediate = 1 WHERE run_id = ?", (run.run_id,))
    else:
        backend.clients["dynamodb"].update_item(
            TableName=backend.names.table_name,
            Key={"pk": {"S": f"RUN#{run.run_id}"}, "sk": {"S": "RUN"}},
            UpdateExpression="SET disable_immediate = :on",
            ExpressionAttributeValues={":on": {"BOOL": True}},
        )
    pump(backend, engine, clock)

    assert backend.store.get_run(run.run_id).status is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1, "after": 1}
    assert app.flags.count((DISCOVERY, False)) == 3 and ("after", True) not in app.flags
