"""What our SDK answers to call requests built by the protocol layer (the same builder the
Stepline executor uses), checked against the shapes captured from the official SDKs
(docs/protocol.md §6–7) and parsed back with the executor's own response parser."""

from __future__ import annotations

import datetime
import json

import pytest

from stepline import AsyncContext, Context, EventData, StepError
from stepline.protocol.calls import memo_data, memo_error
from tests.protocol import captures
from tests.sdk.conftest import RUN_ID, call, h, make_client, parsed


def ops_of(response) -> list[dict]:
    assert response.status == 206, (response.status, response.body)
    return json.loads(response.body)


# -- step ids -----------------------------------------------------------------------------------


def test_step_ids_are_sha1_of_the_user_id_and_repeats_get_an_index():
    client = make_client()

    @client.function("repeat", trigger="t/repeat")
    def repeat(ctx: Context) -> list:
        return [ctx.step.run("same-id", lambda: i) for i in range(3)]

    assert h("a") == "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"  # docs/protocol.md §7.1
    [op] = ops_of(call(client, repeat))
    assert op["id"] == "9b767012ea06ccb052d1f22505b0cbbe0eb79350"
    assert op["userland"] == {"id": "same-id", "index": None}
    [op] = ops_of(call(client, repeat, steps={op["id"]: memo_data(0)}))
    assert op["id"] == "5be312e38fa79927b66c04d8d8f55152bf0822c8" and op["userland"]["index"] == 1
    [op] = ops_of(call(client, repeat, steps={h("same-id"): memo_data(0), h("same-id:1"): memo_data(1)}))
    assert op["id"] == "840481fc23946098154fee5b6163d86c010dd646" and op["userland"]["index"] == 2


# -- step.run -------------------------------------------------------------------------------------


@pytest.fixture
def two_steps():
    client = make_client()
    runs: list[str] = []

    @client.function("two-steps", trigger="t/two")
    def two_steps(ctx: Context) -> dict:
        a = ctx.step.run("a", lambda: runs.append("a") or {"a": ctx.event.data["n"]})
        b = ctx.step.run("b", lambda: runs.append("b") or a["a"] * 10)
        return {"a": a, "b": b, "run_id": ctx.run_id, "attempt": ctx.attempt}

    return client, two_steps, runs


def test_a_lone_new_step_runs_immediately_and_reports_step_run(two_steps):
    client, fn, runs = two_steps
    response = call(client, fn)
    assert ops_of(response) == [{
        "displayName": "a", "id": h("a"), "name": "a", "op": "StepRun", "opts": None,
        "userland": {"id": "a", "index": None}, "data": {"a": 2},
    }]
    assert runs == ["a"]
    result = parsed(response)
    assert result.kind == "ops" and result.ops[0].op == "StepRun" and not result.no_retry


def test_memos_replay_and_the_function_returns_200(two_steps):
    client, fn, runs = two_steps
    [op] = ops_of(call(client, fn, steps={h("a"): memo_data({"a": 2})}))
    assert (op["op"], op["data"]) == ("StepRun", 20)
    response = call(client, fn, steps={h("a"): memo_data({"a": 2}), h("b"): memo_data(20)})
    assert response.status == 200
    assert json.loads(response.body) == {"a": {"a": 2}, "b": 20, "run_id": RUN_ID, "attempt": 0}
    assert runs == ["b"]  # "a" never ran again
    assert response.headers["x-inngest-req-version"] == "2"
    assert response.headers["x-inngest-sdk"].startswith("stepline-py:v")


def test_raw_memos_are_data_too(two_steps):
    # A memo that is not exactly {"data"}/{"error"} is the value itself (docs/protocol.md §7.2).
    client, fn, _ = two_steps
    response = call(client, fn, steps={h("a"): {"a": 5}, h("b"): memo_data(50)})
    assert json.loads(response.body)["a"] == {"a": 5}


def test_disable_immediate_execution_plans_instead_of_running(two_steps):
    client, fn, runs = two_steps
    assert ops_of(call(client, fn, disable=True)) == [{
        "displayName": "a", "id": h("a"), "name": "a", "op": "StepPlanned", "opts": None,
        "userland": {"id": "a", "index": None}, "data": None,
    }]
    assert runs == []


def test_a_targeted_call_runs_exactly_that_step(two_steps):
    client, fn, runs = two_steps
    [op] = ops_of(call(client, fn, target=h("b"), disable=True, steps={h("a"): memo_data({"a": 3})}))
    assert (op["op"], op["id"], op["data"]) == ("StepRun", h("b"), 30)
    assert runs == ["b"]


