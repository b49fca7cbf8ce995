"""``stepline.testing``: a function run to its end in-process, with mocks, a manual clock and a
record of every step."""

from __future__ import annotations

import datetime

import pytest

from stepline import AsyncContext, Context, EventData, NonRetriableError, RetryAfterError, StepError, cron, testing
from stepline.engine.clock import ManualClock
from tests.sdk.conftest import make_client

DAY_MS = 24 * 3600 * 1000


class Signup(EventData, name="testing/signup"):
    user_id: str


@pytest.fixture
def client():
    return make_client("testing-app")


def test_steps_run_once_sleeps_move_the_clock_and_everything_is_recorded(client):
    calls: list[str] = []

    @client.function("drip", trigger=Signup)
    def drip(ctx: Context[Signup]) -> dict:
        email = ctx.step.run("get-email", lambda: calls.append("get") or f"{ctx.event.data.user_id}@x.test")
        ctx.step.run("send-welcome", lambda: calls.append("welcome") or {"to": email})
        ctx.step.sleep("wait-a-day", "24h")
        ctx.step.sleep_until("wait-for-monday", datetime.datetime.fromtimestamp(
            (1_800_000_000_000 + 3 * DAY_MS) / 1000, tz=datetime.timezone.utc))
        ctx.step.run("send-tips", lambda: calls.append("tips"))
        return {"email": email}

    clock = ManualClock(1_800_000_000_000)
    result = testing.run(drip, Signup(user_id="ada"), clock=clock)
    assert result.status == "Completed" and result.output == {"email": "ada@x.test"}
    assert calls == ["get", "welcome", "tips"]  # each body once, however many replays
    assert result.step_ids == ["get-email", "send-welcome", "wait-a-day", "wait-for-monday", "send-tips"]
    assert result.step("wait-a-day").kind == "sleep" and result.step("wait-a-day").name == "24h"
    assert result.step("send-welcome").output == {"to": "ada@x.test"}
    assert clock.now_ms() == 1_800_000_000_000 + 3 * DAY_MS
    assert result.calls == 6


def test_mocks_replace_step_bodies_and_can_fail_them(client):
    @client.function("charge", trigger="testing/charge", retries=1)
    def charge(ctx: Context) -> dict:
        try:
            ctx.step.run("charge-card", lambda: pytest.fail("the real card must not be charged"))
        except StepError as err:
            refund = ctx.step.run("notify", lambda: "sent")
            return {"declined": err.message, "notify": refund}
        return {"declined": None}

    ok = testing.run(charge, {"name": "testing/charge"}, mocks={"charge-card": {"id": "ch_1"}})
    assert ok.output == {"declined": None} and ok.step("charge-card").mocked
    declined = testing.run(charge, {"name": "testing/charge"}, mocks={"charge-card": ValueError("card declined")})
    assert declined.output == {"declined": "card declined", "notify": "sent"}
    assert declined.step("charge-card").attempts == 2  # retries=1: two attempts, then StepFailed
    assert declined.step("charge-card").error["name"] == "ValueError"


def test_retries_until_a_flaky_step_succeeds(client):
    attempts = {"n": 0}

    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("try again")
        return "ok"

    @client.function("flaky", trigger="testing/flaky", retries=3)
    def flaky_fn(ctx: Context) -> str:
        return ctx.step.run("flaky", flaky)

    result = testing.run(flaky_fn, {"name": "testing/flaky"})
    assert result.output == "ok" and result.step("flaky").attempts == 3


def test_function_failures_retry_then_fail_and_non_retriable_fails_at_once(client):
    runs = {"boom": 0, "refuse": 0}

    @client.function("boom", trigger="testing/boom", retries=2)
    def boom(ctx: Context) -> None:
        runs["boom"] += 1
        raise RuntimeError("always")

    @client.function("refuse", trigger="testing/refuse", retries=5)
    def refuse(ctx: Context) -> None:
        runs["refuse"] += 1
        raise NonRetriableError("bad input")

    failed = testing.run(boom, {"name": "testing/boom"})
    assert failed.status == "Failed" and failed.error["message"] == "always" and runs["boom"] == 3
    refused = testing.run(refuse, {"name": "testing/refuse"})
    assert refused.status == "Failed" and runs["refuse"] == 1


def test_retry_after_moves_the_clock(client):
    state = {"n": 0}

    @client.function("later", trigger="testing/later")
    def later(ctx: Context) -> str:
        state["n"] += 1
        if state["n"] == 1:
            raise RetryAfterError("rate limited", "2h")
        return "done"

    clock = ManualClock(1_800_000_000_000)
    result = testing.run(later, {"name": "testing/later"}, clock=clock)
    assert result.output == "done" and clock.now_ms() == 1_800_000_000_000 + 2 * 3600 * 1000


