"""Concurrency limits under faults, on both backends' stores with a manual clock: whichever write
fails and wherever an executor dies, a slot or a line entry whose holder or copy is gone is
reclaimed within a bound, and every run behind it completes with each step run once.

The work queue is SQLite's in every case: SQS delays run on real time, and the safety net of a
waiting message is made of delays. The slots and the line are each backend's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from stepline.engine.core import Engine
from stepline.engine.flow.concurrency import SAFETY_DELAYS_MS, limits_for, slot_lease_ms
from stepline.engine.ports import RunStatus, StoreError
from stepline.local import local_backend
from stepline.settings import Settings
from tests.engine.scripted_app import Crash, ScriptedApp, receive_all, register

SETTINGS = Settings(mode="dev", step_timeout_s=10)
SLOT_LEASE_MS = slot_lease_ms(SETTINGS)  # 15 s
RUN_LEASE_MS = SETTINGS.lease_ms  # 30 s
FN = "t-lim"


@pytest.fixture
def line_backend(backend, tmp_path, clock):
    if backend.name == "sqlite":
        yield backend
        return
    with local_backend(str(tmp_path / "queue.db"), clock) as local:
        yield dataclasses.replace(backend, queue=local.queue)


@pytest.fixture
def engine(line_backend, clock):
    app = ScriptedApp({FN: [("run", "a"), ("run", "b")]})
    engine = Engine(line_backend, SETTINGS, clock=clock, caller=app)
    register(engine, [FN], {FN: {"concurrency": [{"limit": 1}]}})
    engine.app = app  # type: ignore[attr-defined]
    return engine


def key_of(backend) -> str:
    [limit] = limits_for(backend.store.get_function(FN), {"name": f"app/{FN}", "data": {}})
    return limit.key


def start(engine: Engine, backend) -> str:
    [event_id] = engine.ingest.accept([{"name": f"app/{FN}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def hold_the_slot(backend, clock) -> None:
    """A step of some other run holds the only slot."""
    assert backend.store.take_slot(key_of(backend), 0, "elsewhere", clock.now_ms() + 10 * RUN_LEASE_MS, clock.now_ms())


def let_go_silently(backend) -> None:
    """That holder is gone: its slot is free, and nobody was woken for it."""
    assert backend.store.release_slot(key_of(backend), 0, "elsewhere")


def deliver(backend, engine: Engine) -> int:
    """Handle every visible message once. A delivery that fails or whose executor died comes
    back at once, as the queue would deliver it again."""
    received = receive_all(backend)
    for message in received:
        try:
            engine.executor.handle(message.body)
        except (Exception, Crash):
            backend.queue.retry_later(message.handle, 0)
        else:
            backend.queue.ack(message.handle)
    return len(received)


def until_ended(backend, engine: Engine, clock, run_ids: list[str], *, within_ms: int) -> dict[str, int]:
    """Deliver and let time pass one second at a time until every run has ended; when each did,
    in ms from now. Fails past ``within_ms``."""
    began, ended = clock.now_ms(), {}
    while clock.now_ms() - began <= within_ms:
        while deliver(backend, engine):
            pass
        for run_id in run_ids:
            if run_id not in ended and backend.store.get_run(run_id).status.terminal:
                ended[run_id] = clock.now_ms() - began
        if len(ended) == len(run_ids):
            return ended
        clock.advance(1000)
    raise AssertionError(f"not ended within {within_ms} ms: {set(run_ids) - set(ended)}")


def fail_once(monkeypatch, store, method: str, *, applied: bool, error: Callable[[], BaseException]) -> list[bool]:
    """``store.<method>`` fails on its next call: after applying (the answer lost, or the
    executor died right after it) or before. Returns a list that holds True once it fired."""
    original = getattr(store, method)
    fired: list[bool] = []

    def failing(*args, **kwargs):
        if fired:
            return original(*args, **kwargs)
        fired.append(True)
        if applied:
            original(*args, **kwargs)
        raise error()

    monkeypatch.setattr(store, method, failing)
    return fired


def assert_all_done(backend, engine: Engine, clock, run_ids: list[str]) -> None:
    """Every run completed, each step ran once, and nothing is left held or waiting."""
    assert all(backend.store.get_run(r).status is RunStatus.COMPLETED for r in run_ids)
    assert engine.app.executed == {"a": len(run_ids), "b": len(run_ids)}
    view = backend.store.slot_view(key_of(backend), 10)
    assert view.line == [] and [h for h in view.holders if h.until >= clock.now_ms()] == []


# -- a holder that died ------------------------------------------------------------------------


def test_a_holder_that_died_right_after_taking_its_slot_does_not_stop_the_line(line_backend, engine, clock, monkeypatch):
    """Its redelivery finds the entry's slot still held (by the dead holder) and must not give
    up: once the slot's lease ends, the line moves on."""
    backend = line_backend
    hold_the_slot(backend, clock)
    first, second = start(engine, backend), start(engine, backend)
    deliver(backend, engine)  # both calls wait in line
    let_go_silently(backend)
    died = fail_once(monkeypatch, backend.store, "take_slot", applied=True, error=lambda: Crash("killed"))

    ended = until_ended(backend, engine, clock, [first, second], within_ms=2 * RUN_LEASE_MS)

    assert died
    # The second run had the slot within a safety-net period of the dead holder's lease ending.
    assert ended[second] <= SAFETY_DELAYS_MS[0] + SLOT_LEASE_MS + SAFETY_DELAYS_MS[-1]
    assert_all_done(backend, engine, clock, [first, second])


