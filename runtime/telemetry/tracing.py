"""Spans of runs on the OpenTelemetry SDK. Imported only when tracing is configured
(``stepline.telemetry.setup``): without it no OpenTelemetry module is loaded at all.

A run's spans, whatever process records them:

    run <fn>                    the root: created → ended, with the ids stored on the run (the
                                child of, and linked to, the span that sent its events, if any)
      call <fn>                 one call to the app (its traceparent names this span)
        step <name>             one step attempt reported on that call (inline, streamed)
      step <name>               a step stored through /v1/checkpoint, outside any call we made
      sleep|wait|signal|invoke <name>
                                from the op's start to its end (a signal's, or an event's wait, links to its sender)
      queued <limit>            time held back by concurrency, throttle or rate limit

Every span is written when what it measures is over, with its real start and end: a sleep of
three days is one span, recorded by whichever invocation saw it end. The root span is written
last, at the run's end, with the span id every other span already names as parent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from stepline.engine.ports import Run, RunStatus
from stepline.telemetry.hooks import StepAttempt, StepStatus
from stepline.telemetry.propagation import sender_context
from stepline.telemetry.trace_context import RunTrace, SenderContext

INSTRUMENTATION = "stepline"
_MS = 1_000_000  # ns per ms
# The senders a run's root links to at most: OpenTelemetry's default span link limit.
MAX_SENDER_LINKS = 128


class _PresetIds(RandomIdGenerator):
    """Random ids, except for the span the current thread asked to have given ids: a run's
    root span is written at its end with the ids chosen when the run was created."""

    def __init__(self) -> None:
        self._preset = threading.local()

    def preset(self, trace_id: int, span_id: int) -> None:
        self._preset.ids = (trace_id, span_id)

    def clear(self) -> None:
        self._preset.ids = None

    def generate_span_id(self) -> int:
        ids = getattr(self._preset, "ids", None)
        return ids[1] if ids is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        ids = getattr(self._preset, "ids", None)
        return ids[0] if ids is not None else super().generate_trace_id()


def _parent(trace_id: int, span_id: int) -> Any:
    flags = TraceFlags(TraceFlags.SAMPLED)
    span = NonRecordingSpan(SpanContext(trace_id, span_id, is_remote=True, trace_flags=flags))
    return trace.set_span_in_context(span)


class _Call:
    """A call span; the steps its reply reports (read after it ended, or streamed while it ran)
    are its children. It stays its thread's call until the next one begins."""

    def __init__(self, tracer: OtelRunTracer, span: Any, run_id: str, started_ms: int, now: Callable[[], int]) -> None:
        self.tracer = tracer
        self.now = now
        self.span = span
        self.run_id = run_id
        self.span_id: int = span.get_span_context().span_id
        self.last_ms = started_ms  # when the last step reported on this call ended
        self.ended_ms: int | None = None

    def ended(self, status: int, error: Mapping[str, Any] | None) -> None:
        if status:
            self.span.set_attribute("http.response.status_code", status)
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, _describe(error)))
        self.ended_ms = self.now()
        self.span.end(end_time=self.ended_ms * _MS)