def test_targeting_a_step_the_code_does_not_reach_first_is_step_unexpected(two_steps):
    client, fn, runs = two_steps
    response = call(client, fn, target=h("b"), disable=True)
    assert response.status == 500
    assert json.loads(response.body)["code"] == "step_unexpected"
    assert "x-inngest-no-retry" not in response.headers  # retriable (docs/protocol.md §7.4)
    assert runs == []


def test_step_output_models_and_output_type():
    client = make_client()

    class User(EventData):
        id: str
        joined: datetime.date

    @client.function("typed-output", trigger="t/typed")
    def typed_output(ctx: Context) -> str:
        user = ctx.step.run("get-user", lambda: User(id="u1", joined=datetime.date(2026, 1, 2)), output_type=User)
        return f"{user.id} joined {user.joined.year}"

    [op] = ops_of(call(client, typed_output))
    assert op["data"] == {"id": "u1", "joined": "2026-01-02"}
    response = call(client, typed_output, steps={op["id"]: memo_data(op["data"])})
    assert json.loads(response.body) == "u1 joined 2026"


# -- failures inside steps ----------------------------------------------------------------------


@pytest.fixture
def boom():
    client = make_client()

    @client.function("boom", trigger="t/boom", retries=2)
    def boom_fn(ctx: Context) -> dict:
        try:
            ctx.step.run("boom", lambda: (_ for _ in ()).throw(ValueError("step went boom")))
        except StepError as err:
            return {"caught": err.name, "message": err.message, "step": err.step_id}
        return {"caught": None}

    return client, boom_fn


def test_a_failing_step_reports_step_error_while_attempts_remain(boom):
    client, fn = boom
    response = call(client, fn, attempt=0, max_attempts=3)
    [op] = ops_of(response)
    assert op["op"] == "StepError" and op["id"] == h("boom") and op["data"] is None
    assert op["error"]["name"] == "ValueError" and op["error"]["message"] == "step went boom"
    assert "Traceback" in op["error"]["stack"]
    assert "x-inngest-no-retry" not in response.headers


def test_the_last_attempt_reports_step_failed(boom):
    client, fn = boom
    [op] = ops_of(call(client, fn, attempt=2, max_attempts=3, target=h("boom"), disable=True))
    assert op["op"] == "StepFailed"


def test_a_memoized_error_is_raised_as_step_error_and_can_be_caught(boom):
    client, fn = boom
    memo = memo_error({"name": "ValueError", "message": "step went boom", "stack": "..."})
    response = call(client, fn, steps={h("boom"): memo})
    assert json.loads(response.body) == {"caught": "ValueError", "message": "step went boom", "step": "boom"}


def test_nested_steps_fail_the_outer_step_without_retries():
    client = make_client()

    @client.function("nested", trigger="t/nested")
    def nested(ctx: Context) -> None:
        ctx.step.run("outer", lambda: ctx.step.run("inner", lambda: 1))

    response = call(client, nested)
    [op] = ops_of(response)
    assert op["op"] == "StepError" and op["displayName"] == "outer"
    assert op["error"]["code"] == "step_nested"
    assert response.headers["x-inngest-no-retry"] == "true"


def test_an_unserializable_step_result_fails_the_step_for_good():
    client = make_client()

    @client.function("unserializable", trigger="t/unserializable")
    def unserializable(ctx: Context) -> None:
        ctx.step.run("bad", lambda: object())

    response = call(client, unserializable)
    [op] = ops_of(response)
    assert op["op"] == "StepFailed" and "not JSON-serializable" in op["error"]["message"]
    assert response.headers["x-inngest-no-retry"] == "true"


# -- sleep, wait, invoke, send -------------------------------------------------------------------


def test_sleep_sends_a_relative_duration_and_sleep_until_an_instant():
    client = make_client()

    @client.function("sleepy", trigger="t/sleep")
    def sleepy(ctx: Context) -> str:
        ctx.step.sleep("nap", "24h")
        ctx.step.sleep("short-nap", datetime.timedelta(minutes=30))
        ctx.step.sleep_until("until", datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc))
        return "rested"

    assert ops_of(call(client, sleepy)) == [{
        "displayName": "nap", "id": h("nap"), "name": "24h", "op": "Sleep", "opts": None,
        "userland": {"id": "nap", "index": None}, "data": None,
    }]
    [op] = ops_of(call(client, sleepy, steps={h("nap"): memo_data(None)}))
    assert op["name"] == "30m"
    [op] = ops_of(call(client, sleepy, steps={h("nap"): memo_data(None), h("short-nap"): None}))
    assert op["name"] == "2030-01-02T03:04:05.000Z"
    done = call(client, sleepy, steps={h("nap"): memo_data(None), h("short-nap"): None, h("until"): memo_data(None)})
    assert json.loads(done.body) == "rested"


