"""The engine's delivery on both backends: a message that keeps failing is dead-lettered on its
``max_deliveries``-th delivery with its run marked Failed through the normal ending; a malformed
one at its first; redrive reopens the run, which then goes on to Completed."""

from __future__ import annotations

import json

import pytest

from stepline.engine import messages
from stepline.engine.core import Engine
from stepline.engine.delivery import Outcome
from stepline.engine.flow.concurrency import limits_for
from stepline.engine.ending import FAILED
from stepline.engine.ports import QueueMessage, RunStatus, StoreError
from stepline.protocol.register import parse_register
from stepline.settings import Settings
from tests.conftest import open_backend
from tests.engine.test_timeouts import RecordingApp
from tests.security.test_expressions import panic_type

APP_URL = "http://127.0.0.1:9/api/inngest"
SETTINGS = Settings(mode="dev", max_deliveries=3, redelivery_base_ms=0, redelivery_cap_ms=0)


class Fault:
    """Makes one store method raise for one run while ``on``: an outage the executor meets."""

    def __init__(self, monkeypatch, store, method: str, run_id: str, make_error=None) -> None:
        self.on = True
        original = getattr(store, method)
        make_error = make_error or (lambda: StoreError("injected: the store is unreachable"))

        def failing(rid, *args, **kwargs):
            if self.on and rid == run_id:
                raise make_error()
            return original(rid, *args, **kwargs)

        monkeypatch.setattr(store, method, failing)


