"""Flow control end to end: the official Python SDK app's `fc-*` functions on a real
`stepline dev`, on SQLite and on the AWS adapters (moto), under real concurrency.

Each stack runs several executors at once, as AWS runs several executor Lambdas: the dev
runtime's own worker threads plus a second engine with workers of its own on the same backend
(its own function cache and id generator, as a separate Lambda container has).

The clock is real time that a test can also jump forward, so hour-long debounce and batch
windows are tested in seconds on the same stack (those tests come last: they move the clock on
for everything after them). On AWS their timers are EventBridge Scheduler schedules, fired by the
driver's pump on this clock, as windows longer than SQS's 15-minute delay are in production.
"""

from __future__ import annotations

import time
import uuid

import pytest

import threading

from stepline.dev.driver import LocalDriver
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.core import Engine
from stepline.engine.flow.concurrency import limits_for
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, SdkApp, Stepline, free_port, http, wait_for



MIN_MS = 60_000


class JumpingClock:
    """Real time plus however far a test has jumped ahead."""

    def __init__(self) -> None:
        self._offset_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return time.time_ns() // 1_000_000 + self._offset_ms

    def advance(self, ms: int) -> None:
        with self._lock:
            self._offset_ms += ms


class SecondExecutor(LocalDriver):
    """Another executor on the same backend, as a second Lambda: workers only (the first
    runtime fires the timers, as EventBridge Scheduler does on AWS)."""

    def start(self) -> None:
        for i in range(self.workers):
            self._spawn(self._work, f"second-executor-{i}")


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def fc(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"fc-{request.param}")
    port, app_port = free_port(), free_port()
    settings = Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000)
    options = DevOptions(port=port, db_path=str(tmp / "dev.db"), backend=request.param, workers=3,
                         app_urls=[f"http://127.0.0.1:{app_port}/api/inngest"])
    runtime = DevRuntime(options, settings, clock=JumpingClock()).start()
    second = SecondExecutor(Engine(runtime.backend, settings, clock=runtime.clock), workers=3)
    second.start()
    app = SdkApp(runtime.url, port=app_port)
    wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
    try:
        yield Stepline(runtime), app
    finally:
        app.stop()
        second.stop()
        runtime.stop()


def uid() -> str:
    return uuid.uuid4().hex[:10]


def log(app: SdkApp, group: str) -> list:
    return http("GET", f"http://127.0.0.1:{app.port}/fc/log/{group}")[1]


def done(stepline: Stepline, ids: list[str], timeout_s: float = 40.0) -> list[dict]:
    """The (first) run of each event once all have ended. Polled gently: on moto every poll
    takes the request lock the executors need."""
    def finished() -> list[dict] | None:
        runs = [stepline.runs(i) for i in ids]
        if all(r and r[0]["status"] in ("Completed", "Failed", "Cancelled") for r in runs):
            return [r[0] for r in runs]
        return None

    return wait_for(finished, timeout_s, interval_s=0.25, what=f"the runs of {len(ids)} events")


def test_concurrency_limits_steps_per_key_and_per_function(fc):
    stepline, app = fc
    group = uid()
    users = [f"u{i}" for i in range(3)]
    events = [{"name": "fc/limited", "data": {"group": group, "user": u, "key": f"{group}-{u}-{n}"}}
              for n in range(2) for u in users]

    ids = stepline.send(*events)
    runs = done(stepline, ids)

    assert [r["status"] for r in runs] == ["Completed"] * len(events)
    counters = app.counters()
    # limit 2 for the function, 1 per user: never more steps at once, and the limit is used.
    assert counters[f"fc-peak/{group}"] == 2
    assert max(counters[f"fc-peak/{group}/{u}"] for u in users) == 1
    # Nothing was run twice by copies of waiting messages.
    for event in events:
        key = event["data"]["key"]
        assert app.count("fc-limited", "first", key) == 1 and app.count("fc-limited", "second", key) == 1


def test_sleeping_runs_hold_no_slot(fc):
    stepline, app = fc
    group = uid()

    ids = stepline.send(*[{"name": "fc/napper", "data": {"group": group, "key": f"r{i}"}} for i in range(3)])
    runs = done(stepline, ids)

    assert [r["status"] for r in runs] == ["Completed"] * 3
    order = log(app, group)
    # Limit 1 and a 2 s sleep between two steps: the run that went first was asleep, not
    # holding the slot, when the next run took its first step.
    first = order[0].split(":")[0]
    assert order[0].endswith(":before") and order[1].endswith(":before") and not order[1].startswith(first), order
    assert order.index(f"{first}:after") > 1, order
    assert sorted(order) == sorted(f"r{i}:{s}" for i in range(3) for s in ("before", "after"))


