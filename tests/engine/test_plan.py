"""What the executor does with an SDK reply, row by row: each reply goes through the real parser
(`parse_call_response`) and the pure planner (`plan_reply`), and the plan is compared with what
the rules say (docs/protocol.md §6.4, §7; the rules are listed in stepline.engine.plan).

The rows include every reply the fuzzers found a bug with (tests/fuzz/test_call_responses.py):
ops the engine cannot use (malformed), a step named twice, replies that move nothing, a step
call's reply judged by the op acted on, outputs too large, version headers out of range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from stepline.engine.ending import Ending
from stepline.engine.payload_policy import MAX_RUN_STATE_BYTES, MAX_STEP_OUTPUT_BYTES
from stepline.engine.plan import (
    CallNext,
    Plan,
    RetryCall,
    RetryStep,
    Settle,
    Start,
    Target,
    plan_reply,
)
from stepline.engine.records import FunctionRecord, Memo, PendingOp, Run, RunState, RunStatus
from stepline.protocol.calls import parse_call_response
from stepline.protocol.opcodes import Op
from stepline.settings import Settings
from tests.fuzz.strategies import nested

NOW = 1_800_000_000_000
A, B, C, D, E = "a" * 40, "b" * 40, "c" * 40, "d" * 40, "e" * 40
DISCOVERY = Target()


@dataclass
class Row:
    """One reply to one call, and the plan expected for it (see ``describe``)."""

    reply: tuple[int, dict[str, str], Any]  # status, headers, body (JSON-encoded unless bytes)
    expect: dict[str, Any]
    call: Target = DISCOVERY
    memos: list[str] = field(default_factory=list)  # steps with a result already
    pending: dict[str, Op] = field(default_factory=dict)  # ops the run waits on
    max_attempts: int = 4
    holds_run_lease: bool = True
    memo_bytes: int = 0  # the size of the one result the run holds already (for state limits)
    settings: dict[str, Any] = field(default_factory=dict)  # limits other than the defaults
    wait_mode: bool = False  # the run's parallel groups join in one discovery (plan.waits_for_group)
    claimed: bool = False  # the call is for a planned step its job claimed
    race: set[str] = field(default_factory=set)  # pending steps planned in race mode


def ops(*items: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    return 206, {}, list(items)


def function(max_attempts: int = 4) -> FunctionRecord:
    config = {"id": "app-fn", "steps": {"step": {"retries": {"attempts": max_attempts - 1}}}}
    return FunctionRecord(fn_id="app-fn", app_id="app", name="fn", url="http://app/api", config=config)


def plan_for(row: Row, result):
    settings = Settings(mode="dev", **row.settings)
    fn = function(row.max_attempts)
    return plan_reply(
        result,
        state_for(row),
        row.call,
        fn,
        settings,
        holds_run_lease=row.holds_run_lease,
        wait_mode=row.wait_mode,
        claimed=row.claimed,
    )


def state_for(row: Row) -> RunState:
    run = Run(
        run_id="RUN",
        fn_id="app-fn",
        app_id="app",
        status=RunStatus.RUNNING,
        events=[{"name": "app/go", "data": {}, "id": "E", "ts": 1}],
        event_ids=["E"],
        created_at=NOW,
    )
    memos = [Memo(step_id=s, value={"data": 1}, seq=f"{i:04d}") for i, s in enumerate(row.memos)]
    if row.memo_bytes:
        memos.append(Memo(step_id="big", value={"data": "x" * row.memo_bytes}, seq="9999"))
    race = {"parallel_mode": "race"}
    pending = {s: PendingOp(s, op, NOW, detail=race if s in row.race else {}) for s, op in row.pending.items()}
    return RunState(run, memos, pending)


def describe(plan: Plan) -> dict[str, Any]:
    """The plan in plain values: each step action as (what, step id, detail), the planned step
    ids, and the outcome; an error is shown by its name."""
    steps: list[tuple[Any, ...]] = []
    for step in plan.steps:
        if isinstance(step, Settle):
            value = step.value["error"]["name"] if "error" in step.value else ("data", step.value["data"])
            steps.append(("settle", step.op.id, value, step.attempt))
        elif isinstance(step, RetryStep):
            steps.append(("retry", step.op.id, step.target.attempt))
        elif isinstance(step, Start):
            steps.append(("start", step.op.id, step.op.op))
    outcome: Any = None
    if isinstance(plan.outcome, Ending):
        detail = plan.outcome.output if plan.outcome.status == RunStatus.COMPLETED else plan.outcome.error["name"]
        outcome = ("end", plan.outcome.status, detail)
    elif isinstance(plan.outcome, RetryCall):
        target = plan.outcome.target
        outcome = ("retry call", target.step, target.attempt, plan.outcome.error["name"], plan.outcome.retry_at_ms)
    elif isinstance(plan.outcome, CallNext):
        outcome = ("call", plan.outcome.target.step, plan.outcome.target.attempt)
    return {"steps": steps, "planned": [op.id for op in plan.planned], "outcome": outcome}


def expect(steps=(), planned=(), outcome=None) -> dict[str, Any]:
    return {"steps": list(steps), "planned": list(planned), "outcome": outcome}


DISCOVER = ("call", "step", 0)
MALFORMED_RETRY = ("retry call", "step", 1, "MalformedResponse", None)
ROWS: dict[str, Row] = {
    # -- done, or failed ---------------------------------------------------------------------
    "200 completes the run with its body": Row(
        (200, {}, {"ok": True}), expect(outcome=("end", RunStatus.COMPLETED, {"ok": True}))
    ),
    "200 with an empty body completes with null": Row(
        (200, {}, b""), expect(outcome=("end", RunStatus.COMPLETED, None))
    ),
    "200 with a new execution version completes the run": Row(
        (200, {"x-inngest-req-version": "2"}, None), expect(outcome=("end", RunStatus.COMPLETED, None))
    ),
    # Found by fuzzing: a version beyond a small integer overflowed the store.
    "200 ignores a version out of range": Row(
        (200, {"x-inngest-req-version": "99999999999999999999"}, b"null"),
        expect(outcome=("end", RunStatus.COMPLETED, None)),
    ),
    "500 retries the call": Row(
        (500, {}, {"name": "Error", "message": "boom"}), expect(outcome=("retry call", "step", 1, "Error", None))
    ),
    "500 with retry-after retries it then": Row(
        (500, {"retry-after": "90"}, b""), expect(outcome=("retry call", "step", 1, "HTTPError", NOW + 90_000))
    ),
    "500 on the last attempt fails the run": Row(
        (500, {}, b"oops"), expect(outcome=("end", RunStatus.FAILED, "HTTPError")), call=Target("step", 3)
    ),
    "400 fails the run at once": Row(
        (400, {}, {"name": "NonRetriableError", "message": "no"}),
        expect(outcome=("end", RunStatus.FAILED, "NonRetriableError")),
    ),
    "no-retry fails the run at once": Row(
        (500, {"x-inngest-no-retry": "true"}, {"name": "E", "message": "m"}),
        expect(outcome=("end", RunStatus.FAILED, "E")),
    ),
    "a step call's error retries that step": Row(
        (500, {}, b""), expect(outcome=("retry call", B, 2, "HTTPError", None)), call=Target(B, 1)
    ),
    # -- malformed replies (found by fuzzing: each raised out of the executor halfway) ----------
    "206 with no body": Row((206, {}, b""), expect(outcome=MALFORMED_RETRY)),
    "206 with a step id too long for a key": Row(
        ops({"id": "x" * 3000, "op": "StepRun", "data": 1}), expect(outcome=MALFORMED_RETRY)
    ),
    "Sleep for ever": Row(ops({"id": A, "op": "Sleep", "name": "forever"}), expect(outcome=MALFORMED_RETRY)),
    "a wait timeout that is no duration": Row(
        ops({"id": A, "op": "WaitForEvent", "name": "e", "opts": {"timeout": "soon"}}), expect(outcome=MALFORMED_RETRY)
    ),
    "a wait 'if' that is no CEL string": Row(
        ops({"id": A, "op": "WaitForEvent", "name": "e", "opts": {"timeout": "1h", "if": 5}}),
        expect(outcome=MALFORMED_RETRY),
    ),
    "a wait for no event": Row(
        ops({"id": A, "op": "WaitForEvent", "name": "", "opts": {"timeout": "1h"}}), expect(outcome=MALFORMED_RETRY)
    ),
    "an invoke payload that is no event": Row(
        ops({"id": A, "op": "InvokeFunction", "opts": {"function_id": "f", "payload": 5}}),
        expect(outcome=MALFORMED_RETRY),
    ),
    "an invoke payload whose data is a list": Row(
        ops({"id": A, "op": "InvokeFunction", "opts": {"function_id": "f", "payload": {"data": [1]}}}),
        expect(outcome=MALFORMED_RETRY),
    ),
    "an invoke payload whose id is a number": Row(
        ops({"id": A, "op": "InvokeFunction", "opts": {"function_id": "f", "payload": {"id": 5}}}),
        expect(outcome=MALFORMED_RETRY),
    ),
    "an invoke timeout that is a number": Row(
        ops({"id": A, "op": "InvokeFunction", "opts": {"function_id": "f", "timeout": 5}}),
        expect(outcome=MALFORMED_RETRY),
    ),
    "an op without a name": Row(ops({"id": A, "op": ""}), expect(outcome=MALFORMED_RETRY)),
    "malformed on the last attempt fails the run": Row(
        (206, {}, b"[1]"), expect(outcome=("end", RunStatus.FAILED, "MalformedResponse")), call=Target("step", 3)
    ),
    # -- step results ------------------------------------------------------------------------
    "StepRun settles its step, then discovery": Row(
        ops({"id": A, "op": "StepRun", "data": 1}), expect([("settle", A, ("data", 1), 0)], outcome=DISCOVER)
    ),
    "StepRun of a deeply nested value": Row(
        ops({"id": A, "op": "StepRun", "data": nested(450)}),
        expect([("settle", A, ("data", nested(450)), 0)], outcome=DISCOVER),
    ),
    "StepRun larger than a step may be": Row(
        ops({"id": A, "op": "StepRun", "data": "x" * (MAX_STEP_OUTPUT_BYTES + 1)}),
        expect([("settle", A, "OutputTooLarge", 0)], outcome=DISCOVER),
    ),
    "two results that together outgrow the run's state": Row(
        ops(
            {"id": A, "op": "StepRun", "data": "x" * (2 * 1024 * 1024)},
            {"id": B, "op": "StepRun", "data": "y" * (2 * 1024 * 1024)},
        ),
        expect(
            [("settle", A, ("data", "x" * (2 * 1024 * 1024)), 0), ("settle", B, "RunStateTooLarge", 0)],
            outcome=DISCOVER,
        ),
        memo_bytes=MAX_RUN_STATE_BYTES - 3 * 1024 * 1024,
    ),
    "StepError with attempts left retries the step": Row(
        ops({"id": A, "op": "StepError", "error": {"name": "E", "message": "m"}}), expect([("retry", A, 1)])
    ),
    "StepError on a step call counts that call's attempt": Row(
        ops({"id": B, "op": "StepError", "error": {"name": "E", "message": "m"}}),
        expect([("retry", B, 3)]),
        call=Target(B, 2),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
    ),
    "StepError on the last attempt settles the error": Row(
        ops({"id": B, "op": "StepError", "error": {"name": "E", "message": "m"}}),
        expect([("settle", B, "E", 3)], outcome=DISCOVER),
        call=Target(B, 3),
        pending={B: Op.STEP_PLANNED},
    ),
    "StepError that may not be retried settles the error": Row(
        (206, {"x-inngest-no-retry": "true"}, [{"id": A, "op": "StepError", "error": {"name": "E", "message": "m"}}]),
        expect([("settle", A, "E", 0)], outcome=DISCOVER),
    ),
    "StepFailed settles the error": Row(
        ops({"id": A, "op": "StepFailed", "error": "thrown text"}),
        expect([("settle", A, "Error", 0)], outcome=DISCOVER),
    ),
    # Found by fuzzing: the same StepError twice scheduled two retries, doubling at each attempt.
    "a step named twice is acted on once": Row(
        ops(*[{"id": A, "op": "StepError", "error": {"name": "", "message": ""}}] * 2),
        expect([("retry", A, 1)]),
    ),
    "a step named twice is acted on as first reported": Row(
        ops(
            {"id": A, "op": "StepRun", "data": 1}, {"id": A, "op": "StepError", "error": {"name": "E", "message": "m"}}
        ),
        expect([("settle", A, ("data", 1), 0)], outcome=DISCOVER),
    ),
    # Found by fuzzing: retry-after on a 206 does not delay a step's retry; b settles, a retries.
    "a result and a step error side by side": Row(
        (206, {"retry-after": "90"}, [{"id": B, "op": "StepRun"}, {"id": A, "op": "StepError"}]),
        expect([("settle", B, ("data", None), 0), ("retry", A, 1)], outcome=DISCOVER),
    ),
    "a result of a planned step is what the run waits for": Row(
        ops({"id": B, "op": "StepRun", "data": 2}),
        expect([("settle", B, ("data", 2), 0)], outcome=DISCOVER),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
    ),
    "results of steps memoized already are ignored": Row(
        ops({"id": A, "op": "StepRun", "data": 9}, {"id": B, "op": "StepRun", "data": 2}),
        expect([("settle", B, ("data", 2), 0)], outcome=DISCOVER),
        memos=[A],
    ),
    # -- waiting ops -------------------------------------------------------------------------
    "Sleep starts": Row(ops({"id": A, "op": "Sleep", "name": "30s"}), expect([("start", A, Op.SLEEP)])),
    "Sleep for longer than any queue delay starts": Row(
        ops({"id": A, "op": "Sleep", "name": "2562047h"}), expect([("start", A, Op.SLEEP)])
    ),
    "Sleep until the end of time starts": Row(
        ops({"id": A, "op": "Sleep", "name": "9999-12-31T23:59:59Z"}), expect([("start", A, Op.SLEEP)])
    ),
    "WaitForEvent starts": Row(
        ops({"id": A, "op": "WaitForEvent", "name": "app/ok", "opts": {"timeout": "1h"}}),
        expect([("start", A, Op.WAIT_FOR_EVENT)]),
    ),
    # The invoke of a function that is not registered settles at once when carried out (found by
    # fuzzing: it was written behind the invocation's back); see test_an_invoke_that_settles_*.
    "InvokeFunction starts": Row(
        ops({"id": A, "op": "InvokeFunction", "opts": {"function_id": "app-child"}}),
        expect([("start", A, Op.INVOKE_FUNCTION)]),
    ),
    "a re-reported sleep is ignored while the run waits on it": Row(
        ops({"id": A, "op": "Sleep", "name": "30s"}), expect(), pending={A: Op.SLEEP}
    ),
    "parallel branches re-reported while the run waits on them": Row(
        ops({"id": A, "op": "StepPlanned"}, {"id": B, "op": "StepPlanned"}),
        expect(),
        pending={A: Op.STEP_PLANNED, B: Op.STEP_PLANNED},
    ),
    "step.ai.infer's model request is started": Row(
        ops({"id": A, "op": "AIGateway"}), expect([("start", A, Op.AI_GATEWAY)])
    ),
    "an op this runtime does not run fails its step": Row(
        ops({"id": A, "op": "Gateway"}), expect([("settle", A, "UnsupportedStep", 0)], outcome=DISCOVER)
    ),
    "an op no SDK sends fails its step": Row(
        ops({"id": A, "op": "Bogus"}), expect([("settle", A, "UnsupportedStep", 0)], outcome=DISCOVER)
    ),
    # -- planned steps -----------------------------------------------------------------------
    "a lone planned step runs at once, inline": Row(
        ops({"id": A, "op": "StepPlanned", "name": "a"}), expect(outcome=("call", A, 0))
    ),
    "a lone planned step under a claim gets a job": Row(
        ops({"id": A, "op": "StepPlanned"}), expect(planned=[A]), holds_run_lease=False
    ),
    "parallel steps each get a job": Row(
        ops({"id": A, "op": "StepPlanned"}, {"id": B, "op": "StepPlanned"}),
        expect(planned=[A, B]),
    ),
    "a planned step beside a result gets a job": Row(
        ops({"id": A, "op": "StepRun", "data": 1}, {"id": B, "op": "StepPlanned"}),
        expect([("settle", A, ("data", 1), 0)], planned=[B], outcome=DISCOVER),
    ),
    "a planned step already waited on is not planned again": Row(
        ops({"id": A, "op": "StepPlanned"}, {"id": C, "op": "StepPlanned"}),
        expect(planned=[C]),
        pending={A: Op.STEP_PLANNED},
        holds_run_lease=False,
    ),
    "a planned step's job leaves the new steps its call names to discovery": Row(
        ops(
            {"id": B, "op": "StepRun", "data": 2},
            {"id": C, "op": "StepPlanned"},
            {"id": D, "op": "Sleep", "name": "30s"},
            {"id": E, "op": "StepRun", "data": 5},
        ),
        expect([("settle", B, ("data", 2), 0)], outcome=DISCOVER),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
        claimed=True,
    ),
    "a planned step's job settles a sibling's result it reports": Row(
        ops({"id": B, "op": "StepRun", "data": 2}, {"id": A, "op": "StepRun", "data": 1}),
        expect([("settle", B, ("data", 2), 0), ("settle", A, ("data", 1), 0)], outcome=DISCOVER),
        call=Target(B),
        pending={A: Op.STEP_PLANNED, B: Op.STEP_PLANNED},
        holds_run_lease=False,
        claimed=True,
    ),
    "a planned step's job answered only with new steps made no progress": Row(
        ops({"id": C, "op": "StepRun", "data": 3}),
        expect(outcome=("retry call", B, 1, "NoProgress", None)),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
        claimed=True,
    ),
    "the one new branch beside branches in hand runs inline": Row(
        ops({"id": A, "op": "StepPlanned"}, {"id": C, "op": "StepPlanned"}),
        expect(outcome=("call", C, 0)),
        pending={A: Op.STEP_PLANNED},
    ),
    # -- caps on what one reply may make (stepline.engine.limits) ---------------------------
    "more ops than a reply may carry fails the run": Row(
        ops({"id": A, "op": "StepPlanned"}, {"id": B, "op": "StepPlanned"}, {"id": C, "op": "StepPlanned"}),
        expect(outcome=("end", RunStatus.FAILED, "TooManyOps")),
        settings={"max_ops_per_reply": 2},
    ),
    "steps past the run's limit fail the run": Row(
        ops({"id": B, "op": "StepPlanned"}, {"id": C, "op": "StepPlanned"}),
        expect(outcome=("end", RunStatus.FAILED, "StepLimitExceeded")),
        memos=[A],
        settings={"max_steps_per_run": 2},
    ),
    "steps up to the run's limit are taken on": Row(
        ops({"id": B, "op": "StepPlanned"}, {"id": C, "op": "StepPlanned"}),
        expect(planned=[B, C]),
        memos=[A],
        settings={"max_steps_per_run": 3},
    ),
    # -- replies that move nothing (found by fuzzing: the run hung, or called the app for ever) --
    "discovery reporting nothing": Row(ops(), expect(outcome=("retry call", "step", 1, "NoProgress", None))),
    "discovery reporting nothing, with retry-after": Row(
        (206, {"retry-after": "90"}, []), expect(outcome=("retry call", "step", 1, "NoProgress", NOW + 90_000))
    ),
    "discovery reporting only results it has, on the last attempt": Row(
        ops({"id": A, "op": "StepRun", "data": 1}),
        expect(outcome=("end", RunStatus.FAILED, "NoProgress")),
        memos=[A],
        call=Target("step", 3),
    ),
    "discovery reporting nothing while the run waits on an op": Row(ops(), expect(), pending={A: Op.SLEEP}),
    "a step call answered without its result": Row(
        ops({"id": A, "op": "StepRun", "data": 1}),
        expect([("settle", A, ("data", 1), 0)], outcome=("retry call", B, 1, "NoProgress", None)),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
    ),
    "a step call answered by planning the step again": Row(
        ops({"id": A, "op": "StepPlanned", "name": "a"}),
        expect(outcome=("retry call", A, 1, "NoProgress", None)),
        call=Target(A),
        pending={A: Op.STEP_PLANNED},
    ),
    # Found by fuzzing: acted on as StepPlanned (the first op for b), but the StepError passed the
    # check for b's result, so the lone planned step ran inline again, for ever.
    "a step call's reply is judged by the op acted on": Row(
        ops({"id": B, "op": "StepPlanned"}, {"id": B, "op": "StepError"}),
        expect(outcome=("retry call", B, 1, "NoProgress", None)),
        call=Target(B),
    ),
    # -- wait mode: a parallel group joins in one discovery (docs/protocol.md §7.5) ------------
    "a wait-mode branch's call answering that the function completed fails that call": Row(
        (200, {}, "done"),
        expect(outcome=("retry call", B, 1, "NoProgress", None)),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
        wait_mode=True,
        claimed=True,
    ),
    "the same on the branch's last attempt fails the run": Row(
        (200, {}, "done"),
        expect(outcome=("end", RunStatus.FAILED, "NoProgress")),
        call=Target(B, 3),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
        wait_mode=True,
        claimed=True,
    ),
    "a race's losing branch answering that the function completed completes the run": Row(
        (200, {}, "done"),
        expect(outcome=("end", RunStatus.COMPLETED, "done")),
        call=Target(B),
        pending={B: Op.STEP_PLANNED},
        holds_run_lease=False,
        claimed=True,
    ),
    "a lone planned step run inline may complete the run": Row(
        (200, {}, "done"), expect(outcome=("end", RunStatus.COMPLETED, "done")), call=Target(B), wait_mode=True
    ),
    "wait-mode discovery completing while planned steps are out is ignored": Row(
        (200, {}, "done"), expect(), pending={A: Op.STEP_PLANNED, B: Op.STEP_PLANNED}, memos=[A], wait_mode=True
    ),
    "a race's slow branch does not hold the run's completion back": Row(
        (200, {}, "done"),
        expect(outcome=("end", RunStatus.COMPLETED, "done")),
        pending={A: Op.STEP_PLANNED},
        race={A},
        wait_mode=True,
    ),
    "outside wait mode, discovery may complete with planned steps out": Row(
        (200, {}, "done"), expect(outcome=("end", RunStatus.COMPLETED, "done")), pending={A: Op.STEP_PLANNED}
    ),
}


@pytest.mark.parametrize("row", [pytest.param(row, id=name) for name, row in ROWS.items()])
def test_a_reply_becomes_the_plan_the_rules_say(row: Row) -> None:
    status, headers, body = row.reply
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = parse_call_response(status, headers, raw, NOW)
    assert describe(plan_for(row, result)) == row.expect


def test_an_invoke_that_settles_on_start_is_followed_by_discovery() -> None:
    # Starting the invoke of a function that is not registered settles its step with an error;
    # like any result, discovery follows it at once.
    result = parse_call_response(
        206, {}, json.dumps([{"id": A, "op": "InvokeFunction", "opts": {"function_id": "nope"}}]).encode(), NOW
    )
    plan = plan_for(Row(ops(), {}), result)
    assert plan.outcome is None
    assert plan.outcome_after(settled_on_start=False) is None
    assert plan.outcome_after(settled_on_start=True) == CallNext(DISCOVERY)


def test_planning_reads_and_changes_nothing() -> None:
    # The same reply planned twice gives the same plan, and the state it read is as it was.
    row = ROWS["a planned step beside a result gets a job"]
    state = state_for(row)
    before = (list(state.memos), dict(state.pending), replace(state.run))
    status, headers, body = row.reply
    result = parse_call_response(status, headers, json.dumps(body).encode(), NOW)
    fn, settings = function(), Settings(mode="dev")
    first = plan_reply(result, state, row.call, fn, settings)
    assert plan_reply(result, state, row.call, fn, settings) == first
    assert (list(state.memos), dict(state.pending), state.run) == before


def test_a_run_failed_by_an_error_status_carries_inngest_s_summary() -> None:
    # The end events' data.error.error is Inngest's one-line summary of the answer.
    result = parse_call_response(500, {}, json.dumps({"name": "Error", "message": "boom"}).encode(), NOW)
    plan = plan_for(Row(ops(), {}, call=Target("step", 3)), result)
    assert isinstance(plan.outcome, Ending)
    assert plan.outcome.error == {"name": "Error", "message": "boom", "error": "invalid status code: 500"}
