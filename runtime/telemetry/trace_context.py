"""A run's trace context: the W3C ``traceparent`` of the run's root span, stored with the run.

A run is one trace however many invocations, queue hops, sleeps and waits it spans: the context
is made when the run is created, stored on it (``Run.trace``), and every span recorded about the
run afterwards, in whatever process, is a child of that root span. The root span itself is
written when the run ends, with the stored ids, its start the run's creation.

Plain Python, no OpenTelemetry import: a run gets its context (and its log lines their trace id)
whether or not tracing is on, for the price of 16 random bytes.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True)
class RunTrace:
    """Ids of a run's root span, and whether the run is sampled (recorded at all)."""

    trace_id: int
    span_id: int
    sampled: bool

    @property
    def trace_hex(self) -> str:
        return f"{self.trace_id:032x}"

    def traceparent(self, span_id: int | None = None) -> str:
        """The W3C header naming this run's root span, or ``span_id`` in the run's trace."""
        return f"00-{self.trace_hex}-{span_id or self.span_id:016x}-{'01' if self.sampled else '00'}"

    @classmethod
    def new(cls, sampled: bool, trace_id: int | None = None) -> RunTrace:
        """Fresh random ids (W3C: neither may be all zeros)."""
        trace = trace_id or int.from_bytes(os.urandom(16), "big") or 1
        span = int.from_bytes(os.urandom(8), "big") or 1
        return cls(trace, span, sampled)

    @classmethod
    def parse(cls, value: str | None) -> RunTrace | None:
        """The context in a ``traceparent`` string; None for nothing or anything malformed."""
        return _parse(value) if value else None


@functools.lru_cache(maxsize=4096)  # a run's context is read at every hook: parse it once
def _parse(value: str) -> RunTrace | None:
    match = _TRACEPARENT.match(value.strip().lower())
    if match is None:
        return None
    trace_id, span_id = int(match.group(1), 16), int(match.group(2), 16)
    if trace_id == 0 or span_id == 0:
        return None
    return RunTrace(trace_id, span_id, bool(int(match.group(3), 16) & 1))