def test_priority_orders_the_work_waiting_behind_a_limit(fc):
    stepline, app = fc
    group = uid()
    store = stepline.runtime.backend.store
    [limit] = limits_for(store.get_function(f"{APP_ID}-fc-prioritized"), {})
    [blocker] = stepline.send({"name": "fc/prioritized", "data": {"group": group, "key": "blocker", "hold": True}})
    wait_for(lambda: log(app, group) == ["blocker"], what="the blocker to hold the slot")

    waiting = [{"name": "fc/prioritized", "data": {"group": group, "key": f"low-{i}", "priority": 0}} for i in range(3)]
    waiting += [{"name": "fc/prioritized", "data": {"group": group, "key": f"high-{i}", "priority": 300}} for i in range(3)]
    ids = stepline.send(*waiting)  # the low ones first, and first on the queue
    wait_for(lambda: len(store.slot_view(limit.key, 20).line) >= 6, interval_s=0.1, what="all six to wait in line")
    http("POST", f"http://127.0.0.1:{app.port}/fc/open/{group}")
    done(stepline, [blocker, *ids])

    order = log(app, group)
    assert order[0] == "blocker"
    assert sorted(order[1:4]) == ["high-0", "high-1", "high-2"], order
    assert sorted(order[4:]) == ["low-0", "low-1", "low-2"], order


def test_a_slot_held_by_a_crashed_executor_is_recovered(fc):
    stepline, app = fc
    store, clock = stepline.runtime.backend.store, stepline.runtime.clock
    [limit] = limits_for(store.get_function(f"{APP_ID}-fc-prioritized"), {})
    now = clock.now_ms()
    # An executor took the only slot and died: nobody will release it.
    assert store.take_slot(limit.key, 0, "crashed-executor", now + 60_000, now)
    group = uid()

    [event] = stepline.send({"name": "fc/prioritized", "data": {"group": group, "key": "after-crash"}})
    wait_for(lambda: store.slot_view(limit.key, 10).line, interval_s=0.1, what="the run to wait in line")
    assert log(app, group) == []

    clock.advance(61_000)  # the dead holder's lease runs out
    [run] = done(stepline, [event])
    assert run["status"] == "Completed" and log(app, group) == ["after-crash"]


def test_throttle_delays_starts_but_runs_them_all(fc):
    stepline, app = fc
    group = uid()

    sent = time.time()
    ids = stepline.send(*[{"name": "fc/throttled", "data": {"group": group, "key": f"{group}-{i}"}} for i in range(4)])
    runs = done(stepline, ids)

    assert [r["status"] for r in runs] == ["Completed"] * 4
    starts = sorted(log(app, group))
    assert len(starts) == 4
    # Two per second: two start at once, the other two are held back half a second and a
    # second (to whole seconds: queue delays are whole seconds).
    assert starts[2] - sent >= 0.9, [s - sent for s in starts]


def test_rate_limit_starts_no_run_beyond_the_limit_but_keeps_the_events(fc):
    stepline, app = fc
    a, b = f"a-{uid()}", f"b-{uid()}"
    events = [{"name": "fc/rate-limited", "data": {"user": a, "key": a}} for _ in range(3)]
    events.append({"name": "fc/rate-limited", "data": {"user": b, "key": b}})

    ids = stepline.send(*events)
    # The decision is made while the events are accepted: a run beyond the limit would exist
    # by now.
    assert stepline.runs(ids[1]) == [] and stepline.runs(ids[2]) == []
    first_a, b_run = done(stepline, [ids[0], ids[3]])

    assert first_a["status"] == "Completed" and b_run["status"] == "Completed"
    assert stepline.runs(ids[1]) == [] and stepline.runs(ids[2]) == []
    for event_id in ids:  # every event is stored and listed, run or not
        status, body = http("GET", f"{stepline.url}/v1/events/{event_id}")
        assert status == 200 and body["data"]["name"] == "fc/rate-limited"
    assert app.count("fc-rate-limited", "work", a) == 1


def test_idempotency_key_allows_one_run_per_key(fc):
    stepline, app = fc
    order, other = f"o-{uid()}", f"o-{uid()}"

    [first] = stepline.send({"name": "fc/idempotent", "data": {"order": order, "key": order}})
    [again] = stepline.send({"name": "fc/idempotent", "data": {"order": order, "key": order}})
    [third] = stepline.send({"name": "fc/idempotent", "data": {"order": other, "key": other}})
    done(stepline, [first, third])

    assert again != first and stepline.runs(again) == []
    assert app.count("fc-idempotent", "charge", order) == 1
    assert app.count("fc-idempotent", "charge", other) == 1


def test_singleton_skip_starts_nothing_while_a_run_of_the_key_lives(fc):
    stepline, app = fc
    user, other = f"u-{uid()}", f"u-{uid()}"
    [first] = stepline.send({"name": "fc/single-skip", "data": {"user": user, "key": user, "hold_s": 3600}})
    wait_for(lambda: app.count("fc-single-skip", "start", user) == 1, what="the first run to start")

    [skipped] = stepline.send({"name": "fc/single-skip", "data": {"user": user, "key": user}})
    [elsewhere] = stepline.send({"name": "fc/single-skip", "data": {"user": other, "key": other}})
    # Decided while the event was accepted: a run not skipped would exist by now.
    assert stepline.runs(skipped) == []
    assert len(stepline.runs(elsewhere)) == 1

    # The key is free again once its run has ended, here by a cancel.
    [run] = stepline.runs(first)
    assert http("DELETE", f"{stepline.url}/v1/runs/{run['run_id']}")[0] == 200
    [later] = stepline.send({"name": "fc/single-skip", "data": {"user": user, "key": user}})
    assert len(stepline.runs(later)) == 1


