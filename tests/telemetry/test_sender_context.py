"""A run continues the trace of whoever sent its events: on both backends, an app's span (a real
OpenTelemetry tracer of the client's own, spans in memory) sends events through the API with
its ``traceparent`` and ``tracestate``, and the runs they start are in the sender's trace, their
root spans children of and linked to the sender's span, however late they start (a debounce, a
batch read back from the store). Events from several senders start a trace of the run's own
linked to each; a traceparent that is not W3C is ignored, never refused. A signal or event that
ends a wait links the wait's span to its sender."""

from __future__ import annotations

import json

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stepline.api.app import build_api
from stepline.dev.http_server import to_http_api_event
from stepline.engine.core import Engine
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from stepline.telemetry.trace_context import RunTrace
from tests.engine.scripted_app import ScriptedApp, pump, register
from tests.telemetry.traced import make

HOUR = 3600 * 1000


class Sender:
    """The app that sends events: its own tracer provider, its spans kept in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("sender-app")

    def headers(self, span) -> dict[str, str]:
        """What the app's HTTP client instrumentation sends inside ``span``."""
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
        return carrier


def post(api, path: str, body, headers: dict[str, str]) -> tuple[int, dict]:
    event = to_http_api_event(
        "POST", path, {"content-type": "application/json", **headers}, json.dumps(body).encode(), "127.0.0.1"
    )
    result = api.resolve(event, None)
    return int(result["statusCode"]), json.loads(result["body"])


def spans_of(exporter, run) -> list:
    return [s for s in exporter.get_finished_spans() if s.attributes.get("stepline.run.id") == run.run_id]


def root_of(exporter, run):
    [root] = [s for s in spans_of(exporter, run) if s.name.startswith("run ")]
    return root


def completed(backend, event_id: str) -> list:
    runs = backend.store.runs_for_event(event_id)
    assert runs and all(r.status is RunStatus.COMPLETED for r in runs), runs
    return runs


def assert_continues(exporter, run, sender_span) -> None:
    """The run is in the sender's trace: every span of it carries the sender's trace id, its
    root is the sender span's child and links to it."""
    sender = sender_span.get_span_context()
    spans = spans_of(exporter, run)
    assert len(spans) >= 3, [s.name for s in spans]  # root, call, step at least
    assert {s.context.trace_id for s in spans} == {sender.trace_id}
    root = root_of(exporter, run)
    assert root.parent is not None and root.parent.span_id == sender.span_id and root.parent.is_remote
    assert [(link.context.trace_id, link.context.span_id) for link in root.links] == [(sender.trace_id, sender.span_id)]
    assert root.links[0].attributes["stepline.link"] == "sent by"
    stored = RunTrace.parse(run.trace)
    assert stored.trace_id == sender.trace_id and stored.span_id == root.context.span_id


def test_events_sent_from_a_span_run_in_the_senders_trace(backend, clock):
    engine, app, caller, exporter = make(backend, clock, {"one": [("run", "a")], "two": [("run", "b")]})
    api = build_api(engine)
    sender = Sender()
    with sender.tracer.start_as_current_span("checkout") as span:
        headers = {**sender.headers(span), "tracestate": "vendor=abc"}
        status, body = post(api, "/e/key", [{"name": "app/one", "data": {}}, {"name": "app/two", "data": {}}], headers)
    assert status == 200, body
    pump(backend, engine, clock)

    # One request, two events, two runs: each continues the same sender span.
    runs = [r for event_id in body["ids"] for r in completed(backend, event_id)]
    assert len(runs) == 2 and app.executed == {"a": 1, "b": 1}
    for run in runs:
        assert_continues(exporter, run, span)
        root = root_of(exporter, run)
        assert root.parent.trace_state.get("vendor") == "abc"  # the sender's tracestate came along
    # The app was called in the sender's trace too.
    sender_hex = f"{span.get_span_context().trace_id:032x}"
    assert caller.headers and all(h["traceparent"].split("-")[1] == sender_hex for h in caller.headers)
    # The events carry nothing of it to the app.
    assert all("trace" not in e and "traceparent" not in json.dumps(e) for r in runs for e in r.events)


def test_a_debounced_run_started_later_still_continues_the_sender(backend, clock):
    engine, app, _, exporter = make(backend, clock, {"calm": [("run", "a")]})
    register(engine, ["calm"], {"calm": {"debounce": {"period": "1h"}}})
    api = build_api(engine)
    sender = Sender()
    with sender.tracer.start_as_current_span("edit") as span:
        status, body = post(api, "/e/key", {"name": "app/calm", "data": {}}, sender.headers(span))
    assert status == 200, body
    pump(backend, engine, clock)
    assert backend.store.runs_for_event(body["ids"][0]) == []  # held by the debounce
    clock.advance(HOUR + 1_000)
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    assert_continues(exporter, run, span)


