"""Runs that lost what would wake them, on both backends with a manual clock: each scenario shows
the run stuck (nothing on the queue or among the timers moves it), then the sweeper re-arming it
once it is overdue by more than the grace period, and the run completing with every step run
once. The crash orderings of sleep and invoke (wake armed before the op is recorded) are shown
to need no sweeper at all."""

from __future__ import annotations

import pytest

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.flow.concurrency import limits_for
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import (
    Crash,
    ScriptedApp,
    drop_all,
    lose_wake_up,
    pump,
    receive_all,
    register,
)

SETTINGS = Settings(mode="dev")
GRACE_MS = int(SETTINGS.sweep_grace_s * 1000)
LEASE_MS = SETTINGS.lease_ms
MINUTE = 60 * 1000
HOUR = 60 * MINUTE


def make(backend, clock, scripts: dict, *, settings: Settings = SETTINGS,
         configs: dict | None = None) -> tuple[Engine, ScriptedApp]:
    app = ScriptedApp(scripts)
    engine = Engine(backend, settings, clock=clock, caller=app)
    register(engine, list(scripts), configs)
    return engine, app


def start(engine: Engine, backend, fn_id: str) -> str:
    [event_id] = engine.ingest.accept([{"name": f"app/{fn_id}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def status(backend, run_id: str) -> RunStatus:
    return backend.store.get_run(run_id).status


def assert_stuck(backend, engine, clock, run_id: str) -> None:
    """Nothing queued or scheduled moves the run on."""
    assert pump(backend, engine, clock) == 0
    assert status(backend, run_id) is RunStatus.RUNNING


def crash_after(monkeypatch, store, method: str, op_kind: str) -> None:
    """The executor dies right after ``store.<method>`` recorded an op of ``op_kind``, once."""
    original = getattr(store, method)
    armed = [True]

    def recorded_then_died(run_id, op, *args, **kwargs):
        result = original(run_id, op, *args, **kwargs)
        if armed[0] and op.op == op_kind:
            armed[0] = False
            raise Crash(f"died after {method} of {op.step_id}")
        return result

    monkeypatch.setattr(store, method, recorded_then_died)


def redeliver_after_crash(backend, engine, clock) -> None:
    """The start message's delivery dies mid-way; the queue delivers it again once the dead
    executor's lease has run out."""
    [message] = receive_all(backend)
    with pytest.raises(Crash):
        engine.executor.handle(message.body)
    backend.queue.ack(message.handle)
    clock.advance(LEASE_MS + 1)
    backend.queue.send(message.body)


# -- an executor died holding the lease, its message gone ----------------------------------------


def test_a_run_whose_executor_died_holding_the_lease_is_resumed(backend, clock):
    engine, app = make(backend, clock, {"t-app-two": [("run", "a"), ("run", "b")]})
    run_id = start(engine, backend, "t-app-two")

    def die(fn_id: str, target: str) -> None:
        raise Crash("the executor's process was killed")

    app.before_call = die
    [message] = receive_all(backend)
    with pytest.raises(Crash):
        engine.executor.handle(message.body)
    backend.queue.ack(message.handle)  # lost with the process (or acknowledged by mistake)
    app.before_call = None
    assert backend.store.get_run(run_id).lease_owner is not None

    clock.advance(GRACE_MS - MINUTE)
    assert_stuck(backend, engine, clock, run_id)
    assert engine.sweeper.sweep().found == 0  # within the grace period: left alone

    clock.advance(2 * MINUTE)
    engine.executor.handle(messages.sweep())  # the AWS schedule's message
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED and run.wake_at is None
    assert app.executed == {"a": 1, "b": 1}


# -- a waiting op whose timer or delayed message is missing --------------------------------------


def test_a_sleep_whose_timer_was_deleted_is_woken(backend, clock):
    engine, app = make(backend, clock, {"t-app-nap": [("run", "a"), ("sleep", "nap", "2h"), ("run", "b")]})
    run_id = start(engine, backend, "t-app-nap")
    pump(backend, engine, clock)
    nap = backend.store.load_run(run_id).pending["nap"]
    # The release recorded when the run should next move on: the sleep's end.
    assert backend.store.get_run(run_id).wake_at == nap.detail["wake_at"]
    lose_wake_up(backend, messages.wake(run_id, "nap"))

    clock.advance(2 * HOUR)
    assert_stuck(backend, engine, clock, run_id)
    assert engine.sweeper.sweep().found == 0  # overdue, but not by the grace period yet

    clock.advance(GRACE_MS + 1)
    report = engine.sweeper.sweep()
    assert (report.rearmed, dict(report.sent)) == (1, {"wake": 1})
    pump(backend, engine, clock)

    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}


def test_a_wait_whose_timeout_timer_was_deleted_times_out(backend, clock):
    script = [("wait", "approval", "app/approved", "1h"), ("run", "after")]
    engine, app = make(backend, clock, {"t-app-wait": script})
    run_id = start(engine, backend, "t-app-wait")
    pump(backend, engine, clock)
    lose_wake_up(backend, messages.wait_timeout(run_id, "approval", "app/approved"))

    clock.advance(HOUR + GRACE_MS - MINUTE)
    assert_stuck(backend, engine, clock, run_id)
    assert engine.sweeper.sweep().found == 0

    clock.advance(2 * MINUTE)
    assert dict(engine.sweeper.sweep().sent) == {"wait_timeout": 1}
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.output["steps"]["approval"] == {"data": None}  # timed out: null
    assert app.executed == {"after": 1}


def test_a_signal_wait_whose_timeout_timer_was_deleted_times_out(backend, clock):
    script = [("signal", "approval", "approval/42", "1h"), ("run", "after")]
    engine, app = make(backend, clock, {"t-app-signal": script})
    run_id = start(engine, backend, "t-app-signal")
    pump(backend, engine, clock)
    waiting = backend.store.load_run(run_id).pending["approval"]
    assert backend.store.get_run(run_id).wake_at == waiting.detail["expires_at"]  # due at its timeout
    lose_wake_up(backend, messages.wake(run_id, "approval"))

    clock.advance(HOUR + GRACE_MS - MINUTE)
    assert_stuck(backend, engine, clock, run_id)
    assert engine.sweeper.sweep().found == 0

    clock.advance(2 * MINUTE)
    assert dict(engine.sweeper.sweep().sent) == {"wake": 1}
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.output["steps"]["approval"] == {"data": None}  # timed out: null
    assert app.executed == {"after": 1}
    assert engine.signals.send("approval/42", "too late") is None


def test_an_invoke_whose_timeout_timer_was_deleted_times_out(backend, clock):
    scripts = {
        "t-app-parent": [("invoke", "call", "t-app-child", "1h"), ("run", "after")],
        "t-app-child": [("sleep", "forever", "8760h")],
    }
    engine, app = make(backend, clock, scripts)
    run_id = start(engine, backend, "t-app-parent")
    pump(backend, engine, clock)
    assert "call" in backend.store.load_run(run_id).pending
    lose_wake_up(backend, messages.invoke_timeout(run_id, "call"))

    clock.advance(HOUR + GRACE_MS + MINUTE)
    assert_stuck(backend, engine, clock, run_id)
    report = engine.sweeper.sweep()
    # The child sleeps for a year, which is not overdue: only the parent is re-armed.
    assert (report.found, dict(report.sent)) == (1, {"invoke_timeout": 1})
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.output["steps"]["call"]["error"]["name"] == "InngestInvokeTimeoutError"
    assert app.executed == {"after": 1}


def test_a_resume_that_died_after_its_memo_is_finished(backend, clock, monkeypatch):
    engine, app = make(backend, clock, {"t-app-nap": [("sleep", "nap", "2h"), ("run", "b")]})
    run_id = start(engine, backend, "t-app-nap")
    pump(backend, engine, clock)
    clock.advance(2 * HOUR)
    original = backend.queue.send

    def died_before_queueing(body, delay_seconds=0):
        if body.get("kind") == messages.CALL:
            raise Crash("died between the memo and the discovery call")
        return original(body, delay_seconds)

    backend.timers.fire_due(clock.now_ms())
    monkeypatch.setattr(backend.queue, "send", died_before_queueing)
    [wake] = receive_all(backend)
    with pytest.raises(Crash):
        engine.executor.handle(wake.body)
    backend.queue.ack(wake.handle)  # and the wake is gone
    monkeypatch.setattr(backend.queue, "send", original)
    state = backend.store.load_run(run_id)
    assert state.has_memo("nap") and "nap" in state.pending

    assert_stuck(backend, engine, clock, run_id)
    clock.advance(GRACE_MS + 1)
    assert dict(engine.sweeper.sweep().sent) == {"discovery": 1}
    pump(backend, engine, clock)

    assert status(backend, run_id) is RunStatus.COMPLETED
    assert "nap" not in backend.store.load_run(run_id).pending
    assert app.executed == {"b": 1}


# -- planned parallel steps --------------------------------------------------------------------


def test_planned_steps_whose_calls_were_lost_are_sent_again(backend, clock):
    engine, app = make(backend, clock, {"t-app-fan": [("parallel", ["x", "y"]), ("run", "z")]})
    run_id = start(engine, backend, "t-app-fan")
    [message] = receive_all(backend)
    engine.executor.handle(message.body)
    backend.queue.ack(message.handle)
    lost = drop_all(backend)
    assert sorted(m["step"] for m in lost) == ["x", "y"]

    clock.advance(GRACE_MS + 1)
    assert_stuck(backend, engine, clock, run_id)
    assert dict(engine.sweeper.sweep().sent) == {"step": 2}
    pump(backend, engine, clock)

    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1, "z": 1}


def test_a_planned_step_with_a_live_claim_is_left_to_its_holder(backend, clock):
    engine, app = make(backend, clock, {"t-app-fan": [("parallel", ["x", "y"])]})
    run_id = start(engine, backend, "t-app-fan")
    pump_one(backend, engine)
    drop_all(backend)
    # A job is on x (it claimed the step) and holds it well past the sweep.
    now = clock.now_ms()
    assert backend.store.claim_pending(run_id, "x", "job-on-x", now + 2 * GRACE_MS, now)

    clock.advance(GRACE_MS + 1)
    assert dict(engine.sweeper.sweep().sent) == {"step": 1}
    pump(backend, engine, clock)
    assert app.executed == {"y": 1} and status(backend, run_id) is RunStatus.RUNNING

    clock.advance(GRACE_MS + 1)  # the job died: its claim expires
    assert dict(engine.sweeper.sweep().sent) == {"step": 1}
    pump(backend, engine, clock)
    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1}


