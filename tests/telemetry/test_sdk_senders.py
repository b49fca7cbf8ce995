"""The official Python SDK as the sender: `inngest` 0.5.19's `send` adds no trace context of its
own (its requests carry no traceparent); an app that traces its HTTP client with OpenTelemetry's
httpx instrumentation sends the current span's context on every request, `send` included. Such
an event's run, on `stepline dev` exporting to a real OTLP receiver, is in the app's trace: its
root is the child of, and linked to, the span of the HTTP request that sent the event."""

from __future__ import annotations

import inngest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.e2e.conftest import SdkApp, http
from tests.telemetry.otlp import assert_in_senders_trace, completed_run_spans


def test_an_event_sent_by_the_python_sdk_from_a_traced_app_continues_its_trace(traced_dev, receiver):
    app = SdkApp(traced_dev)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    client = inngest.Inngest(
        app_id="py-sender", is_production=False, event_api_base_url=traced_dev, api_base_url=traced_dev
    )
    try:
        status, body = http("PUT", app.url)
        assert status == 200, body
        # Uninstrumented, the SDK's send carries no context: the run is a trace of its own.
        with provider.get_tracer("py-sender").start_as_current_span("plain"):
            [plain_id] = client.send_sync(inngest.Event(name="test/multi", data={"key": "py-plain"}))
        _, plain = completed_run_spans(traced_dev, receiver, plain_id)
        [plain_root] = [s for s in plain if s.name.startswith("run ")]
        assert not plain_root.parent_span_id and not plain_root.links
        instrumentor = HTTPXClientInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            with provider.get_tracer("py-sender").start_as_current_span("checkout") as span:
                [event_id] = client.send_sync(inngest.Event(name="test/multi", data={"key": "py-sender"}))
        finally:
            instrumentor.uninstrument()
        run, spans = completed_run_spans(traced_dev, receiver, event_id)
        assert app.count("multi-step", "c", "py-sender") == 1
    finally:
        app.stop()

    # The httpx span that carried the send is the checkout span's child: the run hangs under it.
    [request] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert request.parent.span_id == span.get_span_context().span_id
    assert_in_senders_trace(spans, f"{request.context.trace_id:032x}", f"{request.context.span_id:016x}")
