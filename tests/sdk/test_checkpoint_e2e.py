"""Our SDK against a real `stepline dev` with checkpointing on and off (SQLite, real HTTP): the
same functions give the same results either way; only the number of calls differs. A server
that offers no checkpointing gets one call per step, and so does a function that turns it off."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest

from stepline import AsyncContext, Client, Context, serve_wsgi
from stepline.settings import Settings
from tests.e2e.call_log import CallLog
from tests.sdk.harness import Stack

APP_ID = "sdk-checkpoint"
client = Client(APP_ID, dev=True)
counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str) -> str:
    with _lock:
        counts[name] += 1
    return name


@client.function("sync-chain", trigger="sdk-checkpoint/sync", retries=0)
def sync_chain(ctx: Context) -> list:
    k = ctx.event.data["key"]
    return [ctx.step.run(f"s{i}", bump, f"{k}/s{i}") for i in range(8)]


@client.function("async-chain", trigger="sdk-checkpoint/async", retries=0)
async def async_chain(ctx: AsyncContext) -> list:
    k = ctx.event.data["key"]

    async def one(name: str) -> str:
        return bump(name)

    return [await ctx.step.run(f"s{i}", one, f"{k}/s{i}") for i in range(8)]


@client.function("plain-chain", trigger="sdk-checkpoint/plain", retries=0, checkpointing=False)
def plain_chain(ctx: Context) -> list:
    k = ctx.event.data["key"]
    return [ctx.step.run(f"s{i}", bump, f"{k}/s{i}") for i in range(8)]


@pytest.fixture(scope="module", params=[True, False], ids=["server-checkpoints", "server-without-checkpointing"])
def stack(request, tmp_path_factory):
    calls = CallLog()
    settings = Settings(mode="dev", retry_base_ms=1_000, retry_cap_ms=10_000, checkpointing=request.param)
    s = Stack(serve_wsgi(client), tmp_path_factory.mktemp("sdk-checkpoint"), APP_ID, settings=settings, caller=calls)
    s.checkpointing = request.param
    s.calls = calls
    try:
        yield s
    finally:
        s.close()


@pytest.mark.parametrize("event", ["sdk-checkpoint/sync", "sdk-checkpoint/async", "sdk-checkpoint/plain"])
def test_same_results_one_call_or_one_call_per_step(stack, event):
    k = uuid.uuid4().hex[:8]
    [event_id] = stack.send({"name": event, "data": {"key": k}})
    run = stack.wait_run(event_id, status="Completed")
    assert run["output"] == [f"{k}/s{i}" for i in range(8)]
    assert [counts[f"{k}/s{i}"] for i in range(8)] == [1] * 8
    calls = stack.calls.for_run(run["run_id"])
    checkpointed = stack.checkpointing and not event.endswith("plain")
    assert len(calls) == (1 if checkpointed else 9), calls
    assert all(c.streamed for c in calls) == checkpointed


def test_a_checkpointed_run_stops_at_the_step_limit(tmp_path):
    """Steps reported on the stream count against max_steps_per_run as any others: the run
    fails naming the limit, with the steps before it stored."""
    settings = Settings(mode="dev", retry_base_ms=1_000, retry_cap_ms=10_000, max_steps_per_run=5)
    stack = Stack(serve_wsgi(client), tmp_path, APP_ID, settings=settings)
    try:
        k = uuid.uuid4().hex[:8]
        [event_id] = stack.send({"name": "sdk-checkpoint/sync", "data": {"key": k}})
        run = stack.wait_run(event_id, status="Failed")
        assert run["error"]["name"] == "StepLimitExceeded", run
        state = stack.runtime.backend.store.load_run(run["run_id"])
        assert [m.value for m in sorted(state.memos, key=lambda m: m.seq)] == [
            {"data": f"{k}/s{i}"} for i in range(5)
        ]
    finally:
        stack.close()