def test_a_planned_steps_retry_backoff_is_a_healthy_wait(backend, clock):
    engine, app = make(backend, clock, {"t-app-fan": [("parallel", ["x", "y"])]})
    app.fail_first["x"] = HttpResponse(500, b'{"name": "Error", "message": "busy"}', {"retry-after": "7200"})
    run_id = start(engine, backend, "t-app-fan")
    pump(backend, engine, clock)
    assert app.executed == {"x": 1, "y": 1}

    clock.advance(GRACE_MS + 1)
    report = engine.sweeper.sweep()
    # x's claim covers its two-hour backoff: the sweeper sends nothing.
    assert (report.found, report.in_hand, dict(report.sent)) == (1, 1, {})
    pump(backend, engine, clock)
    assert app.executed["x"] == 1

    clock.advance(2 * HOUR)
    pump(backend, engine, clock)
    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"x": 2, "y": 1}


# -- an executor crashed between two of its writes ----------------------------------------------


def test_a_sleep_recorded_just_before_a_crash_still_wakes(backend, clock, monkeypatch):
    engine, app = make(backend, clock, {"t-app-nap": [("run", "a"), ("sleep", "nap", "2h"), ("run", "b")]})
    run_id = start(engine, backend, "t-app-nap")
    crash_after(monkeypatch, backend.store, "add_pending", "Sleep")
    redeliver_after_crash(backend, engine, clock)
    pump(backend, engine, clock)  # the sleep is re-reported, and ignored: it is recorded
    assert "nap" in backend.store.load_run(run_id).pending

    clock.advance(2 * HOUR)  # no sweep: the wake was armed before the op was recorded
    pump(backend, engine, clock)

    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"a": 1, "b": 1}


