"""`timeouts.start` in the engine, on both backends: a run first picked up after its start
timeout is cancelled without calling the app; one picked up in time runs."""

from __future__ import annotations

import json

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.protocol.register import parse_register
from stepline.settings import Settings

APP_URL = "http://127.0.0.1:9/api/inngest"


class RecordingApp:
    """Stands in for the app's HTTP endpoint: counts calls and completes the run."""

    def __init__(self) -> None:
        self.calls = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.calls += 1
        return HttpResponse(200, json.dumps({"done": True}).encode(), {"x-inngest-req-version": "2"})


def register(engine: Engine) -> None:
    fn = {
        "id": "t-app-quick", "name": "quick", "triggers": [{"event": "app/go"}],
        "timeouts": {"start": "10s"},
        "steps": {"step": {"id": "step", "name": "step",
                           "runtime": {"type": "http", "url": APP_URL + "?fnId=t-app-quick&stepId=step"}}},
    }
    body = {"appname": "t-app", "url": APP_URL, "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1", "functions": [fn]}
    engine.registry.register(parse_register(json.dumps(body).encode()))


def pick_up(backend, engine: Engine) -> None:
    [message] = backend.queue.receive(1, 60)
    engine.executor.handle(message.body)
    backend.queue.ack(message.handle)


def test_a_run_picked_up_after_its_start_timeout_is_cancelled(backend, clock):
    app = RecordingApp()
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine)
    [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
    clock.advance(11_000)
    pick_up(backend, engine)
    [run] = backend.store.runs_for_event(event_id)
    assert run.status == RunStatus.CANCELLED
    assert "timeouts.start" in run.error["message"]
    assert app.calls == 0


def test_a_run_picked_up_in_time_runs(backend, clock):
    app = RecordingApp()
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine)
    [event_id] = engine.ingest.accept([{"name": "app/go", "data": {}}])
    clock.advance(9_000)
    pick_up(backend, engine)
    [run] = backend.store.runs_for_event(event_id)
    assert run.status == RunStatus.COMPLETED and run.output == {"done": True}
    assert app.calls == 1
