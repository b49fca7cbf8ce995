"""How runs end, on both backends with a manual clock: whichever path ends a run, what it
announces (the lifecycle events, an invoking parent's answer) says how it ended."""

from __future__ import annotations

import json

import pytest

from stepline.engine.core import Engine
from stepline.engine.ending import event_error
from stepline.engine.flow.keys import rule_key
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import Crash, ScriptedApp, pump, register

FAILED = "inngest/function.failed"
FINISHED = "inngest/function.finished"


def make(backend, clock, scripts: dict) -> tuple[Engine, ScriptedApp]:
    app = ScriptedApp(scripts)
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, list(scripts))
    return engine, app


def start(engine: Engine, backend, fn_id: str) -> str:
    [event_id] = engine.ingest.accept([{"name": f"app/{fn_id}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    return run.run_id


def announced(backend, name: str, run_id: str) -> list[dict]:
    events, _ = backend.store.list_events(limit=100, name=name)
    return [e.data for e in events if e.data.get("run_id") == run_id]


def test_a_parallel_step_that_fails_the_run_announces_the_failure(backend, clock):
    # The job of a planned step ends the run (its call is answered with a 400: no retry). It
    # takes the run's lease and reads the run again before ending it; what it announces must be
    # the end it writes, not the run as it read it (Running). Before the fix, function.failed
    # was never emitted (so no on_failure handler ran) and function.finished said "Running".
    engine, app = make(backend, clock, {"par": [("parallel", ["a", "b"]), ("run", "after")]})
    app.fail_first["a"] = HttpResponse(400, json.dumps({"name": "Broken", "message": "a broke"}).encode())
    run_id = start(engine, backend, "par")
    pump(backend, engine, clock)

    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.FAILED and run.error["name"] == "Broken"
    [finished] = announced(backend, FINISHED, run_id)
    assert finished["_inngest"]["status"] == "Failed" and finished["error"]["name"] == "Broken"
    [failed] = announced(backend, FAILED, run_id)
    # The run's error, in the shape Inngest's end events carry (docs/protocol.md §9.2).
    assert failed["error"] == event_error(run.error)
    assert failed["error"]["error"] == "invalid status code: 400" and failed["error"]["message"] == "a broke"
    assert app.executed["after"] == 0


# -- one way to end a run, in one order ----------------------------------------------------------

LIFE = {
    # A singleton key and a cancel rule: something of each kind for the ending to release.
    "singleton": {"key": "event.data.k", "mode": "skip"},
    "cancel": [{"event": "app/stop"}],
}


class Order:
    """Records, in order, what an ending does: announce (function.finished is emitted), write
    (the run's terminal status), release (its waiters, its singleton key)."""

    def __init__(self, monkeypatch, engine: Engine, backend) -> None:
        self.steps: list[str] = []
        accept, update = engine.ingest.accept, backend.store.update_run

        def accepting(events, **kwargs):
            if any(e["name"] == FINISHED for e in events):
                self.note("announce")
            return accept(events, **kwargs)

        def updating(run_id, changes, **kwargs):
            if "status" in changes and RunStatus(changes["status"]).terminal:
                self.note("write")
            return update(run_id, changes, **kwargs)

        monkeypatch.setattr(engine.ingest, "accept", accepting)
        monkeypatch.setattr(backend.store, "update_run", updating)
        for method in ("remove_waiter", "release_key"):
            original = getattr(backend.store, method)
            monkeypatch.setattr(backend.store, method, self._releasing(original))

    def _releasing(self, original):
        def releasing(*args, **kwargs):
            self.note("release")
            return original(*args, **kwargs)

        return releasing

    def note(self, step: str) -> None:
        if not self.steps or self.steps[-1] != step:
            self.steps.append(step)


def make_with_life(backend, clock, script: list, **config) -> tuple[Engine, ScriptedApp, str]:
    app = ScriptedApp({"life": script})
    engine = Engine(backend, Settings(mode="dev", max_deliveries=1), clock=clock, caller=app)
    register(engine, ["life"], {"life": {**LIFE, **config}})
    [event_id] = engine.ingest.accept([{"name": "app/life", "data": {"k": "one"}}])
    [run] = backend.store.runs_for_event(event_id)
    return engine, app, run.run_id


def assert_released(backend, clock, run_id: str) -> None:
    # The key is free for the next run of the key, and the cancel rule's waiter is gone.
    run = backend.store.get_run(run_id)
    key = rule_key("singleton", "life", LIFE["singleton"]["key"], {"event": run.events[0]})
    assert backend.store.claim_key(key, "next", clock.now_ms() + 1000, clock.now_ms()) == "next"
    assert [w for w in backend.store.waiters_for_event("app/stop", clock.now_ms()).waiters if w.run_id == run_id] == []


def test_completion_announces_writes_then_releases(backend, clock, monkeypatch):
    engine, app, run_id = make_with_life(backend, clock, [("run", "a")])
    order = Order(monkeypatch, engine, backend)
    pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status == RunStatus.COMPLETED
    assert order.steps == ["announce", "write", "release"]
    assert_released(backend, clock, run_id)


def test_failure_announces_writes_then_releases(backend, clock, monkeypatch):
    engine, app, run_id = make_with_life(backend, clock, [("run", "a")])
    app.fail_first["a"] = HttpResponse(400, json.dumps({"name": "Broken", "message": "no"}).encode())
    order = Order(monkeypatch, engine, backend)
    pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status == RunStatus.FAILED
    assert order.steps == ["announce", "write", "release"]


def test_cancellation_announces_writes_then_releases(backend, clock, monkeypatch):
    engine, app, run_id = make_with_life(backend, clock, [("sleep", "nap", "1h"), ("run", "a")])
    pump(backend, engine, clock)
    order = Order(monkeypatch, engine, backend)
    engine.cancel_run(run_id)
    assert backend.store.get_run(run_id).status == RunStatus.CANCELLED
    assert order.steps == ["announce", "write", "release"]
    # Before, a cancelled run kept its singleton key until the next run of the key took it over.
    assert_released(backend, clock, run_id)


def test_a_finish_timeout_announces_writes_then_releases(backend, clock, monkeypatch):
    engine, app, run_id = make_with_life(
        backend, clock, [("sleep", "nap", "2h"), ("run", "a")], timeouts={"finish": "30m"}
    )
    pump(backend, engine, clock)
    order = Order(monkeypatch, engine, backend)
    clock.advance(30 * 60 * 1000)  # beyond SQS's delays: the timeout comes through a timer
    pump(backend, engine, clock)
    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.CANCELLED and "timeouts.finish" in run.error["message"]
    assert order.steps == ["announce", "write", "release"]
    assert app.executed["a"] == 0


def test_a_poison_message_fails_its_run_the_same_way(backend, clock, monkeypatch):
    engine, app, run_id = make_with_life(backend, clock, [("sleep", "nap", "1h"), ("run", "a")])
    pump(backend, engine, clock)
    order = Order(monkeypatch, engine, backend)
    backend.queue.send({"kind": "wake", "run_id": run_id})  # no step: it can never be handled
    [message] = backend.queue.receive(1, 60)
    engine.delivery.deliver(message)
    run = backend.store.get_run(run_id)
    assert run.status == RunStatus.FAILED and run.error["name"] == "DeliveryFailed"
    assert order.steps == ["announce", "write", "release"]


def test_a_crash_between_announcing_and_writing_is_repaired_by_the_redelivery(backend, clock, monkeypatch):
    # Why the end is announced first: the redelivered message ends the run again and announces
    # again, which the derived event ids make harmless. Written first, a crash here would leave
    # the run ended in silence.
    engine, app, run_id = make_with_life(backend, clock, [("run", "a")])
    update = backend.store.update_run
    armed = [True]

    def dies_writing_the_end(rid, changes, **kwargs):
        if armed[0] and "status" in changes and RunStatus(changes["status"]).terminal:
            armed[0] = False
            raise Crash("died between announcing the end and writing it")
        return update(rid, changes, **kwargs)

    monkeypatch.setattr(backend.store, "update_run", dies_writing_the_end)
    [message] = backend.queue.receive(1, 60)
    with pytest.raises(Crash):
        engine.executor.handle(message.body)
    backend.queue.ack(message.handle)
    assert backend.store.get_run(run_id).status == RunStatus.RUNNING
    assert len(announced(backend, FINISHED, run_id)) == 1

    clock.advance(Settings(mode="dev").lease_ms + 1)  # the dead executor's lease runs out
    backend.queue.send(message.body)  # and its message comes back
    pump(backend, engine, clock)
    assert backend.store.get_run(run_id).status == RunStatus.COMPLETED
    assert len(announced(backend, FINISHED, run_id)) == 1
    assert app.executed["a"] == 1
