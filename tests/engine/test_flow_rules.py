"""The flow-control rules' arithmetic and their crash paths, on the local store with a manual
clock (milliseconds, no app): GCRA spacing for throttle and rate limit, buffers left half-done,
stale timer messages. End-to-end behaviour is in tests/e2e/test_flow_control.py."""

from __future__ import annotations

import pytest

from stepline.engine import messages
from stepline.engine.flow import ratelimit, throttle
from stepline.engine.flow.admission import FlowControl
from stepline.engine.flow.buffers import event_doc, event_ref
from stepline.engine.flow.concurrency import limits_for
from stepline.engine.flow.keys import rule_key
from stepline.engine.flow.priority import factor_ms
from stepline.engine.runs import RunStarter
from stepline.engine.scheduling import Waker
from stepline.local import local_backend
from tests.contract.helpers import make_event, make_function, take

H = 3600 * 1000


@pytest.fixture
def local(tmp_path, clock):
    with local_backend(str(tmp_path / "flow.db"), clock) as backend:
        yield backend


@pytest.fixture
def flow(local, clock):
    b = local
    starter = RunStarter(b.runs, b.waiters, clock)
    waker = Waker(b.queue, b.timers, clock)
    return FlowControl(b.flow_state, b.key_claims, b.runs, b.events, b.apps, b.queue, waker, clock, starter,
                       cancel=no_cancel)


def stored(local, clock, **fields):
    """An event as ingest hands it to flow control: stored already."""
    [event] = local.events.save_events([make_event(clock, **fields)], clock.now_ms())
    return event


def no_cancel(run_id: str, reason: str) -> None:
    raise AssertionError(f"no rule here cancels a run (run {run_id}: {reason})")


def fn_with(**config):
    fn = make_function("shop-fn", ["shop/order.created"])
    fn.config.update(config)
    return fn


def ctx(**data):
    return {"event": {"name": "shop/order.created", "data": data}}


def test_throttle_spaces_starts_after_the_first_limit(local, clock):
    fn = fn_with(throttle={"limit": 2, "period": "1s", "burst": 1})
    now = clock.now_ms()

    starts = [throttle.start_at(local.store, fn, ctx(), now) - now for _ in range(5)]

    assert starts == [0, 0, 500, 1000, 1500]


def test_throttle_burst_and_keys(local, clock):
    fn = fn_with(throttle={"limit": 1, "period": "10s", "burst": 2, "key": "event.data.user"})
    now = clock.now_ms()

    a = [throttle.start_at(local.store, fn, ctx(user="a"), now) - now for _ in range(3)]
    b = throttle.start_at(local.store, fn, ctx(user="b"), now) - now

    assert a == [0, 0, 10_000] and b == 0


def test_rate_limit_admits_a_tenth_at_once_then_one_per_interval(local, clock):
    fn = fn_with(rateLimit={"limit": 10, "period": "1m"})
    now = clock.now_ms()

    assert [ratelimit.allows(local.store, fn, ctx(), now) for _ in range(3)] == [True, True, False]
    assert ratelimit.allows(local.store, fn, ctx(), now + 5_999) is False
    assert ratelimit.allows(local.store, fn, ctx(), now + 6_000) is True


def test_a_rate_limit_key_that_is_false_exempts_the_event(local, clock):
    fn = fn_with(rateLimit={"limit": 1, "period": "1h", "key": "event.data.vip == true ? false : 'all'"})
    now = clock.now_ms()

    assert ratelimit.allows(local.store, fn, ctx(vip=False), now)
    assert not ratelimit.allows(local.store, fn, ctx(vip=False), now)
    assert all(ratelimit.allows(local.store, fn, ctx(vip=True), now) for _ in range(3))


def test_a_batch_sealed_by_a_crashed_writer_runs_before_the_next_batch(local, flow, clock):
    fn = fn_with(batchEvents={"maxSize": 3, "timeout": "1h"})
    local.store.put_app(make_app_for(fn), [fn])
    first, second = make_event(clock), stored(local, clock)
    key = rule_key("batch", fn.fn_id, None, ctx())
    now = clock.now_ms()
    # The writer that filled this batch sealed it and died before starting its run. Its first
    # event is held whole, as batches held them before they held references.
    sealed = {"fn_id": fn.fn_id, "batch_id": first.internal_id, "events": [event_doc(first), event_ref(second)],
              "first_at": now, "fire_at": now + H, "bytes": 10, "sealed": True}
    local.store.put_flow_state(key, sealed, expect_version=None, expires_at=now + 2 * H, now_ms=now)

    late = stored(local, clock)
    assert flow.on_event(fn, late) == []

    [started] = calls(local)
    run = local.store.get_run(started["run_id"])
    assert run.event_ids == [first.internal_id, second.internal_id]
    assert local.store.get_flow_state(key, now).data["events"] == [event_ref(late)]


