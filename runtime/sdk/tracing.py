"""Spans of the app's own steps, in the run's trace: each call from Stepline carries a W3C
``traceparent`` naming the executor's span for the call, and each step the SDK runs becomes a
span under it, made with the app's OpenTelemetry tracer (whatever provider the app set up).

OpenTelemetry is optional for the SDK: without the ``opentelemetry-api`` package, or on a call
without a traceparent (tracing is off in Stepline), a step costs one attribute check, and
nothing is imported.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

TRACEPARENT = "traceparent"
_missing: list[bool] = []  # [True] once the API was found not installed


@contextlib.contextmanager
def step_span(traceparent: str | None, run_id: str, step_id: str, attempt: int) -> Iterator[None]:
    """A span around a step's body, child of the call's span; nothing without a traceparent."""
    if not traceparent or _missing:
        yield
        return
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        _missing.append(True)
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
        yield
