"""What an app answers a call request, fuzzed: any status, headers and body, opcodes of every
kind with odd options. `parse_call_response` never raises. Driven by a real engine on both
backends, with the app giving the same answer to every call, the executor never lets a bad
answer escape as an exception (the message would come back until it is dead-lettered), and the
run ends up completed, failed with a named error, or waiting on an op (a sleep, a wait, an
invoke, a planned step); never live with nothing to move it on. A malformed answer writes no
step result, and the run that fails on it says which op and field was wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunState, RunStatus
from stepline.protocol.calls import MALFORMED, parse_call_response
from stepline.protocol.durations import MAX_RETRY_AFTER_MS
from tests.fuzz.harness import World, examples
from tests.fuzz.strategies import deep_json, garbage_body, json_object, json_value, nested, unicode_text

APP = "fuzz-calls"
FN = f"{APP}-fn"
CHILD = f"{APP}-child"
NOW = 1_800_000_000_000
STEP_IDS = ["a" * 40, "b" * 40, "c" * 40]
KNOWN_OPS = ["StepRun", "StepPlanned", "StepError", "StepFailed", "Sleep", "WaitForEvent", "WaitForSignal",
             "InvokeFunction"]
# Every retry of a run that fails on each attempt, with room for the steps and discovery calls
# in between.
MOST_DELIVERIES = 24
# The app gives one answer to every call: a message that makes more calls than this is looping.
CALLS_PER_MESSAGE = 20


# -- responses ------------------------------------------------------------------------------------

# What the SDKs send, and what they might send wrong: each op is drawn the way an SDK writes it,
# and then, now and then, one of its fields is given any value (or removed).
good_duration = st.sampled_from(["1s", "30m", "2h30m", "1w", "0", "-5s", "2030-01-02T03:04:05Z", "1999-01-01T00:00:00Z"])
any_duration = good_duration | st.sampled_from(["", "forever", "1e3s", "9999999999h"]) | unicode_text | json_value
good_expression = st.none() | st.sampled_from(["event.data.k == async.data.k", "async.data.ok", "true"])
good_error = st.fixed_dictionaries({"name": unicode_text, "message": unicode_text}, optional={"stack": unicode_text})
GOOD_OPTS = {
    "Sleep": st.none() | st.fixed_dictionaries({}, optional={"duration": good_duration}),
    "WaitForEvent": st.fixed_dictionaries({"event": st.just("fuzz/other"), "timeout": good_duration},
                                          optional={"if": good_expression, "lookback": st.sampled_from(["5m", "24h"])}),
    "WaitForSignal": st.fixed_dictionaries({"signal": st.sampled_from(["fuzz/a", "fuzz/b"]), "timeout": good_duration},
                                           optional={"conflict": st.sampled_from(["fail", "replace"])}),
    "InvokeFunction": st.fixed_dictionaries({"function_id": st.sampled_from([CHILD, "nope"])}, optional={
        "payload": st.fixed_dictionaries({}, optional={"data": json_object, "v": unicode_text}),
        "timeout": good_duration}),
}
ANY_VALUE = {
    "id": json_value | st.text(min_size=1, max_size=3).map(lambda s: s * 400),
    "op": st.sampled_from(["AIGateway", "StepNotFound", "Bogus", ""]) | json_value,
    "name": any_duration,
    "opts": json_value | st.fixed_dictionaries({}, optional={
        "duration": any_duration, "timeout": any_duration, "event": json_value, "if": json_value,
        "function_id": json_value, "parallelMode": json_value, "signal": json_value, "conflict": json_value,
        "lookback": any_duration,
        "payload": json_value | st.fixed_dictionaries({}, optional={"data": json_value, "id": json_value, "v": json_value}),
    }),
    "data": json_value,
    "error": json_value,
    "displayName": json_value,
    "userland": json_value,
}


@st.composite
def opcode(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(KNOWN_OPS))
    op: dict[str, Any] = {"id": draw(st.sampled_from(STEP_IDS)), "op": kind, "displayName": draw(unicode_text)}
    if kind == "Sleep":
        op["name"] = draw(good_duration)
    if kind in GOOD_OPTS:
        op["opts"] = draw(GOOD_OPTS[kind])
    if kind == "StepRun":
        op["data"] = draw(json_value)
    if kind in ("StepError", "StepFailed"):
        op["error"] = draw(good_error)
    if draw(st.integers(0, 3)) == 0:
        field = draw(st.sampled_from(list(ANY_VALUE)))
        if draw(st.booleans()):
            op[field] = draw(ANY_VALUE[field])
        else:
            op.pop(field, None)
    return op if draw(st.integers(0, 19)) else draw(json_value)  # now and then not an object at all


ops_body = st.lists(opcode(), max_size=3).map(lambda ops: json.dumps(ops).encode()) | opcode().map(
    lambda op: json.dumps(op).encode())
header_values = {
    "retry-after": st.sampled_from(["90", "0", "-1", "1234567", "12345678", "Wed, 21 Oct 2015 07:28:00 GMT",
                                    "2030-01-01T00:00:00.000Z", "soon", ""]) | st.text(max_size=10),
    "x-inngest-no-retry": st.sampled_from(["true", "false", "TRUE", " true ", "1", ""]) | st.text(max_size=5),
    "x-inngest-req-version": st.sampled_from(["1", "2", "-1", "0", "abc", "99999999999999999999"]) | st.text(max_size=5),
    "content-type": st.sampled_from(["application/json", "text/html", ""]),
}
headers = st.lists(st.sampled_from(list(header_values)), unique=True).flatmap(
    lambda names: st.fixed_dictionaries({
        name.upper() if i % 2 else name: header_values[name] for i, name in enumerate(names)}))


@st.composite
def stream_body(draw: st.DrawFn) -> bytes:
    """A 201 stream: keep-alive spaces, then an envelope around any inner reply."""
    envelope = draw(st.fixed_dictionaries({"status": st.sampled_from([200, 206, 500, 400, 201]) | json_value}, optional={
        "body": json_value | ops_body.map(bytes.decode) | st.lists(opcode(), max_size=2),
        "headers": st.none() | headers | json_value,
        "noRetry": json_value,
        "retryAt": st.sampled_from(["2030-01-01T00:00:00Z", "nope"]) | json_value,
    }))
    return b" " * draw(st.integers(0, 3)) + json.dumps(envelope).encode()


@st.composite
def response(draw: st.DrawFn) -> tuple[int, dict[str, str], bytes]:
    status = draw(st.sampled_from([206] * 6 + [200, 201, 400, 401, 404, 500, 502]) | st.integers(100, 599))
    body = draw(ops_body if status == 206 else stream_body() if status == 201 else garbage_body | ops_body)
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, max(len(body) - 1, 0)))]  # cut off mid-reply
    return status, draw(headers), body


# -- the parser alone -----------------------------------------------------------------------------

@given(reply=response())
@example(reply=(206, {}, b"[" + deep_json(900) + b"]"))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepRun", "data": nested(400)}]).encode()))
@example(reply=(500, {"retry-after": "99999999999999999999999"}, b""))
def test_the_parser_never_raises_and_says_what_to_do(reply):
    status, hdrs, body = reply
    result = parse_call_response(status, hdrs, body, NOW)
    assert result.kind in ("complete", "ops", "error")
    if result.kind == "error":
        assert isinstance(result.error, dict)
        assert isinstance(result.error.get("name"), str) and isinstance(result.error.get("message"), str)
    if result.kind == "ops":
        assert all(isinstance(op.id, str) and op.id and isinstance(op.op, str) and op.op for op in result.ops)
    if result.retry_at_ms is not None:
        assert NOW <= result.retry_at_ms <= NOW + MAX_RETRY_AFTER_MS
    assert result.req_version is None or isinstance(result.req_version, int)


# -- the executor ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def functions(world: World) -> None:
    world.register(APP, {FN: {"triggers": [{"event": "fuzz/call"}]}, CHILD: {"triggers": [{"event": "fuzz/child"}]}})


def sent_for(world: World, run_id: str) -> list[tuple[int, dict[str, Any]]]:
    """What the engine queued or scheduled for the run since the last look, as (due, body)."""
    mine = [(at, body) for at, body in world.sent if body.get("run_id") == run_id]
    world.sent.clear()
    return mine


def settle(world: World, run_id: str) -> RunState:
    """Deliver the run's messages, each at its time, until it ends or waits on an op (a sleep,
    a wait, an invoke, a planned step). The app gives the same answer to every call, so a run
    that still has nothing to wait on after this many deliveries is going round in circles."""
    due = sent_for(world, run_id)
    for _ in range(MOST_DELIVERIES):
        at_ms, body = min(due, key=lambda pair: pair[0])
        due.remove((at_ms, body))
        world.clock.set(max(world.clock.now_ms(), at_ms))
        world.app.calls_left = CALLS_PER_MESSAGE
        world.engine.executor.handle(body)  # never raises: the answer is the app's problem
        state = world.store.load_run(run_id)
        assert state.run.lease_owner is None, "the executor kept the run's lease"
        if state.run.status.terminal or state.pending:
            return state
        due += sent_for(world, run_id)
        assert due, f"run {run_id} is {state.run.status.value} with nothing to move it on"
    raise AssertionError(f"run {run_id} still {state.run.status.value} after {MOST_DELIVERIES} deliveries")


@settings(max_examples=examples(15))  # each example drives a run to its end: the costliest here
@given(reply=response())
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepRun", "data": nested(450)}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "x" * 3000, "op": "StepRun", "data": 1}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "Sleep", "name": "forever"}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "Sleep", "name": "2562047h"}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "Sleep", "name": "9999-12-31T23:59:59Z"}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "WaitForEvent", "name": "e", "opts": {"timeout": "soon"}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "WaitForEvent", "name": "e", "opts": {"timeout": "1h", "if": 5}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "WaitForEvent", "name": "", "opts": {"timeout": "1h"}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "InvokeFunction", "opts": {"function_id": CHILD, "payload": 5}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "InvokeFunction", "opts": {"function_id": CHILD, "payload": {"data": [1]}}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "InvokeFunction", "opts": {"function_id": CHILD, "payload": {"id": 5}}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "InvokeFunction", "opts": {"function_id": CHILD, "timeout": 5}}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepRun", "data": "x" * (5 * 1024 * 1024)}]).encode()))
@example(reply=(206, {}, b"[]"))
@example(reply=(206, {}, json.dumps([{"id": "b" * 40, "op": "StepPlanned"}, {"id": "b" * 40, "op": "StepError"}]).encode()))
@example(reply=(206, {"retry-after": "90"}, json.dumps([{"id": "b" * 40, "op": "StepRun"}, {"id": "a" * 40, "op": "StepError"}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepError", "error": {"name": "", "message": ""}}] * 2).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepPlanned", "name": "a"}]).encode()))
@example(reply=(206, {}, json.dumps([{"id": "a" * 40, "op": "StepRun", "data": 1}]).encode()))
@example(reply=(200, {"x-inngest-req-version": "99999999999999999999"}, b"null"))
def test_any_answer_ends_the_run_or_leaves_it_waiting(world, functions, reply):
    status, hdrs, body = reply
    world.tick()
    world.sent.clear()
    world.app.respond = lambda url, request: HttpResponse(status, body, hdrs)
    [event_id] = world.engine.ingest.accept([{"name": "fuzz/call", "data": {"k": 1}}])
    [run] = world.store.runs_for_event(event_id)
    parsed = parse_call_response(status, {k.lower(): v for k, v in hdrs.items()}, body, world.clock.now_ms())
    malformed = parsed.kind == "error" and parsed.error["name"] == MALFORMED
    event(f"{parsed.kind}{' (malformed)' if malformed else ''}")

    state = settle(world, run.run_id)
    event(f"run {state.run.status.value}{' waiting' if state.pending else ''}")
    if malformed:
        assert state.memos == [], "a malformed answer wrote a memo"
    if state.run.status == RunStatus.FAILED:
        assert isinstance(state.run.error.get("name"), str) and state.run.error["name"], state.run.error
        assert isinstance(state.run.error.get("message"), str), state.run.error
        if malformed and status == 206:
            # Which part of the reply was wrong: the body as a whole, or which op.
            assert state.run.error["name"] == MALFORMED, state.run.error
            assert state.run.error["message"].startswith(("206 body", "206 ops[")), state.run.error
    elif state.run.status == RunStatus.COMPLETED:
        assert parsed.kind == "complete" and state.run.output == parsed.output
    else:
        assert state.run.status == RunStatus.RUNNING and state.pending, state.run