def register(engine: Engine, **config) -> None:
    fn = {
        "id": "t-app-go", "name": "go", "triggers": [{"event": "app/go"}], **config,
        "steps": {"step": {"id": "step", "name": "step",
                           "runtime": {"type": "http", "url": APP_URL + "?fnId=t-app-go&stepId=step"}}},
    }
    body = {"appname": "t-app", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1", "functions": [fn]}
    engine.registry.register(parse_register(json.dumps(body).encode()))


def start(engine: Engine, backend) -> str:
    [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def deliver_next(backend, engine: Engine) -> Outcome:
    [message] = backend.queue.receive(1, 60)
    outcome = engine.delivery.deliver(message)
    if outcome is not Outcome.RETRY:
        backend.queue.ack(message.handle)
    return outcome


def deliver_all(backend, engine: Engine, most: int = 20) -> list[Outcome]:
    outcomes = []
    for _ in range(most):
        received = backend.queue.receive(1, 60)
        if not received:
            return outcomes
        outcome = engine.delivery.deliver(received[0])
        if outcome is not Outcome.RETRY:
            backend.queue.ack(received[0].handle)
        outcomes.append(outcome)
    raise AssertionError(f"the queue did not empty in {most} deliveries: {outcomes}")


@pytest.fixture
def engine(backend, clock):
    app = RecordingApp()
    engine = Engine(backend, SETTINGS, clock=clock, caller=app)
    engine.app = app  # type: ignore[attr-defined]
    register(engine)
    return engine


def test_a_message_failing_every_delivery_is_dead_lettered_and_its_run_failed(backend, engine, monkeypatch):
    run_id = start(engine, backend)
    Fault(monkeypatch, backend.store, "acquire_lease", run_id)

    assert [deliver_next(backend, engine) for _ in range(3)] == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD]

    run = backend.store.get_run(run_id)
    expected = "call message failed 3 deliveries: StoreError: injected: the store is unreachable"
    assert run.status == RunStatus.FAILED and run.ended_at is not None
    assert run.error == {"name": "DeliveryFailed", "message": expected}
    [entry] = backend.dead_letters.list_dead(10)
    assert (entry.run_id, entry.reason.error, entry.reason.receive_count) == (run_id, expected, 3)
    assert entry.body["kind"] == "call" and entry.body["run_id"] == run_id
    # The normal ending: function.failed is emitted, as for a run the app failed.
    failed, _ = backend.store.list_events(limit=10, name=FAILED)
    assert [e.data["run_id"] for e in failed] == [run_id]
    assert failed[0].data["error"]["name"] == "DeliveryFailed"
    assert backend.queue.receive(10, 60) == []
    assert engine.app.calls == 0


def test_a_native_panic_while_handling_counts_as_a_failed_delivery(backend, engine, monkeypatch):
    # pyo3's PanicException is a BaseException: uncaught, it ends the worker thread and the
    # message comes back for ever. It is a failure like any other, and poison in the end.
    panic = panic_type()
    run_id = start(engine, backend)
    Fault(monkeypatch, backend.store, "acquire_lease", run_id, lambda: panic("a native library panicked"))

    assert [deliver_next(backend, engine) for _ in range(3)] == [Outcome.RETRY, Outcome.RETRY, Outcome.DEAD]

    run = backend.store.get_run(run_id)
    expected = "call message failed 3 deliveries: PanicException: a native library panicked"
    assert run.status == RunStatus.FAILED and run.error == {"name": "DeliveryFailed", "message": expected}
    [entry] = backend.dead_letters.list_dead(10)
    assert entry.run_id == run_id and entry.reason.error == expected


def test_redrive_reopens_the_run_and_it_completes_once_the_fault_is_gone(backend, engine, clock, monkeypatch):
    run_id = start(engine, backend)
    fault = Fault(monkeypatch, backend.store, "acquire_lease", run_id)
    deliver_all(backend, engine)
    [entry] = backend.dead_letters.list_dead(10)
    fault.on = False

    assert engine.delivery.redrive([entry.id]) == (1, [run_id])

    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.RUNNING and run.error is None and run.ended_at is None
    # Back in the sweeper's index, should its messages be lost.
    assert run.wake_at == clock.now_ms()
    stalled, _ = backend.store.stalled_runs(clock.now_ms() + 1, clock.now_ms(), limit=10)
    assert [r.run_id for r in stalled] == [run_id]
    assert backend.dead_letters.list_dead(10) == []
    assert set(deliver_all(backend, engine)) == {Outcome.DONE}
    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.COMPLETED and run.output == {"done": True}
    assert engine.app.calls == 1


def test_a_redelivery_that_succeeds_before_the_last_leaves_nothing_dead(backend, engine, monkeypatch):
    run_id = start(engine, backend)
    fault = Fault(monkeypatch, backend.store, "acquire_lease", run_id)
    assert deliver_next(backend, engine) is Outcome.RETRY
    fault.on = False

    assert deliver_next(backend, engine) is Outcome.DONE
    assert backend.store.get_run(run_id).status == RunStatus.COMPLETED
    assert backend.dead_letters.list_dead(10) == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"kind": "teleport", "run_id": "RUN"}, "teleport message is malformed: unknown message kind 'teleport'"),
        ({"kind": "wake", "run_id": "RUN"}, "wake message is malformed: step: missing"),
        ({"kind": "call", "run_id": "RUN", "attempt": "2"}, "call message is malformed: attempt: expected a non-empty int, got '2'"),
    ],
)
def test_a_malformed_message_is_dead_at_its_first_delivery(backend, engine, body, why):
    run_id = start(engine, backend)
    body = {k: (run_id if v == "RUN" else v) for k, v in body.items()}
    backend.queue.send(body)
    deliver_all(backend, engine)  # the run's own call completes it first

    assert engine.app.calls == 1
    [entry] = backend.dead_letters.list_dead(10)
    assert (entry.reason.error, entry.reason.receive_count, entry.run_id) == (why, 1, run_id)
    # The run had completed: a dead letter never changes a run that ended.
    assert backend.store.get_run(run_id).status == RunStatus.COMPLETED