def test_a_slot_whose_take_was_applied_but_reported_failed_is_given_back(line_backend, engine, clock, monkeypatch):
    backend = line_backend
    run_id = start(engine, backend)
    fail_once(monkeypatch, backend.store, "take_slot", applied=True, error=lambda: StoreError("injected: answer lost"))
    [message] = receive_all(backend)

    with pytest.raises(StoreError):
        engine.executor.handle(message.body)

    assert backend.store.slot_view(key_of(backend), 10).holders == []  # not held by nobody for a lease
    engine.executor.handle(message.body)  # the redelivery
    backend.queue.ack(message.handle)
    until_ended(backend, engine, clock, [run_id], within_ms=0)
    assert_all_done(backend, engine, clock, [run_id])


def test_a_refused_release_of_a_slot_is_tried_again_and_the_run_goes_on(line_backend, engine, clock, monkeypatch):
    backend = line_backend
    run_id = start(engine, backend)
    refused = fail_once(monkeypatch, backend.store, "release_slot", applied=False,
                        error=lambda: StoreError("injected: throttled"))
    [message] = receive_all(backend)

    engine.executor.handle(message.body)  # the clean-up failing does not fail the message

    assert refused
    assert backend.store.slot_view(key_of(backend), 10).holders == []
    assert backend.store.get_run(run_id).status is RunStatus.COMPLETED
    assert_all_done(backend, engine, clock, [run_id])


# -- an entry with no copy left ----------------------------------------------------------------


def orphan_first_call(backend, engine: Engine, clock, monkeypatch) -> str:
    """A run whose first call joined the line and whose executor died before queueing its
    message, which was lost with it: its entry is all that is left of the work."""
    hold_the_slot(backend, clock)
    run_id = start(engine, backend)
    died = fail_once(monkeypatch, backend.store, "join_line", applied=True, error=lambda: Crash("killed"))
    [message] = receive_all(backend)
    with pytest.raises(Crash):
        engine.executor.handle(message.body)
    backend.queue.ack(message.handle)  # lost with the process
    assert died
    assert [e.body["run_id"] for e in backend.store.slot_view(key_of(backend), 10).line] == [run_id]
    return run_id


def test_a_call_whose_every_copy_is_gone_is_woken_by_the_call_waiting_behind_it(line_backend, engine, clock, monkeypatch):
    backend = line_backend
    first = orphan_first_call(backend, engine, clock, monkeypatch)
    second = start(engine, backend)
    deliver(backend, engine)  # the second run's call waits behind the first's entry
    let_go_silently(backend)

    until_ended(backend, engine, clock, [first, second], within_ms=3 * RUN_LEASE_MS)

    assert_all_done(backend, engine, clock, [first, second])


def test_the_sweeper_wakes_the_line_of_a_run_whose_call_has_no_copy_left(line_backend, engine, clock, monkeypatch):
    backend = line_backend
    run_id = orphan_first_call(backend, engine, clock, monkeypatch)
    let_go_silently(backend)
    clock.advance(RUN_LEASE_MS)
    assert deliver(backend, engine) == 0  # nothing on the queue moves it

    clock.advance(int(SETTINGS.sweep_grace_s * 1000))
    engine.sweeper.sweep()

    until_ended(backend, engine, clock, [run_id], within_ms=0)
    assert_all_done(backend, engine, clock, [run_id])


# -- yielding the slot between two calls ---------------------------------------------------------


def test_a_holder_that_cannot_queue_its_next_call_keeps_its_place(line_backend, engine, clock, monkeypatch):
    """Between two calls the holder yields to the work waiting: it queues its next call at the
    back and lets go. Should queueing fail, the message comes back with its place kept."""
    backend = line_backend
    hold_the_slot(backend, clock)
    first, second = start(engine, backend), start(engine, backend)
    deliver(backend, engine)  # both calls wait in line
    let_go_silently(backend)

    def joins_fail_after_a(fn_id: str, target: str) -> None:
        if engine.app.executed["a"] == 0:
            fail_once(monkeypatch, backend.store, "join_line", applied=False,
                      error=lambda: StoreError("injected: throttled"))

    engine.app.before_call = joins_fail_after_a

    until_ended(backend, engine, clock, [first, second], within_ms=4 * SAFETY_DELAYS_MS[-1])

    assert_all_done(backend, engine, clock, [first, second])


# -- the same work waits once ----------------------------------------------------------------------


def test_the_same_call_joins_a_line_once(line_backend, engine, clock):
    backend = line_backend
    hold_the_slot(backend, clock)
    run_id = start(engine, backend)
    [message] = receive_all(backend)

    engine.executor.handle(message.body)
    engine.executor.handle(message.body)  # delivered twice

    assert [e.body["run_id"] for e in backend.store.slot_view(key_of(backend), 10).line] == [run_id]
    backend.queue.ack(message.handle)
    let_go_silently(backend)
    until_ended(backend, engine, clock, [run_id], within_ms=SAFETY_DELAYS_MS[-1])
    assert_all_done(backend, engine, clock, [run_id])