def test_singleton_cancel_replaces_the_live_run(fc):
    stepline, app = fc
    user = f"u-{uid()}"
    [first] = stepline.send({"name": "fc/single-cancel", "data": {"user": user, "key": user, "hold_s": 3600}})
    wait_for(lambda: app.count("fc-single-cancel", "start", user) == 1, what="the first run to start")

    [second] = stepline.send({"name": "fc/single-cancel", "data": {"user": user, "key": user}})

    second_run, first_run = done(stepline, [second, first])
    assert second_run["status"] == "Completed" and first_run["status"] == "Cancelled"

# -- debounce and batching, jumping the clock ---------------------------------------------------
# On AWS a timer further out than SQS's 15-minute delay fires from Scheduler up to 13 minutes
# early and waits out the rest as an SQS delay, which runs on real time, not on the jumps. So
# these tests never stop inside those last 13 minutes: they look before them, then jump past
# the fire time.


def finished(stepline: Stepline, event_id: str) -> dict:
    def done():
        runs = stepline.runs(event_id)
        return runs[0] if runs and runs[0]["status"] in ("Completed", "Failed", "Cancelled") else None

    return wait_for(done, 20, interval_s=0.1, what=f"the run of event {event_id}")


def debounced(user: str, n: int) -> dict:
    return {"name": "fc/debounced", "data": {"user": user, "key": user, "n": n}}


def test_debounce_runs_once_with_the_last_event_after_a_quiet_period(fc):
    stepline, app = fc
    clock = stepline.runtime.clock
    user = f"u-{uid()}"

    [first] = stepline.send(debounced(user, 1))
    clock.advance(30 * MIN_MS)  # within the hour: the window moves on
    [last] = stepline.send(debounced(user, 2))
    clock.advance(45 * MIN_MS)  # 45 min after the last event: still within its quiet hour
    time.sleep(0.5)
    assert stepline.runs(first) == [] and stepline.runs(last) == []

    clock.advance(16 * MIN_MS)
    run = finished(stepline, last)

    assert run["status"] == "Completed" and run["output"] == {"n": 2, "events": 1}
    assert stepline.runs(first) == []
    assert app.count("fc-debounced", "take", user) == 1


def test_debounce_never_waits_past_its_timeout(fc):
    stepline, app = fc
    clock = stepline.runtime.clock
    user = f"u-{uid()}"

    ids = []
    for n in range(3):  # an event every 40 min: the hour of quiet never comes
        ids += stepline.send(debounced(user, n))
        clock.advance(40 * MIN_MS)
    # 120 min after the first event, past its 100 min timeout: the run has the last event.
    run = finished(stepline, ids[-1])

    assert run["output"] == {"n": 2, "events": 1}
    assert stepline.runs(ids[0]) == [] and stepline.runs(ids[1]) == []
    # The next event opens a new window rather than joining the one that ran.
    [later] = stepline.send(debounced(user, 9))
    clock.advance(61 * MIN_MS)
    assert finished(stepline, later)["output"] == {"n": 9, "events": 1}
    assert app.count("fc-debounced", "take", user) == 2


def batched(user: str, n: int, batch: bool = True) -> dict:
    return {"name": "fc/batched", "data": {"user": user, "key": user, "n": n, "batch": batch}}


def test_a_full_batch_runs_at_once_with_all_its_events(fc):
    stepline, app = fc
    user, other = f"u-{uid()}", f"u-{uid()}"

    # Batches are per key: the other user's event waits in a batch of its own.
    ids = stepline.send(batched(user, 1), batched(other, 10), batched(user, 2), batched(user, 3))
    run = finished(stepline, ids[0])

    assert run["output"] == {"ns": [1, 2, 3], "size": 3}
    assert [r["run_id"] for i in (ids[2], ids[3]) for r in stepline.runs(i)] == [run["run_id"]] * 2
    assert stepline.runs(ids[1]) == []
    assert app.count("fc-batched", "sum", user) == 1


def test_a_batch_that_never_fills_runs_at_its_timeout(fc):
    stepline, app = fc
    clock = stepline.runtime.clock
    user = f"u-{uid()}"

    ids = stepline.send(batched(user, 1), batched(user, 2))
    clock.advance(5 * MIN_MS)
    time.sleep(0.5)
    assert stepline.runs(ids[0]) == []

    clock.advance(16 * MIN_MS)  # 21 min after the first event: past the 20 min timeout
    run = finished(stepline, ids[0])

    assert run["output"] == {"ns": [1, 2], "size": 2}
    assert stepline.runs(ids[1])[0]["run_id"] == run["run_id"]


def test_events_the_batch_condition_refuses_run_alone_at_once(fc):
    stepline, app = fc
    user = f"u-{uid()}"

    [alone] = stepline.send(batched(user, 7, batch=False))

    assert finished(stepline, alone)["output"] == {"ns": [7], "size": 1}