def test_a_malformed_message_of_a_live_run_fails_it(backend, engine):
    run_id = start(engine, backend)
    [call] = backend.queue.receive(1, 60)  # the run's call, held back

    outcome = engine.delivery.deliver(QueueMessage("unused", {"kind": "wake", "run_id": run_id}, 1))

    assert outcome is Outcome.DEAD
    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.FAILED
    assert run.error == {"name": "DeliveryFailed", "message": "wake message is malformed: step: missing"}
    # The held call now finds the run ended and does nothing.
    assert engine.delivery.deliver(call) is Outcome.DONE
    assert engine.app.calls == 0


def test_a_body_that_is_not_json_is_dead_with_the_text_it_had(backend, engine):
    outcome = engine.delivery.deliver(QueueMessage("unused", {"invalid_body": "<html>oops"}, 1))

    assert outcome is Outcome.DEAD
    [entry] = backend.dead_letters.list_dead(10)
    assert entry.body == {"invalid_body": "<html>oops"} and entry.run_id is None
    assert entry.reason.error == "unknown message is malformed: the body is not a JSON object: '<html>oops'"


def test_a_kind_of_an_extra_handler_reaches_it_as_received(backend, engine, clock):
    """A kind the engine does not know is no poison to the handler registered for it: it gets
    the body as it came, once its ``not_before`` has passed, like any message."""
    seen: list[messages.Message] = []
    engine.executor.handlers["audit"] = seen.append
    due = clock.now_ms() + 5_000
    body = {"kind": "audit", "run_id": "R", "entries": [1, 2], "not_before": due}

    assert engine.delivery.deliver(QueueMessage("unused", body, 1)) is Outcome.DONE
    assert seen == []  # early: back on the queue until it is due
    clock.advance(5_000)
    assert engine.delivery.deliver(QueueMessage("unused", body, 2)) is Outcome.DONE
    assert seen == [messages.Other(kind="audit", body=body, not_before=due)]
    assert backend.dead_letters.list_dead(10) == []


def test_only_runs_dead_lettering_failed_are_reopened(backend, engine, clock):
    run_id = start(engine, backend)
    engine.cancel_run(run_id)
    assert engine.delivery.reopen(run_id) is False
    other = start(engine, backend)
    backend.store.update_run(other, {"status": RunStatus.FAILED, "error": {"name": "Error", "message": "app bug"}})
    assert engine.delivery.reopen(other) is False
    assert backend.store.get_run(other).status == RunStatus.FAILED
    assert engine.delivery.reopen("no-such-run") is False


def test_a_dead_lettered_call_leaves_its_concurrency_line(tmp_path, clock, monkeypatch):
    """A call waiting in a concurrency line holds a place there; dead-lettered, it must give it
    up, or the work behind it would wait for ever."""
    with open_backend("sqlite", tmp_path, clock) as backend:
        app = RecordingApp()
        engine = Engine(backend, SETTINGS, clock=clock, caller=app)
        register(engine, concurrency=[{"limit": 1}])
        [limit] = limits_for(backend.store.get_function("t-app-go"), {})
        # Someone else holds the only slot, so both runs' calls join the line.
        backend.store.take_slot(limit.key, 0, "someone", clock.now_ms() + 60_000, clock.now_ms())
        first, second = start(engine, backend), start(engine, backend)
        assert deliver_all(backend, engine) == [Outcome.DONE, Outcome.DONE]
        assert len(backend.store.slot_view(limit.key, 10).line) == 2
        backend.store.release_slot(limit.key, 0, "someone")
        Fault(monkeypatch, backend.store, "acquire_lease", first)

        for _ in range(10):
            clock.advance(30_000)  # the line's safety-net delays
            backend.timers.fire_due(clock.now_ms())
            deliver_all(backend, engine)
            if backend.store.get_run(second).status.terminal:
                break

        assert backend.store.get_run(first).status == RunStatus.FAILED
        assert backend.store.get_run(second).status == RunStatus.COMPLETED
        assert backend.store.slot_view(limit.key, 10).line == []
        [entry] = backend.dead_letters.list_dead(10)
        assert "line" not in entry.body  # redriven, it queues afresh