def test_a_batch_timer_for_a_batch_that_already_ran_does_nothing(local, flow, clock):
    fn = fn_with(batchEvents={"maxSize": 2, "timeout": "1h"})
    local.store.put_app(make_app_for(fn), [fn])
    events = [stored(local, clock) for _ in range(3)]
    for event in events:
        flow.on_event(fn, event)
    key = rule_key("batch", fn.fn_id, None, ctx())
    assert len(calls(local)) == 1  # the first two, full

    clock.advance(H)
    timers = [m for m in take(local.queue) if m["kind"] == messages.BATCH]
    assert [m["batch_id"] for m in timers] == [events[0].internal_id, events[2].internal_id]
    flow.batching.fire(messages.parse(timers[0]))
    assert calls(local) == []
    flow.batching.fire(messages.parse(timers[1]))
    [started] = calls(local)
    assert local.store.get_run(started["run_id"]).event_ids == [events[2].internal_id]


def test_a_retried_event_that_opens_a_second_batch_gets_a_run_of_its_own(local, flow, clock):
    """The first event of a batch that already ran comes again (a retried request): the new
    batch it opens must not collide with the first batch's run, or its other events are lost."""
    fn = fn_with(batchEvents={"maxSize": 2, "timeout": "1h"})
    first, second, third = (stored(local, clock) for _ in range(3))
    flow.on_event(fn, first)
    flow.on_event(fn, second)
    flow.on_event(fn, first)
    flow.on_event(fn, third)

    runs = [local.store.get_run(m["run_id"]) for m in calls(local)]
    assert [r.event_ids for r in runs] == [
        [first.internal_id, second.internal_id],
        [first.internal_id, third.internal_id],
    ]


def test_a_stale_debounce_message_leaves_the_moved_window_alone(local, flow, clock):
    fn = fn_with(debounce={"period": "1h"})
    local.store.put_app(make_app_for(fn), [fn])
    key = rule_key("debounce", fn.fn_id, None, ctx())
    flow.on_event(fn, stored(local, clock))
    first_at = local.store.get_flow_state(key, clock.now_ms()).data["fire_at"]
    clock.advance(30 * 60 * 1000)
    last = stored(local, clock)
    flow.on_event(fn, last)

    clock.advance(31 * 60 * 1000)  # past the first window's time, not the second's
    flow.debounce.fire(messages.Debounce(key=key, at=first_at))
    assert local.store.get_flow_state(key, clock.now_ms()) is not None

    clock.advance(30 * 60 * 1000)
    fire_at = local.store.get_flow_state(key, clock.now_ms()).data["fire_at"]
    flow.debounce.fire(messages.Debounce(key=key, at=fire_at))
    started = calls(local)
    assert [local.store.get_run(m["run_id"]).event_ids for m in started] == [[last.internal_id]]


def test_idempotency_lets_a_retried_start_of_the_same_run_through(local, flow, clock):
    fn = fn_with(idempotency="event.data.order")
    event = stored(local, clock, data={"order": "o-1"})

    assert len(flow.on_event(fn, event)) == 1
    # The same event again (a retried request): the same run, its start message again.
    assert len(flow.start(fn, [event])) == 1
    # Another event with the same key: nothing.
    assert flow.on_event(fn, stored(local, clock, data={"order": "o-1"})) == []


def test_priority_is_clamped_seconds_and_anything_else_is_zero():
    config = {"priority": {"run": "event.data.p"}}
    assert factor_ms(config, {"data": {"p": 30}}) == 30_000
    assert factor_ms(config, {"data": {"p": 9999}}) == 600_000
    assert factor_ms(config, {"data": {"p": -9999}}) == -600_000
    assert factor_ms(config, {"data": {"p": "high"}}) == 0
    assert factor_ms(config, {"data": {}}) == 0
    assert factor_ms({}, {"data": {"p": 30}}) == 0


def test_concurrency_keys_by_scope():
    fn = fn_with(concurrency=[{"limit": 5, "key": "event.data.user"}, {"limit": 2}])
    other = fn_with(concurrency=[{"limit": 3, "key": "event.data.user", "scope": "account"}])
    other.fn_id = "shop-other"

    tight, loose = limits_for(fn, {"data": {"user": "u1"}})
    assert (tight.limit, loose.limit) == (2, 5)  # the tightest first
    assert limits_for(fn, {"data": {"user": "u2"}})[1].key != loose.key
    # An account-wide key is shared by every function whose key gives the same value.
    shared = fn_with(concurrency=[{"limit": 3, "key": "event.data.user", "scope": "account"}])
    assert limits_for(other, {"data": {"user": "u1"}}) == limits_for(shared, {"data": {"user": "u1"}})
    assert limits_for(fn_with(concurrency=[{"limit": 0}]), {}) == []


def calls(backend) -> list[dict]:
    """The run starts on the queue now (timer messages aside)."""
    return [m for m in take(backend.queue) if m["kind"] == messages.CALL]


def make_app_for(fn):
    from tests.contract.helpers import make_app

    return make_app(fn.app_id, [fn.fn_id])
