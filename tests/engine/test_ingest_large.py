"""A large Event API request on both backends: stored before the answer, its runs started from
the work queue afterwards (one ``start`` message per 100 events), each event starting its run
once, waits resumed; a retry of the whole request starts nothing twice."""

from __future__ import annotations

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.ingest import START_CHUNK
from stepline.engine.ports import Run, RunStatus, Waiter, WaiterKind
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, receive_all, register

# Past one start message (START_CHUNK events) by a few: two messages, the second one partial. Each
# run costs moto about half a second, so no more than that.
EVENTS = START_CHUNK + 5
SEED = (1_800_000_000_000, b"0123456789")


def test_a_large_request_is_stored_first_and_started_from_the_queue(backend, clock):
    app = ScriptedApp({"go": [("run", "a")]})
    engine = Engine(backend, Settings(mode="dev", ingest_inline_events=10), clock=clock, caller=app)
    register(engine, ["go"])
    waiting = Run(run_id="run-w", fn_id="f", app_id="a", status=RunStatus.RUNNING, events=[{"name": "x", "data": {}}],
                  event_ids=["e0"], created_at=clock.now_ms())
    assert backend.store.create_run(waiting)
    assert backend.store.add_waiter(Waiter(event_name="app/decided", run_id="run-w", step_id="wait",
                                           kind=WaiterKind.WAIT, expires_at=clock.now_ms() + 3_600_000,
                                           created_at=clock.now_ms()))
    clock.advance(1_000)
    sent = [{"name": "app/go", "data": {"n": i}} for i in range(EVENTS - 1)] + [{"name": "app/decided", "data": {}}]
    ids = engine.ingest.accept(sent, seed=SEED)

    # Answered once stored: every event is there, no run yet; the rest waits on the queue.
    assert all(backend.store.get_event(i) is not None for i in ids)
    assert backend.store.runs_for_event(ids[0]) == []
    queued = receive_all(backend)
    assert [m.body["kind"] for m in queued] == [messages.START] * -(-EVENTS // START_CHUNK)
    assert [i for m in queued for i in m.body["event_ids"]] == ids
    for m in queued:
        backend.queue.retry_later(m.handle, 0)  # back for the pump

    pump(backend, engine, clock, most=2_000)
    assert all(len(backend.store.runs_for_event(i)) == 1 for i in ids[:-1])
    assert app.executed["a"] == EVENTS - 1
    memo = {m.step_id: m.value for m in backend.store.load_run("run-w").memos}["wait"]
    assert memo["data"]["name"] == "app/decided"

    # The SDK retries the whole request (seeded ids): the same events, nothing started twice.
    assert engine.ingest.accept(sent, seed=SEED) == ids
    pump(backend, engine, clock, most=2_000)
    assert all(len(backend.store.runs_for_event(i)) == 1 for i in ids[:-1])
    assert app.executed["a"] == EVENTS - 1
