"""Engines whose spans land in OpenTelemetry's in-memory exporter, and the questions tests ask of
a run's spans (which are its root, its calls, its steps; who is whose parent)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.settings import Settings
from stepline.telemetry import Telemetry
from stepline.telemetry.trace_context import RunTrace
from stepline.telemetry.tracing import OtelRunTracer
from tests.engine.scripted_app import ScriptedApp, register


def traced_telemetry(clock, sampler: Sampler | None = None) -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Telemetry(clock, OtelRunTracer(SimpleSpanProcessor(exporter), sampler=sampler)), exporter


class HeaderLog:
    """The executor's HTTP caller in front of a scripted app: keeps each call's headers."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.headers: list[dict[str, str]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.headers.append(dict(headers))
        return self.app.post(url, body, headers, timeout_s)


def make(backend, clock, scripts: dict, *, app: Any = None, sampler: Sampler | None = None,
         settings: Settings | None = None, configs: dict[str, dict] | None = None):
    app = app or ScriptedApp(scripts)
    caller = HeaderLog(app)
    telemetry, exporter = traced_telemetry(clock, sampler)
    engine = Engine(backend, settings or Settings(mode="dev"), clock=clock, caller=caller, telemetry=telemetry)
    register(engine, list(scripts), configs)
    return engine, app, caller, exporter


@dataclass
class RunSpans:
    """The spans of one run, checked to be one trace under one root."""

    spans: list[ReadableSpan]

    @classmethod
    def of(cls, exporter: InMemorySpanExporter, run) -> RunSpans:
        trace = RunTrace.parse(run.trace)
        assert trace is not None and trace.sampled, run.trace
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace.trace_id]
        assert spans, "no spans in the run's trace"
        assert all(s.attributes.get("stepline.run.id") == run.run_id for s in spans)
        [root] = [s for s in spans if s.parent is None]
        assert root.context.span_id == trace.span_id, "the root span has the ids stored with the run"
        return cls(spans)

    @property
    def root(self) -> ReadableSpan:
        return next(s for s in self.spans if s.parent is None)

    def named(self, prefix: str) -> list[ReadableSpan]:
        return sorted((s for s in self.spans if s.name.startswith(prefix)), key=lambda s: (s.start_time, s.name))

    def parent_of(self, span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None
        [parent] = [s for s in self.spans if s.context.span_id == span.parent.span_id]
        return parent

    def steps(self, step_id: str) -> list[ReadableSpan]:
        return [s for s in self.named("step ") if s.attributes["stepline.step.id"] == step_id]


def stream_reply(lines: list[dict], before_each=lambda line: None) -> HttpResponse:
    """A checkpoint stream whose lines come as the executor reads them, ``before_each(line)``
    running as each is written (the app's step running, say)."""

    class Lines:
        def __iter__(self):
            for line in lines:
                before_each(line)
                yield json.dumps(line).encode()

        def close(self) -> None:
            return None

    return HttpResponse(200, b"", {"x-stepline-checkpoint": "stream"}, lines=Lines())