def test_wait_for_event_and_invoke_take_their_results_from_mocks(client):
    class Approved(EventData, name="testing/approved"):
        by: str

    @client.function("approve", trigger="testing/approve")
    def approve(ctx: Context) -> dict:
        approval = ctx.step.wait_for_event("wait-approval", event=Approved, timeout="2d")
        second = ctx.step.wait_for_event("wait-second", event="testing/second", timeout="1h")
        score = ctx.step.invoke("score", function="risk-score", data={"amount": 5})
        return {"by": approval.data.by, "second": second, "score": score}

    clock = ManualClock(0)
    result = testing.run(approve, {"name": "testing/approve"}, clock=clock,
                         mocks={"wait-approval": Approved(by="grace"), "wait-second": None, "score": 0.2})
    assert result.output == {"by": "grace", "second": None, "score": 0.2}
    assert clock.now_ms() == 3600 * 1000  # the second wait timed out
    assert result.step("score").opts["function_id"] == "testing-app-risk-score"
    with pytest.raises(testing.TestingError, match="wait-approval"):
        testing.run(approve, {"name": "testing/approve"})


def test_wait_for_signal_takes_the_data_sent_or_times_out_from_mocks(client):
    @client.function("signalled", trigger="testing/signalled")
    def signalled(ctx: Context) -> dict:
        got = ctx.step.wait_for_signal("wait-ok", signal=f"ok/{ctx.event.data['id']}", timeout="3d")
        late = ctx.step.wait_for_signal("wait-late", signal="late", timeout="2h", on_conflict="replace")
        return {"got": [got.signal, got.data], "late": late}

    clock = ManualClock(0)
    result = testing.run(signalled, {"name": "testing/signalled", "data": {"id": 7}}, clock=clock,
                         mocks={"wait-ok": {"approved": True}, "wait-late": None})
    assert result.output == {"got": ["ok/7", {"approved": True}], "late": None}
    assert clock.now_ms() == 2 * 3600 * 1000  # the second wait timed out
    assert result.step("wait-ok").opts == {"signal": "ok/7", "timeout": "3d", "conflict": "fail"}
    assert result.step("wait-late").opts["conflict"] == "replace"
    with pytest.raises(testing.TestingError, match="waits for signal 'ok/7'"):
        testing.run(signalled, {"name": "testing/signalled", "data": {"id": 7}})


def test_parallel_branches_and_sent_events(client):
    @client.function("fan-out", trigger=cron("0 9 * * *"))
    def fan_out(ctx: Context) -> dict:
        a, b = ctx.step.parallel(lambda: ctx.step.run("a", lambda: 1), lambda: ctx.step.run("b", lambda: 2))
        ids = ctx.step.send_event("notify", [Signup(user_id="u1"), {"name": "testing/other", "data": {"a": a}}])
        return {"sum": a + b, "ids": ids, "trigger": ctx.event.name}

    result = testing.run(fan_out)
    assert result.output == {"sum": 3, "ids": ["test-event-1", "test-event-2"], "trigger": "inngest/scheduled.timer"}
    assert [e["name"] for e in result.sent_events] == ["testing/signup", "testing/other"]


def test_the_step_after_a_parallel_group_runs_inside_discovery_as_on_the_engine(client):
    after: list[int] = []

    @client.function("join", trigger="testing/join")
    def join(ctx: Context) -> int:
        a, b = ctx.step.parallel(lambda: ctx.step.run("a", lambda: 1), lambda: ctx.step.run("b", lambda: 2))
        return ctx.step.run("after", lambda: after.append(1) or a + b)

    result = testing.run(join, {"name": "testing/join"})
    assert result.output == 3 and after == [1]
    # Discovery plans the group, one call per branch, then a discovery told to run steps (nothing
    # is out) runs `after` inline, and the last one returns: the engine's calls
    # (tests/engine/test_parallel_join.py), not one more for `after` on its own.
    assert result.calls == 5


def test_async_functions(client):
    @client.function("async", trigger="testing/async")
    async def async_fn(ctx: AsyncContext) -> int:
        a = await ctx.step.run("a", lambda: 20)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=5))
        b, c = await ctx.step.parallel(lambda: ctx.step.run("b", lambda: 1), lambda: ctx.step.run("c", lambda: 2))
        return a + b + c

    assert testing.run(async_fn, {"name": "testing/async"}).output == 23


def test_on_failure_handlers(client):
    @client.function("fragile", trigger=Signup, on_failure=lambda ctx: {
        "alert": f"{ctx.failure.function_id} failed for {ctx.failure.event.data['user_id']}: {ctx.failure.message}"})
    def fragile(ctx: Context[Signup]) -> None:
        raise RuntimeError("oops")

    event = testing.failure_event(fragile, RuntimeError("oops"), Signup(user_id="u9"))
    result = testing.run(fragile.failure_function, event)
    assert result.output == {"alert": "testing-app-fragile failed for u9: oops"}