def test_a_batch_of_several_senders_events_links_to_each(backend, clock):
    engine, app, _, exporter = make(backend, clock, {"go": [("run", "a")]})
    register(engine, ["go"], {"go": {"batchEvents": {"maxSize": 2, "timeout": "1h"}}})
    api = build_api(engine)
    first, second = Sender(), Sender()
    ids = []
    for sender, name in ((first, "one"), (second, "two")):
        with sender.tracer.start_as_current_span(name) as span:
            status, body = post(api, "/e/key", {"name": "app/go", "data": {}}, sender.headers(span))
            assert status == 200, body
            ids += body["ids"]
    pump(backend, engine, clock)
    [run] = completed(backend, ids[0])
    assert len(run.events) == 2 and app.executed == {"a": 1}

    # Two senders, two traces: the run is a trace of its own whose root links to both.
    [one] = first.exporter.get_finished_spans()
    [two] = second.exporter.get_finished_spans()
    root = root_of(exporter, run)
    assert root.parent is None
    assert root.context.trace_id not in (one.context.trace_id, two.context.trace_id)
    assert {(link.context.trace_id, link.context.span_id) for link in root.links} == {
        (one.context.trace_id, one.context.span_id),
        (two.context.trace_id, two.context.span_id),
    }
    assert {s.context.trace_id for s in spans_of(exporter, run)} == {root.context.trace_id}


def test_an_operator_invoke_continues_the_senders_trace(backend, clock):
    engine, app, _, exporter = make(backend, clock, {"job": [("run", "a")]})
    api = build_api(engine)
    sender = Sender()
    with sender.tracer.start_as_current_span("admin") as span:
        status, body = post(api, "/v1/functions/job/invoke", {"data": {"x": 1}}, sender.headers(span))
    assert status == 200, body
    pump(backend, engine, clock)
    run = backend.store.get_run(body["data"]["run_id"])
    assert run.status is RunStatus.COMPLETED
    assert_continues(exporter, run, span)


@pytest.mark.parametrize(
    "traceparent",
    [
        "not a traceparent",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",  # all-zero trace id
        "00-" + "a" * 32 + "-" + "0" * 16 + "-01",  # all-zero span id
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",  # version ff is forbidden
        "00-" + "A" * 32 + "-" + "b" * 16,  # no flags
        "x" * 5000,
    ],
)
def test_a_traceparent_that_is_not_w3c_is_ignored(backend, clock, traceparent):
    engine, app, _, exporter = make(backend, clock, {"fn": [("run", "a")]})
    api = build_api(engine)
    status, body = post(
        api, "/e/key", {"name": "app/fn", "data": {}}, {"traceparent": traceparent, "tracestate": "=,=="}
    )
    assert status == 200, body
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    root = root_of(exporter, run)
    assert root.parent is None and not root.links  # a trace of its own
    assert RunTrace.parse(run.trace).trace_id == root.context.trace_id


def test_a_sender_that_does_not_sample_is_not_recorded(backend, clock):
    """The default sampler follows the sender's decision, as W3C's sampled flag asks."""
    engine, app, caller, exporter = make(backend, clock, {"fn": [("run", "a")]})
    api = build_api(engine)
    unsampled = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-00"
    status, body = post(api, "/e/key", {"name": "app/fn", "data": {}}, {"traceparent": unsampled})
    assert status == 200, body
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    assert app.executed == {"a": 1}
    trace = RunTrace.parse(run.trace)
    assert trace.trace_hex == "ab" * 16 and not trace.sampled
    assert spans_of(exporter, run) == []
    assert all("traceparent" not in h for h in caller.headers)


def test_with_tracing_off_a_traceparent_is_not_kept(backend, clock):
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=ScriptedApp({"fn": [("run", "a")]}))
    register(engine, ["fn"])
    api = build_api(engine)
    sent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    status, body = post(api, "/e/key", {"name": "app/fn", "data": {}}, {"traceparent": sent})
    assert status == 200, body
    assert backend.store.get_event(body["ids"][0]).trace is None
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    assert RunTrace.parse(run.trace).trace_hex != "ab" * 16


