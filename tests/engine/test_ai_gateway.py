"""The AI gateway's job on the engine alone, on both backends with a manual clock: a model
request whose `ai_call` message was lost is sent again by the sweeper, once nobody holds the op,
and the provider is asked once; a request in hand is left to its job."""

from __future__ import annotations

import json
from typing import Any

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from tests.engine.scripted_app import drop_all, pump, receive_all, register

SETTINGS = Settings(mode="dev")
GRACE_MS = int(SETTINGS.sweep_grace_s * 1000)
FN = "t-app-ask"
PROVIDER = "http://127.0.0.1:9/v1/messages"
ANSWER = {"content": [{"type": "text", "text": "hi"}]}


class AppAndProvider:
    """The app (one `step.ai.infer`, then the function returns the answer) and the model's API,
    both reached through the engine's one HTTP caller."""

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        if url == PROVIDER:
            self.asked.append({"headers": headers, "body": json.loads(body)})
            return HttpResponse(200, json.dumps(ANSWER).encode())
        memos = json.loads(body)["steps"]
        if "ask" in memos:
            return HttpResponse(200, json.dumps(memos["ask"]["data"]).encode(), {"x-inngest-req-version": "2"})
        opts = {"url": PROVIDER, "format": "anthropic", "auth_key": "sk-test", "headers": {},
                "body": {"messages": [{"role": "user", "content": "hi"}]}, "type": "step.ai.infer"}
        op = {"op": "AIGateway", "id": "ask", "name": "ask", "displayName": "ask", "opts": opts}
        return HttpResponse(206, json.dumps([op]).encode(), {"x-inngest-req-version": "2"})


def start(backend, clock) -> tuple[Engine, AppAndProvider, str]:
    app = AppAndProvider()
    engine = Engine(backend, SETTINGS, clock=clock, caller=app)
    register(engine, [FN])
    [event_id] = engine.ingest.accept([{"name": f"app/{FN}", "data": {}}])
    [run] = backend.store.runs_for_event(event_id)
    [message] = receive_all(backend)  # discovery: the op is recorded, its job queued
    engine.executor.handle(message.body)
    backend.queue.ack(message.handle)
    return engine, app, run.run_id


def test_a_model_request_whose_message_was_lost_is_sent_again_by_the_sweeper(backend, clock):
    engine, app, run_id = start(backend, clock)
    assert [b["kind"] for b in drop_all(backend)] == ["ai_call"]  # lost
    assert pump(backend, engine, clock) == 0 and backend.store.get_run(run_id).status is RunStatus.RUNNING

    clock.advance(GRACE_MS + 1)
    assert dict(engine.sweeper.sweep().sent) == {"ai_call": 1}
    pump(backend, engine, clock)
    run = backend.store.get_run(run_id)
    assert run.status is RunStatus.COMPLETED and run.output == ANSWER
    assert len(app.asked) == 1 and app.asked[0]["headers"]["x-api-key"] == "sk-test"
    # The key went with the op: nothing of the run keeps it.
    state = backend.store.load_run(run_id)
    assert "sk-test" not in json.dumps([m.detail for m in state.memos]) and not state.pending


def test_a_model_request_in_hand_is_left_to_its_job(backend, clock):
    engine, app, run_id = start(backend, clock)
    drop_all(backend)
    now = clock.now_ms()
    assert backend.store.claim_pending(run_id, "ask", "job-asking", now + 2 * GRACE_MS, now)
    clock.advance(GRACE_MS + 1)
    report = engine.sweeper.sweep()
    assert (report.in_hand, dict(report.sent)) == (1, {})
    assert app.asked == []