def test_an_invoke_recorded_just_before_a_crash_still_starts_its_child(backend, clock, monkeypatch):
    scripts = {
        "t-app-parent": [("invoke", "call", "t-app-child", None), ("run", "after")],
        "t-app-child": [("run", "work")],
    }
    engine, app = make(backend, clock, scripts)
    run_id = start(engine, backend, "t-app-parent")
    crash_after(monkeypatch, backend.store, "add_pending", "InvokeFunction")
    redeliver_after_crash(backend, engine, clock)

    pump(backend, engine, clock)  # no sweep: the child was started before the op was recorded

    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED
    assert run.output["steps"]["call"]["data"] == {"steps": {"work": {"data": "work done"}}}
    assert app.executed == {"work": 1, "after": 1}


def test_a_planned_step_recorded_just_before_a_crash_is_swept(backend, clock, monkeypatch):
    engine, app = make(backend, clock, {"t-app-fan": [("parallel", ["x", "y"]), ("run", "z")]})
    run_id = start(engine, backend, "t-app-fan")
    crash_after(monkeypatch, backend.store, "add_pending", "StepPlanned")  # x, before its call
    redeliver_after_crash(backend, engine, clock)
    pump(backend, engine, clock)
    assert app.executed == {"y": 1}

    assert_stuck(backend, engine, clock, run_id)
    clock.advance(GRACE_MS + 1)
    assert dict(engine.sweeper.sweep().sent) == {"step": 1}
    pump(backend, engine, clock)

    assert status(backend, run_id) is RunStatus.COMPLETED
    assert app.executed == {"x": 1, "y": 1, "z": 1}


