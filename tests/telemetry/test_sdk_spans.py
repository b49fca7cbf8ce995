"""Stepline's SDK makes its step spans under the call's traceparent: an app on our SDK served
over real HTTP to a `stepline dev` runtime whose spans go to one in-memory exporter, while the
app's own spans go, through the global tracer provider the app set up, to another. The app's
step spans are children of the executor's call spans, in the run's trace."""

from __future__ import annotations

import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stepline import Client, Context, serve_wsgi
from stepline.engine.clock import ManualClock
from stepline.settings import Settings
from stepline.telemetry.trace_context import RunTrace
from tests.sdk.harness import Stack
from tests.telemetry.traced import traced_telemetry

APP_ID = "sdk-spans"
client = Client(APP_ID, dev=True)
_lock = threading.Lock()


@client.function("chain", trigger="sdk-spans/chain", retries=0)
def chain(ctx: Context) -> list:
    return [ctx.step.run(f"s{i}", lambda i=i: i) for i in range(3)]


@client.function("per-step", trigger="sdk-spans/per-step", retries=0, checkpointing=False)
def per_step(ctx: Context) -> list:
    return [ctx.step.run(f"s{i}", lambda i=i: i) for i in range(3)]


_APP_SPANS: list[InMemorySpanExporter] = []


def app_spans() -> InMemorySpanExporter:
    """The app's exporter, behind the process's global tracer provider (settable once)."""
    with _lock:
        if not _APP_SPANS:
            exporter = InMemorySpanExporter()
            provider = TracerProvider()
            provider.add_span_processor(SimpleSpanProcessor(exporter))
            trace.set_tracer_provider(provider)
            _APP_SPANS.append(exporter)
        return _APP_SPANS[0]


@pytest.fixture(scope="module")
def traced_stack(tmp_path_factory):
    clock = ManualClock()
    telemetry, runtime_spans = traced_telemetry(clock)
    stack = Stack(serve_wsgi(client), tmp_path_factory.mktemp("sdk-spans"), APP_ID, clock=clock,
                  settings=Settings(mode="dev"), telemetry=telemetry)
    try:
        yield stack, runtime_spans
    finally:
        stack.close()


@pytest.mark.parametrize(("event", "calls"), [("sdk-spans/chain", 1), ("sdk-spans/per-step", 4)])
def test_the_apps_step_spans_are_children_of_the_calls_that_ran_them(traced_stack, event, calls):
    stack, runtime_spans = traced_stack
    app = app_spans()
    app.clear()
    runtime_spans.clear()
    [event_id] = stack.send({"name": event, "data": {}})
    run = stack.wait_run(event_id, status="Completed")
    stored = stack.runtime.backend.store.get_run(run["run_id"])
    run_trace = RunTrace.parse(stored.trace)

    call_spans = {s.context.span_id: s for s in runtime_spans.get_finished_spans() if s.name.startswith("call ")
                  and s.attributes["stepline.run.id"] == run["run_id"]}
    assert len(call_spans) == calls
    steps = [s for s in app.get_finished_spans() if s.attributes.get("stepline.run.id") == run["run_id"]]
    assert sorted(s.name for s in steps) == ["step s0", "step s1", "step s2"]
    for step in steps:
        assert step.context.trace_id == run_trace.trace_id
        assert step.parent is not None and step.parent.span_id in call_spans, step.name
    # Checkpointed, all three ran on one call; one call per step, each under its own.
    assert len({s.parent.span_id for s in steps}) == (1 if calls == 1 else 3)