def test_sleep_refuses_bare_numbers():
    client = make_client()

    @client.function("bad-sleep", trigger="t/bad-sleep")
    def bad_sleep(ctx: Context) -> None:
        ctx.step.sleep("nap", 1000)

    response = call(client, bad_sleep)
    assert response.status == 500 and response.headers["x-inngest-no-retry"] == "true"
    assert "not a bare number" in json.loads(response.body)["message"]


class Approved(EventData, name="wire/approved"):
    order_id: str
    by: str


def test_wait_for_event_shape_and_typed_result():
    client = make_client()

    @client.function("waiter", trigger="t/wait")
    def waiter(ctx: Context) -> dict:
        approval = ctx.step.wait_for_event("wait-approval", event=Approved, timeout="1h",
                                           if_="async.data.order_id == event.data.order_id")
        plain = ctx.step.wait_for_event("wait-plain", event="wire/other", timeout=datetime.timedelta(minutes=1))
        return {"by": approval.data.by if approval else None, "plain": plain}

    assert ops_of(call(client, waiter)) == [{
        "displayName": "wait-approval", "id": h("wait-approval"), "name": "wire/approved", "op": "WaitForEvent",
        "opts": {"if": "async.data.order_id == event.data.order_id", "timeout": "1h"},
        "userland": {"id": "wait-approval", "index": None}, "data": None,
    }]
    event = {"name": "wire/approved", "data": {"order_id": "o1", "by": "ada"}, "id": "e1", "ts": 1}
    [op] = ops_of(call(client, waiter, steps={h("wait-approval"): memo_data(event)}))
    assert op["opts"] == {"if": None, "timeout": "1m"}  # Python sends "if": null
    response = call(client, waiter, steps={h("wait-approval"): memo_data(event), h("wait-plain"): memo_data(None)})
    assert json.loads(response.body) == {"by": "ada", "plain": None}


def test_invoke_shape_result_and_failure():
    client = make_client("caller-app")

    @client.function("child", trigger=None)
    def child(ctx: Context) -> dict:
        return {"got": ctx.event.data}

    @client.function("parent", trigger="t/parent")
    def parent(ctx: Context) -> dict:
        local = ctx.step.invoke("call-child", function=child, data={"hello": "world"}, timeout="5m")
        try:
            ctx.step.invoke("call-remote", function="remote-fn", app_id="other-app")
        except StepError as err:
            return {"local": local, "remote_failed": err.message}
        return {"local": local}

    assert ops_of(call(client, parent)) == [{
        "displayName": "call-child", "id": h("call-child"), "name": "call-child", "op": "InvokeFunction",
        "opts": {"function_id": "caller-app-child", "payload": {"data": {"hello": "world"}, "v": None}, "timeout": "5m"},
        "userland": {"id": "call-child", "index": None}, "data": None,
    }]
    [op] = ops_of(call(client, parent, steps={h("call-child"): memo_data({"got": 1})}))
    assert op["opts"]["function_id"] == "other-app-remote-fn" and op["opts"]["timeout"] is None
    failed = memo_error({"name": "FunctionNotFound", "message": "no such function", "stack": ""})
    response = call(client, parent, steps={h("call-child"): memo_data({"got": 1}), h("call-remote"): failed})
    assert json.loads(response.body) == {"local": {"got": 1}, "remote_failed": "no such function"}


