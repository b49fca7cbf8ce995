"""The W3C trace context an app sends with its events, read with OpenTelemetry's propagator.

An app that sends events (the Event API, ``POST /v1/events``, an operator's invoke, a webhook
delivery) from inside a span of its own sends that span's context in the request's
``traceparent`` (and ``tracestate``) headers: its HTTP client's instrumentation puts them there.
The runs those events start join the sender's trace (``OtelRunTracer.new_run``). The context is
kept with each stored event (``StoredEvent.trace``), because a run may start long after the
request (debounce, batching, a queued start): it is the propagator's own output, so what is
stored is valid W3C. A header that is not is ignored, as the W3C spec asks of a receiver: the
event is accepted and its runs start traces of their own.

Imported only with tracing on (``Telemetry.sender``): without it there is no trace to join.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stepline.telemetry.trace_context import TRACEPARENT, TRACESTATE

_PROPAGATOR = TraceContextTextMapPropagator()


def sender_carrier(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The sender's context in request headers (any case), as the propagator writes it back;
    None when there is none or it is not valid W3C."""
    carrier = {name.lower(): value for name, value in headers.items() if name.lower() in (TRACEPARENT, TRACESTATE)}
    if TRACEPARENT not in carrier:
        return None
    try:
        context = _PROPAGATOR.extract(carrier)
    except Exception:  # noqa: BLE001 - whatever a header holds, the request is not failed for it
        return None
    span_context = trace.get_current_span(context).get_span_context()
    if not span_context.is_valid:
        return None
    out: dict[str, str] = {}
    _PROPAGATOR.inject(out, context=context)
    return out or None


def sender_context(carrier: Mapping[str, str]) -> trace.SpanContext | None:
    """The span a stored carrier names (remote), with its trace state; None if not valid."""
    try:
        context = _PROPAGATOR.extract(dict(carrier))
    except Exception:  # noqa: BLE001 - a stored carrier was written by the propagator; be safe all the same
        return None
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None