def test_a_large_requests_queued_starts_read_the_context_back_from_the_store(backend, clock):
    """Past ``ingest_inline_events`` the runs start from ``start`` messages that read each event
    back from the store: the context must have been stored with it."""
    settings = Settings(mode="dev", ingest_inline_events=1)
    engine, app, _, exporter = make(backend, clock, {"fn": [("run", "a")]}, settings=settings)
    api = build_api(engine)
    sender = Sender()
    with sender.tracer.start_as_current_span("bulk") as span:
        events = [{"name": "app/fn", "data": {"i": i}} for i in range(3)]
        status, body = post(api, "/e/key", events, sender.headers(span))
    assert status == 200, body
    assert all(
        backend.store.get_event(i).trace["traceparent"] == sender.headers(span)["traceparent"] for i in body["ids"]
    )
    pump(backend, engine, clock)
    runs = [r for event_id in body["ids"] for r in completed(backend, event_id)]
    assert len(runs) == 3 and app.executed == {"a": 3}
    for run in runs:
        assert_continues(exporter, run, span)


def test_a_webhook_delivery_continues_the_senders_trace(backend, clock):
    from tests.webhooks.signing import github_header

    engine, app, _, exporter = make(backend, clock, {"fn": [("run", "a")]})
    api = build_api(engine)
    source = {
        "source": "shop",
        "provider": "github",
        "secret": "gh-secret",
        "transform": {"cel": '{"name": "app/fn", "data": {"n": event.body.n}}'},
    }
    status, body = post(api, "/v1/webhooks", source, {})
    assert status in (200, 201), body
    sender = Sender()
    payload = json.dumps({"n": 1}).encode()
    with sender.tracer.start_as_current_span("notify") as span:
        headers = {
            "x-hub-signature-256": github_header("gh-secret", payload),
            "x-github-delivery": "d-1",
            "x-github-event": "order",
            "content-type": "application/json",
            **sender.headers(span),
        }
        event = to_http_api_event("POST", "/webhooks/shop", headers, payload, "127.0.0.1")
        result = api.resolve(event, None)
    assert result["statusCode"] == 200, result
    pump(backend, engine, clock)
    [event_id] = json.loads(result["body"])["ids"]
    [run] = completed(backend, event_id)
    assert_continues(exporter, run, span)


# What ends a wait without starting a run of the waiting function: the waiting step, the
# request that ends it, and the name its span starts with.
RESUMERS = {
    "signal": (
        ("signal", "approval", "approval/7", "1h"),
        "/v1/signals",
        {"signal": "approval/7", "data": {"ok": True}},
    ),
    "event": (("wait", "paid", "app/paid", "1h"), "/e/key", {"name": "app/paid", "data": {"ok": True}}),
}
SPAN_PREFIX = {"signal": "signal ", "event": "wait "}


@pytest.mark.parametrize("resumer", list(RESUMERS))
def test_what_ends_a_wait_links_the_waits_span_to_its_sender(backend, clock, resumer):
    """A signal, or an event that ends a wait, starts no run of the waiting function: the run
    keeps its own trace, and the wait's span links to the span that sent it."""
    waiting, path, payload = RESUMERS[resumer]
    engine, app, _, exporter = make(backend, clock, {"fn": [waiting, ("run", "after")]})
    api = build_api(engine)
    status, body = post(api, "/e/key", {"name": "app/fn", "data": {}}, {})
    assert status == 200, body
    pump(backend, engine, clock)
    sender = Sender()
    with sender.tracer.start_as_current_span("resume") as span:
        status, reply = post(api, path, payload, sender.headers(span))
    assert status == 200, reply
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    assert app.executed == {"after": 1}
    root = root_of(exporter, run)
    assert root.parent is None and not root.links
    [waited] = [s for s in spans_of(exporter, run) if s.name.startswith(SPAN_PREFIX[resumer])]
    assert waited.parent.span_id == root.context.span_id
    sent = span.get_span_context()
    assert [(link.context.trace_id, link.context.span_id) for link in waited.links] == [(sent.trace_id, sent.span_id)]
    assert waited.links[0].attributes["stepline.link"] == "sent by"


def test_a_wait_ended_by_an_event_without_a_sender_has_no_link(backend, clock):
    script = [("wait", "paid", "app/paid", "1h"), ("run", "after")]
    engine, app, _, exporter = make(backend, clock, {"fn": script})
    api = build_api(engine)
    status, body = post(api, "/e/key", {"name": "app/fn", "data": {}}, {})
    assert status == 200, body
    pump(backend, engine, clock)
    status, reply = post(api, "/e/key", {"name": "app/paid", "data": {}}, {})
    assert status == 200, reply
    pump(backend, engine, clock)
    [run] = completed(backend, body["ids"][0])
    [waited] = [s for s in spans_of(exporter, run) if s.name.startswith("wait ")]
    assert not waited.links
