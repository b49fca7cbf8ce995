"""A send retried after it failed half-way (events stored, waits not yet resumed) still resumes
the waits it should, on both backends; and a duplicate never reaches a wait that began after the
event first arrived."""

from __future__ import annotations

import pytest

from stepline.engine.core import Engine
from stepline.engine.ports import Run, RunStatus, StoreError, Waiter, WaiterKind
from stepline.settings import Settings


def waiting_run(backend, run_id: str, created_at: int) -> None:
    run = Run(run_id=run_id, fn_id="f", app_id="a", status=RunStatus.RUNNING, events=[{"name": "app/start", "data": {}}],
              event_ids=["e0"], created_at=created_at)
    assert backend.store.create_run(run)
    waiter = Waiter(event_name="app/decided", run_id=run_id, step_id="wait-step", kind=WaiterKind.WAIT,
                    expires_at=created_at + 3_600_000, created_at=created_at)
    assert backend.store.add_waiter(waiter)


def memo_of(backend, run_id: str):
    state = backend.store.load_run(run_id)
    return next((m.value for m in state.memos if m.step_id == "wait-step"), None)


def test_a_retried_send_resumes_the_wait_its_failed_first_try_did_not(backend, clock):
    engine = Engine(backend, Settings(mode="dev"), clock=clock)
    waiting_run(backend, "run-1", clock.now_ms())
    clock.advance(1_000)
    resume_waits = engine.ingest.waits.on_events

    def dies_once(events, now_ms):
        engine.ingest.waits.on_events = resume_waits
        raise StoreError("the process died after storing the events")

    engine.ingest.waits.on_events = dies_once
    event = {"name": "app/decided", "id": "decision-1", "data": {"ok": True}}
    with pytest.raises(StoreError):
        engine.ingest.accept([event])
    assert memo_of(backend, "run-1") is None
    clock.advance(1_000)
    [internal_id] = engine.ingest.accept([event])  # the SDK's retry, same event id
    memo = memo_of(backend, "run-1")
    assert memo is not None and memo["data"]["data"] == {"ok": True}
    assert memo["data"]["id"] == "decision-1"
    assert backend.store.get_event(internal_id).id == "decision-1"


def test_a_duplicate_does_not_reach_a_wait_that_began_after_the_event(backend, clock):
    engine = Engine(backend, Settings(mode="dev"), clock=clock)
    event = {"name": "app/decided", "id": "decision-2", "data": {}}
    engine.ingest.accept([event])
    clock.advance(1_000)
    waiting_run(backend, "run-2", clock.now_ms())
    engine.ingest.accept([event])  # same id: the same event, older than the wait
    assert memo_of(backend, "run-2") is None
