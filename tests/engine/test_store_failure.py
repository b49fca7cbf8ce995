"""A store write that fails part-way through an invocation (throttled past retries, an outage):
the executor lets go of the run before the message fails, so the next delivery goes on at once
instead of waiting out the lease; each step still runs once. On both backends."""

from __future__ import annotations

import pytest

from stepline.engine.core import Engine
from stepline.engine.ports import RunStatus, StoreError
from stepline.settings import Settings
from tests.engine.scripted_app import Crash, ScriptedApp, pump, receive_all, register


def test_a_failed_write_lets_go_of_the_run_and_the_next_delivery_finishes_it(backend, clock, monkeypatch):
    app = ScriptedApp({"t-app-two": [("run", "a"), ("run", "b")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, ["t-app-two"])
    [event_id] = engine.ingest.accept([{"name": "app/t-app-two", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)

    commit = backend.store.commit_memo
    failed = []

    def fails_on_b(run_id, memo):
        if memo.name == "b" and not failed:
            failed.append(memo.step_id)
            raise StoreError("injected: throttled past retries")
        return commit(run_id, memo)

    monkeypatch.setattr(backend.store, "commit_memo", fails_on_b)
    [message] = receive_all(backend)
    with pytest.raises(StoreError):
        engine.executor.handle(message.body)
    assert failed
    state = backend.store.load_run(run.run_id)
    assert state.run.lease_owner is None  # let go: no waiting out the lease
    assert [m.name for m in state.memos] == ["a"]

    engine.executor.handle(message.body)  # the redelivery, at once: no clock advance
    pump(backend, engine, clock)
    assert backend.store.get_run(run.run_id).status is RunStatus.COMPLETED
    # "b" ran twice (its first result was never recorded), "a" once.
    assert app.executed == {"a": 1, "b": 2}


def test_a_planned_step_whose_job_died_after_its_memo_is_not_called_again(backend, clock, monkeypatch):
    app = ScriptedApp({"t-par": [("parallel", ["p1", "p2"]), ("run", "join")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, ["t-par"])
    [event_id] = engine.ingest.accept([{"name": "app/t-par", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    [discovery] = receive_all(backend)
    engine.executor.handle(discovery.body)
    backend.queue.ack(discovery.handle)
    planned = {m.body["step"]: m for m in receive_all(backend)}
    assert set(planned) == {"p1", "p2"}

    remove = backend.store.remove_pending

    def dies_removing_p1(run_id, step_id):
        if step_id == "p1":
            monkeypatch.setattr(backend.store, "remove_pending", remove)
            raise Crash("died between the memo and removing the op")
        return remove(run_id, step_id)

    monkeypatch.setattr(backend.store, "remove_pending", dies_removing_p1)
    with pytest.raises(Crash):
        engine.executor.handle(planned["p1"].body)
    assert backend.store.get_pending(run.run_id, "p1") is not None  # memo written, op left

    targets: list[str] = []
    app.before_call = lambda fn_id, target: targets.append(target)
    clock.advance(Settings(mode="dev").lease_ms + 1)  # the dead job's claim expires
    engine.executor.handle(planned["p1"].body)  # its message, delivered again
    assert "p1" not in targets  # settled already: the app is not asked for it again
    assert backend.store.get_pending(run.run_id, "p1") is None

    for message in planned.values():
        backend.queue.ack(message.handle)
    engine.executor.handle(planned["p2"].body)
    pump(backend, engine, clock)
    assert backend.store.get_run(run.run_id).status is RunStatus.COMPLETED
    assert app.executed == {"p1": 1, "p2": 1, "join": 1}
