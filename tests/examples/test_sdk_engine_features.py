"""End-to-end scenarios for engine features that the SDK already speaks: cron triggers,
idempotency keys, wait_for_event, invoke and cancel_on, each through a real `stepline dev` on a
manual clock. (The SDK side of each is covered by tests/sdk at the wire level.)"""

from __future__ import annotations

import datetime
import threading
import uuid
from collections import Counter

import pytest

from examples.app import app as examples_app
from examples.app import client as examples_client
from examples.services import services
from stepline import Cancel, Client, Context, serve_wsgi
from stepline.engine.clock import ManualClock
from tests.sdk.harness import Stack, wait_for

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until_parked(stack: Stack, event_id: str) -> None:
    """Until the event's run is parked on its sleep or wait (so an event sent next cannot
    arrive before the run listens for it)."""
    run_id = wait_for(lambda: stack.runs(event_id) and stack.runs(event_id)[0]["run_id"], what="the run")
    store = stack.runtime.backend.store
    # Parked work shows as a pending op of the run; give the executor a moment either way.
    deadline = threading.Event()
    timer = threading.Timer(1.0, deadline.set)
    timer.start()
    wait_for(lambda: deadline.is_set() or store.load_run(run_id).pending, what="the run to park")
    timer.cancel()


def utc_ms(*args: int) -> int:
    return int(datetime.datetime(*args, tzinfo=datetime.timezone.utc).timestamp() * 1000)


# -- the example workflows ------------------------------------------------------------------------


def test_daily_digest_cron_fires_at_nine_every_day(tmp_path):
    clock = ManualClock(utc_ms(2027, 3, 1, 8, 59, 0))
    stack = Stack(examples_app, tmp_path, examples_client.app_id, clock=clock)
    try:
        subscribers = services.digest_subscribers()
        emails = [services.users[u]["email"] for u in subscribers]

        def digests(day: str) -> int:
            return sum(1 for e in emails for m in services.emails_to(e) if m["subject"] == f"Your digest for {day}")

        clock.advance(59_000)  # 08:59:59: not yet
        stack.settle()
        assert digests("2027-03-01") == 0
        clock.advance(2_000)  # 09:00:01
        wait_for(lambda: digests("2027-03-01") == len(emails), what="the 09:00 digests")
        clock.advance(DAY_MS)
        wait_for(lambda: digests("2027-03-02") == len(emails), what="the next day's digests")
        stack.settle()
        assert digests("2027-03-01") == len(emails)  # the first day's were not sent again
    finally:
        stack.close()


# -- durable operations beyond sleep ------------------------------------------------------------

client = Client("sdk-engine", dev=True)
counts: Counter[str] = Counter()
_lock = threading.Lock()


def bump(name: str) -> int:
    with _lock:
        counts[name] += 1
        return counts[name]


@client.function("approval", trigger="pending/order")
def approval(ctx: Context) -> dict:
    approved = ctx.step.wait_for_event("wait-approval", event="pending/approved", timeout="1h",
                                       if_="async.data.order_id == event.data.order_id")
    return {"approved_by": approved.data["by"] if approved else None}


@client.function("child", trigger=None)
def child(ctx: Context) -> dict:
    return {"double": ctx.step.run("double", lambda: ctx.event.data["n"] * 2)}


@client.function("parent", trigger="pending/parent")
def parent(ctx: Context) -> dict:
    return ctx.step.invoke("call-child", function=child, data={"n": ctx.event.data["n"]}, timeout="1h")


@client.function("cancellable", trigger="pending/start",
                 cancel_on=Cancel("pending/stop", if_="async.data.key == event.data.key"))
def cancellable(ctx: Context) -> str:
    ctx.step.sleep("long-wait", "7d")
    ctx.step.run("after", lambda: bump(f"after/{ctx.event.data['key']}"))
    return "finished"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(serve_wsgi(client), tmp_path_factory.mktemp("pending"), client.app_id)
    yield s
    s.close()


def test_wait_for_event_resumes_on_the_matching_event(stack):
    order = uid("o")
    [started] = stack.send({"name": "pending/order", "data": {"order_id": order}})
    wait_until_parked(stack, started)
    stack.send({"name": "pending/approved", "data": {"order_id": "someone-else", "by": "mallory"}},
               {"name": "pending/approved", "data": {"order_id": order, "by": "grace"}})
    run = stack.wait_run(started, status="Completed")
    assert run["output"] == {"approved_by": "grace"}


def test_wait_for_event_times_out_with_none(stack):
    [started] = stack.send({"name": "pending/order", "data": {"order_id": uid("o")}})
    wait_until_parked(stack, started)
    stack.clock.advance(HOUR_MS + 1_000)
    run = stack.wait_run(started, status="Completed")
    assert run["output"] == {"approved_by": None}


def test_invoke_returns_the_child_functions_result(stack):
    [started] = stack.send({"name": "pending/parent", "data": {"n": 21}})
    run = stack.wait_run(started, status="Completed")
    assert run["output"] == {"double": 42}


def test_cancel_on_cancels_the_matching_run(stack):
    key, other = uid("k"), uid("k")
    [mine] = stack.send({"name": "pending/start", "data": {"key": key}})
    [theirs] = stack.send({"name": "pending/start", "data": {"key": other}})
    for event_id in (mine, theirs):
        wait_until_parked(stack, event_id)
    stack.send({"name": "pending/stop", "data": {"key": key}})
    assert stack.wait_run(mine)["status"] == "Cancelled"
    stack.clock.advance(7 * DAY_MS + 1_000)
    assert stack.wait_run(theirs)["status"] == "Completed"
    assert counts[f"after/{key}"] == 0 and counts[f"after/{other}"] == 1
