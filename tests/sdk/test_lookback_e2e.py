"""Look-back for waits with Stepline's SDK against a real `stepline dev`, on SQLite and on the
AWS adapters (moto), on a manual clock: ``wait_for_event(..., lookback="5m")`` matches an event
that arrived before the wait began, with the same CEL ``if``, within the window only; and the
race it exists for (the answer sent right after the trigger) never leaves a run waiting."""

from __future__ import annotations

import uuid

import pydantic
import pytest

from stepline import Client, Context, serve_wsgi
from stepline.protocol.calls import Opcode
from tests.sdk.harness import Stack, wait_for

APP_ID = "sdk-lookback"
MIN_MS = 60_000

client = Client(APP_ID, dev=True)


@client.function("asker", trigger="sdk-lookback/ask", retries=0)
def asker(ctx: Context) -> dict:
    data = ctx.event.data
    if data.get("send_first"):
        # The answer is stored before the wait even begins: only a look-back can see it.
        ctx.step.run("request", lambda: client.send({"name": "sdk-lookback/answer", "data": _answer(data["key"])}))
    got = ctx.step.wait_for_event(
        "answer",
        event="sdk-lookback/answer",
        if_="async.data.key == event.data.key && async.data.ok == true",
        timeout="1h",
        lookback=data.get("lookback"),
    )
    return {"answer": None if got is None else got.data["answer"], "id": None if got is None else got.id}


def _answer(key: str, answer: str = "yes", ok: bool = True) -> dict:
    return {"key": key, "answer": answer, "ok": ok}


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def stack(request, tmp_path_factory):
    s = Stack(
        serve_wsgi(client), tmp_path_factory.mktemp(f"sdk-lookback-{request.param}"), APP_ID, backend=request.param
    )
    yield s
    s.close()


def _key() -> str:
    return uuid.uuid4().hex[:10]


def _ask(stack: Stack, key: str, **data) -> str:
    [event_id] = stack.send({"name": "sdk-lookback/ask", "data": {"key": key, **data}})
    return event_id


def _waiting(stack: Stack, event_id: str) -> bool:
    runs = stack.runs(event_id)
    if not runs:
        return False
    state = stack.runtime.backend.runs.load_run(runs[0]["run_id"])
    return state is not None and any(op.op == "WaitForEvent" for op in state.pending.values())


def test_an_answer_stored_before_the_wait_began_is_matched(stack):
    key = _key()
    [answer_id] = stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "early")})
    stack.clock.advance(2 * MIN_MS)

    run = stack.wait_run(_ask(stack, key, lookback="5m"), status="Completed")

    assert run["output"] == {"answer": "early", "id": answer_id}


def test_without_a_look_back_the_same_answer_is_missed(stack):
    key = _key()
    stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "early")})
    event_id = _ask(stack, key)
    wait_for(lambda: _waiting(stack, event_id), what="the run to wait")

    stack.clock.advance(61 * MIN_MS)

    assert stack.wait_run(event_id, status="Completed")["output"] == {"answer": None, "id": None}


def test_only_the_window_counts(stack):
    key = _key()
    stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "too old")})
    stack.clock.advance(6 * MIN_MS)
    event_id = _ask(stack, key, lookback="5m")
    wait_for(lambda: _waiting(stack, event_id), what="the run to wait")

    [fresh_id] = stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "fresh")})

    assert stack.wait_run(event_id, status="Completed")["output"] == {"answer": "fresh", "id": fresh_id}


def test_the_if_decides_and_the_earliest_match_wins(stack):
    key = _key()
    stack.send({"name": "sdk-lookback/answer", "data": _answer("someone-else", "not mine")})
    stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "not ok", ok=False)})
    stack.clock.advance(1000)
    [first_id] = stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "first")})
    stack.clock.advance(1000)
    stack.send({"name": "sdk-lookback/answer", "data": _answer(key, "second")})
    stack.clock.advance(1000)

    run = stack.wait_run(_ask(stack, key, lookback="10m"), status="Completed")

    assert run["output"] == {"answer": "first", "id": first_id}


def test_an_answer_sent_from_a_step_before_the_wait_is_seen(stack):
    key = _key()
    run = stack.wait_run(_ask(stack, key, lookback="1m", send_first=True), status="Completed")
    assert run["output"]["answer"] == "yes"


def test_answers_sent_right_after_their_triggers_never_leave_a_run_waiting(stack):
    # The race: each trigger and its answer back to back, 20 times, while the runs start. Each
    # answer lands before its run's wait began, or after: either way the run gets it. The clock
    # never moves, so no run can end by its timeout.
    keys = [_key() for _ in range(20)]
    asked = []
    for key in keys:
        asked.append(_ask(stack, key, lookback="5m"))
        stack.send({"name": "sdk-lookback/answer", "data": _answer(key, key)})

    runs = [stack.wait_run(event_id, status="Completed", timeout_s=60) for event_id in asked]

    assert [r["output"]["answer"] for r in runs] == keys


def test_a_look_back_over_24_hours_is_refused_naming_the_field():
    op = {"id": "a" * 40, "op": "WaitForEvent", "name": "x/y", "opts": {"timeout": "1h", "lookback": "25h"}}
    with pytest.raises(pydantic.ValidationError, match="opts.lookback: 25h is longer than"):
        Opcode.model_validate(op)
    assert Opcode.model_validate({**op, "opts": {"timeout": "1h", "lookback": "24h"}}).options["lookback"] == "24h"