def test_send_event_is_a_step_run_whose_data_is_the_ids():
    from tests.sdk.conftest import FakeTransport

    transport = FakeTransport((200, {"ids": ["id-1", "id-2"], "status": 200}))
    client = make_client("sender-app", transport=transport, base_url="http://127.0.0.1:8288")

    @client.function("sender", trigger="t/send")
    def sender(ctx: Context) -> list:
        return ctx.step.send_event("send-it", [Approved(order_id="o1", by="ada"),
                                               {"name": "wire/plain", "data": {"x": 1}, "id": "my-id"}])

    [op] = ops_of(call(client, sender))
    assert (op["op"], op["name"], op["data"]) == ("StepRun", "send-it", ["id-1", "id-2"])
    [sent] = transport.requests
    assert sent["url"] == "http://127.0.0.1:8288/e/NO_EVENT_KEY_SET"
    assert [e["name"] for e in sent["body"]] == ["wire/approved", "wire/plain"]
    assert sent["body"][0]["data"] == {"order_id": "o1", "by": "ada"} and sent["body"][1]["id"] == "my-id"
    # The id seed is fixed by the run and the step: a retried step gets the same ids back.
    call(client, sender)
    assert transport.requests[1]["headers"]["x-inngest-event-id-seed"] == sent["headers"]["x-inngest-event-id-seed"]
    assert sent["headers"]["x-inngest-event-id-seed"].startswith(f"{_ulid_ms(RUN_ID)},")


def _ulid_ms(run_id: str) -> int:
    from stepline.sdk.steps.core import ulid_ms

    return ulid_ms(run_id)


# -- parallel ------------------------------------------------------------------------------------


@pytest.fixture
def fan():
    client = make_client()
    runs: list[str] = []

    @client.function("fan", trigger="t/fan")
    def fan_fn(ctx: Context) -> dict:
        p1, p2, _ = ctx.step.parallel(
            lambda: ctx.step.run("p1", lambda: runs.append("p1") or 1),
            lambda: ctx.step.run("p2", lambda: runs.append("p2") or 2),
            lambda: ctx.step.sleep("p-sleep", "1s"),
        )
        after = ctx.step.run("after", lambda: runs.append("after") or p1 + p2)
        return {"sum": after}

    return client, fan_fn, runs


def test_parallel_reports_every_branch_in_one_response(fan):
    client, fn, runs = fan
    ops = ops_of(call(client, fn))
    assert [(o["op"], o["displayName"]) for o in ops] == [("StepPlanned", "p1"), ("StepPlanned", "p2"), ("Sleep", "p-sleep")]
    assert ops[2]["name"] == "1s"
    assert runs == []


def test_parallel_targets_each_planned_step_and_reports_the_rest_until_done(fan):
    client, fn, runs = fan
    [op] = ops_of(call(client, fn, target=h("p2"), disable=True))
    assert (op["op"], op["data"]) == ("StepRun", 2)
    assert runs == ["p2"]
    # A discovery after a partial completion re-reports what is still pending (docs/protocol.md §7.5).
    ops = ops_of(call(client, fn, disable=True, steps={h("p2"): memo_data(2)}))
    assert [(o["op"], o["displayName"]) for o in ops] == [("StepPlanned", "p1"), ("Sleep", "p-sleep")]
    done = {h("p1"): memo_data(1), h("p2"): memo_data(2), h("p-sleep"): memo_data(None)}
    [op] = ops_of(call(client, fn, disable=True, steps=done))
    assert (op["op"], op["displayName"]) == ("StepPlanned", "after")
    [op] = ops_of(call(client, fn, target=h("after"), disable=True, steps=done))
    assert (op["op"], op["data"]) == ("StepRun", 3)


def test_async_functions_speak_the_same_wire():
    client = make_client()

    @client.function("async-fn", trigger="t/async")
    async def async_fn(ctx: AsyncContext) -> dict:
        async def fetch() -> int:
            return 7

        a = await ctx.step.run("a", fetch)
        b, c = await ctx.step.parallel(lambda: ctx.step.run("b", lambda: a + 1), lambda: ctx.step.run("c", fetch))
        await ctx.step.sleep("nap", "30s")
        return {"sum": a + b + c}

    [op] = ops_of(call(client, async_fn))
    assert (op["op"], op["data"]) == ("StepRun", 7)
    ops = ops_of(call(client, async_fn, steps={h("a"): memo_data(7)}))
    assert [o["op"] for o in ops] == ["StepPlanned", "StepPlanned"]
    [op] = ops_of(call(client, async_fn, target=h("c"), disable=True, steps={h("a"): memo_data(7)}))
    assert (op["op"], op["data"]) == ("StepRun", 7)
    memos = {h("a"): memo_data(7), h("b"): memo_data(8), h("c"): memo_data(7)}
    [op] = ops_of(call(client, async_fn, steps=memos))
    assert (op["op"], op["name"]) == ("Sleep", "30s")
    response = call(client, async_fn, steps={**memos, h("nap"): memo_data(None)})
    assert json.loads(response.body) == {"sum": 22}


# -- typed events on receipt ---------------------------------------------------------------------