class OtelRunTracer:
    """``RunTracer`` on an OpenTelemetry ``TracerProvider`` of its own (its processors export)."""

    def __init__(
        self,
        processor: SpanProcessor,
        *,
        sampler: Sampler | None = None,
        resource: Any = None,
    ) -> None:
        self.ids = _PresetIds()
        kwargs: dict[str, Any] = {"id_generator": self.ids}
        if sampler is not None:
            kwargs["sampler"] = sampler
        if resource is not None:
            kwargs["resource"] = resource
        self.provider = TracerProvider(**kwargs)
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer(INSTRUMENTATION)
        self.calls = threading.local()  # .current: the call under way in this thread

    def new_run(self, senders: Sequence[SenderContext]) -> RunTrace:
        """The trace context of a run whose events came with ``senders``' contexts.

        A run is the consumer of the events it was started by, so OpenTelemetry's messaging
        conventions apply: the consumer's span links to the creation context of each message
        (a link is the only relation a run started by several senders' events can have: a span
        has one parent), and when there is one, it may also be that span's child. Stepline does
        both. Its root span is a child of the one sender's span, so the run is in the sender's
        trace (its trace id, its log lines' ``trace_id``), which is what someone following a
        request in a trace viewer looks for, and it also links to that span, as the conventions
        ask. Events from several senders (a batch, a debounce that kept the last of several)
        start a trace of the run's own whose root links to each sender's span. Inngest's own
        server keeps its traces as new roots linked to the sender's; in Stepline a run is the
        unit a trace follows, and joining the sender's trace costs the run nothing of that.
        Sampling: the configured sampler decides, given the parent (the default, parent-based,
        follows the sender's sampled flag).
        """
        kept: list[tuple[SenderContext, SpanContext]] = []
        for sender in senders:
            context = sender_context(sender.carrier())
            if context is not None and len(kept) < MAX_SENDER_LINKS:
                kept.append((sender, context))
        fresh = RunTrace.new(sampled=False)
        parent: SenderContext | None = None
        parent_context = None
        trace_id = fresh.trace_id
        if len(kept) == 1:
            parent, remote = kept[0]
            trace_id = remote.trace_id
            parent_context = trace.set_span_in_context(NonRecordingSpan(remote))
        links = [Link(remote) for _, remote in kept]
        decision = self.provider.sampler.should_sample(parent_context, trace_id, "run", links=links)
        return RunTrace(
            trace_id, fresh.span_id, decision.decision.is_sampled(), parent, tuple(sender for sender, _ in kept)
        )

    def run_ended(self, run: Run, run_trace: RunTrace, ended_ms: int, invoked_by: RunTrace | None) -> None:
        links = []
        if invoked_by is not None:
            invoker = SpanContext(invoked_by.trace_id, invoked_by.span_id, is_remote=True)
            links.append(Link(invoker, {"stepline.link": "invoked by"}))
        links += _sender_links(run_trace.links)
        parent = trace.set_span_in_context(trace.INVALID_SPAN)  # a root: no parent
        remote_parent = sender_context(run_trace.parent.carrier()) if run_trace.parent is not None else None
        if remote_parent is not None and remote_parent.trace_id == run_trace.trace_id:
            parent = trace.set_span_in_context(NonRecordingSpan(remote_parent))
        self.ids.preset(run_trace.trace_id, run_trace.span_id)
        try:
            span = self.tracer.start_span(
                f"run {run.fn_id}",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=_run_attributes(run),
                start_time=run.created_at * _MS,
                links=links,
            )
        finally:
            self.ids.clear()
        span.set_attribute("stepline.run.status", run.status.value)
        if run.status == RunStatus.FAILED:
            span.set_status(Status(StatusCode.ERROR, _describe(run.error or {})))
        span.end(end_time=ended_ms * _MS)

    def call_began(
        self, run: Run, run_trace: RunTrace, step: str, attempt: int, started_ms: int, now: Callable[[], int]
    ) -> _Call:
        attributes = {**_run_attributes(run), "stepline.call.step": step, "stepline.call.attempt": attempt}
        span = self.tracer.start_span(
            f"call {run.fn_id}",
            context=_parent(run_trace.trace_id, run_trace.span_id),
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=started_ms * _MS,
        )
        call = _Call(self, span, run.run_id, started_ms, now)
        self.calls.current = call
        return call

    def step(self, run: Run, run_trace: RunTrace, attempt: StepAttempt) -> None:
        call: _Call | None = getattr(self.calls, "current", None)
        parent = run_trace.span_id
        started, ended = attempt.started_ms, attempt.ended_ms
        if call is not None and call.run_id == run.run_id:
            # Reported by this thread's last call: its child, begun when the step before it
            # ended, and over when the call's answer came (a reply read after the call).
            parent = call.span_id
            if call.ended_ms is not None:
                ended = min(ended, call.ended_ms)
            started = min(max(started, call.last_ms), ended)
            call.last_ms = ended
        attributes: dict[str, Any] = {
            **_run_attributes(run),
            "stepline.step.id": attempt.step_id,
            "stepline.step.name": attempt.name or attempt.step_id,
            "stepline.step.kind": attempt.kind,
            "stepline.step.attempt": attempt.attempt,
            "stepline.step.status": attempt.status.value,
        }
        if attempt.checkpointed:
            attributes["stepline.step.checkpointed"] = True
        error = _describe(attempt.error) if attempt.error is not None else None
        if error is not None:
            attributes["stepline.step.error"] = error
        span = self.tracer.start_span(
            f"step {attempt.name or attempt.step_id}",
            context=_parent(run_trace.trace_id, parent),
            attributes=attributes,
            start_time=started * _MS,
        )
        if attempt.status is not StepStatus.OK:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=ended * _MS)

    def span(
        self,
        run_trace: RunTrace,
        name: str,
        start_ms: int,
        end_ms: int,
        attributes: dict[str, Any],
        error: str | None,
        links: Sequence[SenderContext] = (),
    ) -> None:
        span = self.tracer.start_span(
            name,
            context=_parent(run_trace.trace_id, run_trace.span_id),
            attributes=attributes,
            start_time=start_ms * _MS,
            links=_sender_links(links),
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=end_ms * _MS)

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()


def _sender_links(senders: Sequence[SenderContext]) -> list[Link]:
    remotes = (sender_context(sender.carrier()) for sender in senders)
    return [Link(remote, {"stepline.link": "sent by"}) for remote in remotes if remote is not None]


def _run_attributes(run: Run) -> dict[str, Any]:
    return {"stepline.run.id": run.run_id, "stepline.function.id": run.fn_id, "stepline.app.id": run.app_id}


def _describe(error: Mapping[str, Any]) -> str:
    return f"{error.get('name') or 'Error'}: {error.get('message') or ''}"
