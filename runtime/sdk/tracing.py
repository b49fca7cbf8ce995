"""Spans of the app's own steps, in the run's trace: each call from Stepline carries a W3C
``traceparent`` naming the executor's span for the call, and each step the SDK runs becomes a
span under it, made with the app's OpenTelemetry tracer (whatever provider the app set up).

OpenTelemetry is optional for the SDK: without the ``opentelemetry-api`` package, or on a call
without a traceparent (tracing is off in Stepline), a step costs one attribute check, and
nothing is imported.

A step that sends events (``step.send_event``, or ``send`` inside a ``step.run``) sends the step's
context with them (``step_traceparent``): the step's span, or the call's span when the app
records none. The runs those events start continue this run's trace from the step that sent
them, as they would a traced HTTP client's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

TRACEPARENT = "traceparent"
_missing: list[bool] = []  # [True] once the API was found not installed

# The traceparent of the step running now (``step_span``); a thread started for the step with
# ``asyncio.to_thread`` sees it too, as it copies the context.
_step: ContextVar[str | None] = ContextVar("stepline_sdk_step_traceparent", default=None)


def step_traceparent() -> str | None:
    """The W3C traceparent naming the step running now, for the events it sends; None outside a
    step or on a call without a traceparent."""
    return _step.get()


@contextlib.contextmanager
def _naming(traceparent: str) -> Iterator[None]:
    token = _step.set(traceparent)
    try:
        yield
    finally:
        _step.reset(token)


@contextlib.contextmanager
def step_span(traceparent: str | None, run_id: str, step_id: str, attempt: int) -> Iterator[None]:
    """A span around a step's body, child of the call's span; nothing without a traceparent."""
    if not traceparent:
        yield
        return
    if _missing:
        with _naming(traceparent):
            yield
        return
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        _missing.append(True)
        with _naming(traceparent):
            yield
        return
    parent: Any = TraceContextTextMapPropagator().extract({TRACEPARENT: traceparent})
    tracer = trace.get_tracer("stepline.sdk")
    attributes: dict[str, Any] = {
        "stepline.run.id": run_id,
        "stepline.step.id": step_id,
        "stepline.step.attempt": attempt,
    }
    with tracer.start_as_current_span(f"step {step_id}", context=parent, attributes=attributes):
        # The step's span; with no provider set up it is the call's (a non-recording span under it).
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
        with _naming(carrier.get(TRACEPARENT) or traceparent):
            yield