class Signup(EventData, name="wire/signup"):
    user_id: str
    plan: str = "free"


def test_typed_trigger_data_is_validated_on_receipt():
    client = make_client()

    @client.function("typed", trigger=Signup)
    def typed(ctx: Context[Signup]) -> str:
        return f"{ctx.event.data.user_id}:{ctx.event.data.plan}"

    ok = call(client, typed, event={"name": "wire/signup", "data": {"user_id": "u1"}, "id": "e", "ts": 1})
    assert json.loads(ok.body) == "u1:free"
    bad = call(client, typed, event={"name": "wire/signup", "data": {"plan": "pro"}, "id": "e", "ts": 1})
    assert bad.status == 500 and bad.headers["x-inngest-no-retry"] == "true"
    assert "user_id" in json.loads(bad.body)["message"]


def test_batched_events_reach_the_function():
    client = make_client()

    @client.function("batched", trigger=Signup)
    def batched(ctx: Context[Signup]) -> list:
        return [e.data.user_id for e in ctx.events]

    events = [{"name": "wire/signup", "data": {"user_id": f"u{i}"}, "id": f"e{i}", "ts": i} for i in range(3)]
    response = call(client, batched, events=events)
    assert json.loads(response.body) == ["u0", "u1", "u2"]


# -- byte-for-byte against the official Python SDK's captured replies ---------------------------


def test_ops_match_the_official_python_sdk_captures():
    from tests.sdk.conftest import FakeTransport

    transport = FakeTransport((200, {"ids": ["16e1a98d50a549b6bc370e17f372d480", "my-fixed-id"], "status": 200}))
    client = make_client("lab-app", transport=transport)

    @client.function("child", trigger=None)
    def child(ctx: Context) -> None:
        return None

    @client.function("capture", trigger="t/capture")
    def capture(ctx: Context) -> None:
        ctx.step.run("a", lambda: {"a": 1})
        ctx.step.wait_for_event("wait-approval", event="app/approved", timeout="1m",
                                if_="event.data.id == async.data.id")
        ctx.step.wait_for_event("wait-plain", event="app/other", timeout="1m")
        ctx.step.invoke("call-child", function=child, data={"hello": "world"}, timeout="5m")
        ctx.step.send_event("send-it", [{"name": "app/one", "data": {"x": 1}},
                                        {"name": "app/two", "data": {}, "id": "my-fixed-id"}])

    memos: dict = {}
    for captured, step in ((captures.PY_STEP_RUN, "a"), (captures.PY_WAIT_IF, "wait-approval"),
                           (captures.PY_WAIT_PLAIN, "wait-plain"), (captures.PY_INVOKE, "call-child"),
                           (captures.PY_SEND_EVENT, "send-it")):
        assert ops_of(call(client, capture, steps=memos)) == json.loads(captured), step
        memos[h(step)] = memo_data(None)
    assert ops_of(call(client, capture, disable=True, steps={})) == json.loads(captures.STEP_PLANNED)


def test_use_api_fetches_events_and_memos_from_the_server():
    from stepline.protocol.calls import build_call_request
    from stepline.protocol.jsoncanon import canonical_json
    from stepline.sdk.serve.handler import Handler, Request
    from tests.sdk.conftest import EVENT, FakeTransport

    events = [EVENT, {**EVENT, "id": "second", "data": {"n": 5}}]
    transport = FakeTransport((200, events), (200, {h("a"): memo_data(7)}))
    client = make_client("big-app", transport=transport, base_url="http://127.0.0.1:8288")

    @client.function("big", trigger="t/big")
    def big(ctx: Context) -> dict:
        a = ctx.step.run("a", lambda: 0)
        return {"a": a, "ns": [e.data["n"] for e in ctx.events], "event": ctx.event.data["n"]}

    body = build_call_request(run_id=RUN_ID, attempt=0, max_attempts=4, events=[EVENT], steps={}, stack=[],
                              disable_immediate=False, use_api=True, version=-1)
    url = f"http://h/api/inngest?fnId={big.composite_id}&stepId=step"
    response = Handler(client, framework="test").handle(Request("POST", url, {}, canonical_json(body)))
    assert json.loads(response.body) == {"a": 7, "ns": [2, 5], "event": 2}
    assert [r["url"] for r in transport.requests] == [
        f"http://127.0.0.1:8288/v0/runs/{RUN_ID}/batch", f"http://127.0.0.1:8288/v0/runs/{RUN_ID}/actions"]
