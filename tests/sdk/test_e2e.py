"""Our SDK against a real `stepline dev` (SQLite, real HTTP, manual clock): steps, sleeps,
parallel branches, retries, failures, failure handlers and events sent from steps."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest

from stepline import AsyncContext, Client, Context, EventData, NonRetriableError, serve_wsgi
from tests.sdk.harness import Stack, wait_for

APP_ID = "sdk-e2e"
HOUR_MS = 3600 * 1000

client = Client(APP_ID, dev=True)
counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str, key: str) -> int:
    with _lock:
        counts[f"{name}/{key}"] += 1
        return counts[f"{name}/{key}"]


class Job(EventData, name="sdk-e2e/job"):
    key: str
    x: int = 1


@client.function("steps", trigger=Job)
def steps(ctx: Context[Job]) -> dict:
    job = ctx.event.data
    a = ctx.step.run("a", lambda: bump("a", job.key) and job.x)
    b = ctx.step.run("b", lambda: bump("b", job.key) and a * 10)
    return {"a": a, "b": b, "run_id": ctx.run_id}


@client.function("napper", trigger="sdk-e2e/nap")
def napper(ctx: Context) -> str:
    key = ctx.event.data["key"]
    ctx.step.run("before", lambda: bump("before", key))
    ctx.step.sleep("nap", "2h")
    ctx.step.run("after", lambda: bump("after", key))
    return "rested"


@client.function("fan", trigger="sdk-e2e/fan")
def fan(ctx: Context) -> dict:
    key = ctx.event.data["key"]
    left, right = ctx.step.parallel(
        lambda: ctx.step.run("left", lambda: bump("left", key) and "L"),
        lambda: ctx.step.run("right", lambda: bump("right", key) and "R"),
    )
    joined = ctx.step.run("join", lambda: bump("join", key) and left + right)
    return {"joined": joined}


@client.function("flaky", trigger="sdk-e2e/flaky", retries=3)
def flaky(ctx: Context) -> str:
    key = ctx.event.data["key"]

    def unreliable() -> str:
        n = bump("unreliable", key)
        if n < 3:
            raise ConnectionError(f"transient failure {n}")
        return f"ok after {n}"

    return ctx.step.run("unreliable", unreliable)


@client.function("refuser", trigger="sdk-e2e/refuse", retries=5,
                 on_failure=lambda ctx: bump("on-failure", ctx.failure.event.data["key"]) and ctx.failure.message)
def refuser(ctx: Context) -> None:
    bump("refuser", ctx.event.data["key"])
    raise NonRetriableError("refused for good")


class Ping(EventData, name="sdk-e2e/ping"):
    key: str


@client.function("pinger", trigger="sdk-e2e/send")
def pinger(ctx: Context) -> list:
    return ctx.step.send_event("ping", Ping(key=ctx.event.data["key"]))


@client.function("ponger", trigger=Ping)
async def ponger(ctx: AsyncContext[Ping]) -> str:
    return await ctx.step.run("pong", lambda: bump("pong", ctx.event.data.key) and "pong")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(serve_wsgi(client), tmp_path_factory.mktemp("sdk-e2e"), APP_ID)
    yield s
    s.close()


def key() -> str:
    return uuid.uuid4().hex[:10]


def test_steps_run_once_each_and_the_output_is_stored(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/job", "data": {"key": k, "x": 4}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"a": 4, "b": 40, "run_id": run["run_id"]}
    assert counts[f"a/{k}"] == 1 and counts[f"b/{k}"] == 1


def test_a_sleep_wakes_when_the_servers_clock_passes_it(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/nap", "data": {"key": k}})
    wait_for(lambda: counts[f"before/{k}"] == 1, what="the step before the sleep")
    run_id = stack.running(event_id)["run_id"]
    wait_for(lambda: stack.runtime.backend.store.load_run(run_id).pending, what="the sleep to be scheduled")
    stack.clock.advance(HOUR_MS)
    stack.settle()
    assert counts[f"after/{k}"] == 0 and stack.running(event_id)
    stack.clock.advance(HOUR_MS)
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == "rested" and counts[f"before/{k}"] == 1 and counts[f"after/{k}"] == 1


def test_parallel_branches_each_run_once(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/fan", "data": {"key": k}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == {"joined": "LR"}
    assert [counts[f"{s}/{k}"] for s in ("left", "right", "join")] == [1, 1, 1]


def test_a_flaky_step_is_retried_until_it_succeeds(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/flaky", "data": {"key": k}})
    # Retries wait out a backoff on the server's clock: move it along while polling.
    run = stack.wait_run(event_id, status="Completed", nudge_ms=5_000)
    assert run["output"] == "ok after 3" and counts[f"unreliable/{k}"] == 3


def test_non_retriable_error_fails_the_run_once_and_the_failure_handler_runs(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/refuse", "data": {"key": k}})
    run = stack.wait_run(event_id, status="Failed")
    assert run["error"]["message"] == "refused for good" and counts[f"refuser/{k}"] == 1
    wait_for(lambda: counts[f"on-failure/{k}"] == 1, what="the on_failure handler")


def test_events_sent_from_a_step_start_other_functions(stack):
    k = key()
    [event_id] = stack.send({"name": "sdk-e2e/send", "data": {"key": k}})
    run = stack.wait_run(event_id, status="Completed")
    [ping_id] = run["output"]
    [pong] = stack.wait_runs(ping_id, 1)
    assert pong["status"] == "Completed" and pong["output"] == "pong"
    assert counts[f"pong/{k}"] == 1
