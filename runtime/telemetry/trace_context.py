"""A run's trace context: the W3C ``traceparent`` of the run's root span, stored with the run.

A run is one trace however many invocations, queue hops, sleeps and waits it spans: the context
is made when the run is created, stored on it (``Run.trace``), and every span recorded about the
run afterwards, in whatever process, is a child of that root span. The root span itself is
written when the run ends, with the stored ids, its start the run's creation.

When the events that started the run came with their sender's W3C context (an app's span sent a
``traceparent`` with the request: ``stepline.telemetry.propagation``), the run keeps that too:
the root's parent and the root's links (``stepline.telemetry.tracing.OtelRunTracer.new_run``
says which and why). Stored, such a context is a small JSON object instead of a bare
traceparent; a bare one (every run without a sender, and runs stored before senders were kept)
still reads as before.

Plain Python, no OpenTelemetry import: a run gets its context (and its log lines their trace id)
whether or not tracing is on, for the price of 16 random bytes.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"


@dataclass(frozen=True)
class SenderContext:
    """The W3C context an event's sender sent with it, as the propagator wrote it back
    (validated, normalised): the span that sent the event."""

    traceparent: str
    tracestate: str = ""

    def carrier(self) -> dict[str, str]:
        """The headers the propagator reads it from."""
        out = {TRACEPARENT: self.traceparent}
        if self.tracestate:
            out[TRACESTATE] = self.tracestate
        return out

    @classmethod
    def of(cls, carrier: Mapping[str, Any] | None) -> SenderContext | None:
        """From a stored carrier (``StoredEvent.trace``); None for none or a malformed one."""
        if not isinstance(carrier, Mapping):
            return None
        traceparent, tracestate = carrier.get(TRACEPARENT), carrier.get(TRACESTATE) or ""
        if not isinstance(traceparent, str) or not isinstance(tracestate, str) or RunTrace.parse(traceparent) is None:
            return None
        return cls(traceparent, tracestate)


@dataclass(frozen=True)
class RunTrace:
    """Ids of a run's root span, and whether the run is sampled (recorded at all); ``parent``,
    the sender's span the root is a child of, and ``links``, the senders' spans it links to."""

    trace_id: int
    span_id: int
    sampled: bool
    parent: SenderContext | None = None
    links: tuple[SenderContext, ...] = ()

    @property
    def trace_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def traceparent(self, span_id: int | None = None) -> str:
        """The W3C header naming this run's root span, or ``span_id`` in the run's trace."""
        return f"00-{self.trace_hex}-{span_id or self.span_id:016x}-{'01' if self.sampled else '00'}"

    def stored(self) -> str:
        """What ``Run.trace`` holds: the bare traceparent, or JSON when there are senders."""
        if self.parent is None and not self.links:
            return self.traceparent()
        doc: dict[str, Any] = {TRACEPARENT: self.traceparent()}
        if self.parent is not None:
            doc["parent"] = self.parent.carrier()
        if self.links:
            doc["links"] = [link.carrier() for link in self.links]
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def new(cls, sampled: bool, trace_id: int | None = None) -> RunTrace:
        """Fresh random ids (W3C: neither may be all zeros)."""
        trace = trace_id or int.from_bytes(os.urandom(16), "big") or 1
        span = int.from_bytes(os.urandom(8), "big") or 1
        return cls(trace, span, sampled)

    @classmethod
    def parse(cls, value: str | None) -> RunTrace | None:
        """The context in a stored ``Run.trace`` (or a bare ``traceparent``); None for nothing or
        anything malformed."""
        return _parse(value) if value else None


@functools.lru_cache(maxsize=4096)  # a run's context is read at every hook: parse it once
def _parse(value: str) -> RunTrace | None:
    if value.startswith("{"):
        return _parse_doc(value)
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return RunTrace(trace_id, span_id, bool(int(match.group(3), 16) & 1))


def _parse_doc(value: str) -> RunTrace | None:
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get(TRACEPARENT), str) or doc[TRACEPARENT].startswith("{"):
        return None
    root = _parse(doc[TRACEPARENT])
    if root is None:
        return None
    links = doc.get("links")
    kept = [SenderContext.of(link) for link in links] if isinstance(links, list) else []
    return RunTrace(
        root.trace_id,
        root.span_id,
        root.sampled,
        SenderContext.of(doc.get("parent")),
        tuple(link for link in kept if link is not None),
    )
