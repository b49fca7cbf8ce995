"""A store write that fails part-way through an invocation (throttled past retries, an outage):
the executor lets go of the run before the message fails, so the next delivery goes on at once
instead of waiting out the lease; each step still runs once. On both backends."""

from __future__ import annotations

import pytest

from runtime.engine.core import Engine
from runtime.engine.ports import RunStatus, StoreError
from runtime.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, receive_all, register


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