# -- what the sweeper leaves alone, and how it paces itself ---------------------------------------


def test_a_call_waiting_in_a_concurrency_line_is_left_in_it(backend, clock):
    limited = {"concurrency": [{"limit": 1}]}
    engine, app = make(backend, clock, {"t-app-one": [("run", "a")]}, configs={"t-app-one": limited})
    fn = backend.store.get_function("t-app-one")
    [limit] = limits_for(fn, {"name": "app/t-app-one", "data": {}})
    now = clock.now_ms()
    assert backend.store.take_slot(limit.key, 0, "a-long-step-elsewhere", now + 3 * GRACE_MS, now)
    run_id = start(engine, backend, "t-app-one")
    pump_one(backend, engine)  # no slot: the call joins the line, its message cycles on the queue

    clock.advance(GRACE_MS + 1)
    report = engine.sweeper.sweep()

    assert (report.found, report.in_hand, dict(report.sent)) == (1, 1, {})
    line = backend.store.slot_view(limit.key, 10).line
    assert [entry.body["run_id"] for entry in line] == [run_id]  # not queued a second time
    assert app.executed == {}


def test_a_throttled_start_is_due_when_the_throttle_lets_it_start(backend, clock):
    throttled = {"throttle": {"limit": 1, "period": "2h"}}
    engine, app = make(backend, clock, {"t-app-two": [("run", "a")]}, configs={"t-app-two": throttled})
    first = start(engine, backend, "t-app-two")
    second = start(engine, backend, "t-app-two")

    assert backend.store.get_run(second).wake_at == clock.now_ms() + 2 * HOUR
    pump(backend, engine, clock)
    assert status(backend, first) is RunStatus.COMPLETED
    clock.advance(GRACE_MS + 1)
    assert engine.sweeper.sweep().found == 0  # waiting for the throttle is not stalling


def test_a_sweep_that_hits_its_limit_queues_the_next(backend, clock):
    settings = Settings(mode="dev", sweep_max_runs=1)
    engine, app = make(backend, clock, {"t-app-two": [("run", "a")]}, settings=settings)
    runs = [start(engine, backend, "t-app-two") for _ in range(2)]
    drop_all(backend)  # both start messages lost

    clock.advance(GRACE_MS + 1)
    engine.executor.handle(messages.sweep())
    pump(backend, engine, clock)  # one run's call, and the next sweep for the other

    assert all(status(backend, r) is RunStatus.COMPLETED for r in runs)
    assert app.executed == {"a": 2}


def pump_one(backend, engine: Engine) -> None:
    [message] = receive_all(backend)
    engine.executor.handle(message.body)
    backend.queue.ack(message.handle)
