"""A run started by another run's ``step.send_event`` continues the sending run's trace: an app on
Stepline's SDK served over real HTTP to a traced `stepline dev` runtime (both backends) sends an
event from a step, and the run it starts has its root span as the child of, and linked to, the
span of the step that sent it, in the sending run's trace."""

from __future__ import annotations

import pytest

from stepline import Client, Context, serve_wsgi
from stepline.engine.clock import ManualClock
from stepline.settings import Settings
from stepline.telemetry.trace_context import RunTrace
from tests.sdk.harness import Stack
from tests.telemetry.test_sdk_spans import app_spans
from tests.telemetry.traced import traced_telemetry

APP_ID = "sdk-send-trace"
client = Client(APP_ID, dev=True)
ran: dict[str, int] = {}


@client.function("emit", trigger="sdk-send-trace/emit", retries=0)
def emit(ctx: Context) -> list:
    return ctx.step.send_event("tell", {"name": "sdk-send-trace/told", "data": {"n": 1}})


@client.function("told", trigger="sdk-send-trace/told", retries=0)
def told(ctx: Context) -> int:
    def count() -> int:
        ran[ctx.run_id] = ran.get(ctx.run_id, 0) + 1
        return ctx.event.data["n"]

    return ctx.step.run("count", count)


@pytest.fixture(scope="module", params=["sqlite", "aws"])
def traced_stack(request, tmp_path_factory):
    clock = ManualClock()
    telemetry, runtime_spans = traced_telemetry(clock)
    stack = Stack(serve_wsgi(client), tmp_path_factory.mktemp(f"sdk-send-trace-{request.param}"), APP_ID,
                  clock=clock, settings=Settings(mode="dev"), backend=request.param, telemetry=telemetry)
    try:
        yield stack, runtime_spans
    finally:
        stack.close()


def test_a_run_started_by_send_event_is_the_sending_steps_child(traced_stack):
    stack, runtime_spans = traced_stack
    app = app_spans()
    [event_id] = stack.send({"name": "sdk-send-trace/emit", "data": {}})
    sender = stack.wait_run(event_id, status="Completed")
    sender_trace = RunTrace.parse(stack.runtime.backend.store.get_run(sender["run_id"]).trace)
    [sent_id] = sender["output"]
    child = stack.wait_run(sent_id, status="Completed")
    assert ran == {child["run_id"]: 1}
    ran.clear()

    [step] = [s for s in app.get_finished_spans()
              if s.attributes.get("stepline.run.id") == sender["run_id"] and s.name == "step tell"]
    assert step.context.trace_id == sender_trace.trace_id
    [root] = [s for s in runtime_spans.get_finished_spans()
              if s.name.startswith("run ") and s.attributes["stepline.run.id"] == child["run_id"]]
    assert root.context.trace_id == sender_trace.trace_id
    assert root.parent is not None and root.parent.span_id == step.context.span_id
    assert [(link.context.trace_id, link.context.span_id) for link in root.links] == [
        (sender_trace.trace_id, step.context.span_id)
    ]
    assert root.links[0].attributes["stepline.link"] == "sent by"


def test_without_opentelemetry_in_the_app_the_child_continues_the_call_span(traced_stack, monkeypatch):
    """An app without ``opentelemetry-api`` records no step spans: the events carry the call's
    traceparent, and the run they start is the child of the executor's span for that call."""
    from stepline.sdk import tracing

    monkeypatch.setattr(tracing, "_missing", [True])
    stack, runtime_spans = traced_stack
    [event_id] = stack.send({"name": "sdk-send-trace/emit", "data": {}})
    sender = stack.wait_run(event_id, status="Completed")
    [sent_id] = sender["output"]
    child = stack.wait_run(sent_id, status="Completed")
    assert ran == {child["run_id"]: 1}
    ran.clear()

    spans = runtime_spans.get_finished_spans()
    calls = {s.context.span_id for s in spans
             if s.name.startswith("call ") and s.attributes["stepline.run.id"] == sender["run_id"]}
    [root] = [s for s in spans if s.name.startswith("run ") and s.attributes["stepline.run.id"] == child["run_id"]]
    assert root.context.trace_id == RunTrace.parse(stack.runtime.backend.store.get_run(sender["run_id"]).trace).trace_id
    assert root.parent is not None and root.parent.span_id in calls
    assert [link.context.span_id for link in root.links] == [root.parent.span_id]
