"""The runtime's one door to telemetry: the engine calls these hooks, and they cost nothing
beyond the call when neither tracing nor metrics is on.

The engine modules hold a ``Telemetry`` (``NOOP`` until the engine is built with one) and call it
where something worth a span, a metric or a log field happens: a run created and ended, a call
to the app, a step attempt settled, a sleep, wait or invoke over, a start delayed by a flow limit,
a message dead-lettered. Which of those become spans is ``stepline.telemetry.tracing``'s
business, which become metrics ``stepline.telemetry.metrics``'s; neither is imported unless it is
configured (``stepline.telemetry.setup``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from stepline.protocol.invocations import parse_correlation
from stepline.telemetry import logs
from stepline.telemetry.trace_context import RunTrace, SenderContext

if TYPE_CHECKING:
    from stepline.engine.ports import Clock, Memo, PendingOp, Run, RunStore


class FlowLimit(str, Enum):
    """What held a run back before it could go on."""

    CONCURRENCY = "concurrency"
    THROTTLE = "throttle"
    RATE_LIMIT = "rate_limit"


class StepStatus(str, Enum):
    """How one step attempt ended."""

    OK = "ok"
    ERROR = "error"  # the step's final error: its memo is the error
    RETRYING = "retrying"  # a failed attempt with another to come


@dataclass(frozen=True)
class StepAttempt:
    """One attempt of one step, as the engine saw it settle."""

    step_id: str
    name: str
    kind: str  # the opcode that settled it: StepRun, StepError, StepFailed, InvokeFunction, ...
    attempt: int
    status: StepStatus
    started_ms: int
    ended_ms: int
    error: Mapping[str, Any] | None = None
    checkpointed: bool = False


class CallSpan(Protocol):
    """A call to the app while it is under way; ``span_id`` 0 when it is not recorded."""

    span_id: int

    def ended(self, status: int, error: Mapping[str, Any] | None) -> None: ...


class RunTracer(Protocol):
    """What tracing does with the hooks (``stepline.telemetry.tracing.OtelRunTracer``)."""

    def new_run(self, senders: Sequence[SenderContext]) -> RunTrace: ...

    def run_ended(self, run: Run, trace: RunTrace, ended_ms: int, invoked_by: RunTrace | None) -> None: ...

    def call_began(
        self, run: Run, trace: RunTrace, step: str, attempt: int, started_ms: int, now: Callable[[], int]
    ) -> CallSpan: ...

    def step(self, run: Run, trace: RunTrace, attempt: StepAttempt) -> None: ...

    def span(
        self,
        trace: RunTrace,
        name: str,
        start_ms: int,
        end_ms: int,
        attributes: dict[str, Any],
        error: str | None,
        links: Sequence[SenderContext] = (),
    ) -> None: ...

    def flush(self) -> None: ...


class RunMetrics(Protocol):
    """What metrics do with the hooks (``stepline.telemetry.metrics``)."""

    def run_started(self, fn_id: str) -> None: ...

    def run_ended(self, fn_id: str, status: str) -> None: ...

    def step(self, fn_id: str, attempt: StepAttempt) -> None: ...

    def flow_wait(self, fn_id: str, limit: FlowLimit, seconds: float) -> None: ...

    def dead_letter(self, kind: str) -> None: ...

    def flush(self) -> None: ...


class _NoCall:
    span_id = 0

    def ended(self, status: int, error: Mapping[str, Any] | None) -> None:
        return None


_NO_CALL = _NoCall()


class Telemetry:
    """Tracing and metrics, each optional. With neither, every hook returns at its first line."""

    def __init__(self, clock: Clock | None = None, tracer: RunTracer | None = None, metrics: RunMetrics | None = None):
        self.clock = clock
        self.tracer = tracer
        self.metrics = metrics

    def _now(self) -> int:
        return self.clock.now_ms() if self.clock is not None else int(time.time() * 1000)

    # -- runs ------------------------------------------------------------------------------------
    def sender(self, headers: Mapping[str, str]) -> dict[str, str] | None:
        """The W3C context a request's sender sent (``traceparent``, ``tracestate``), to keep
        with the events it sends (``StoredEvent.trace``); None without one, with an invalid one,
        or with tracing off (there is no trace to join, and OpenTelemetry stays unloaded)."""
        if self.tracer is None:
            return None
        from stepline.telemetry.propagation import sender_carrier

        return sender_carrier(headers)

    @contextmanager
    def sent_by(self, carrier: Mapping[str, str] | None) -> Iterator[None]:
        """While the block runs (one request), the ops it settles were settled by the sender whose
        context ``carrier`` is (a signal's): their spans link to the sender's span."""
        sender = SenderContext.of(carrier)
        if sender is None:
            yield
            return
        token = _settled_by.set((sender,))
        try:
            yield
        finally:
            _settled_by.reset(token)

    def new_run_trace(self, senders: Iterable[Mapping[str, str] | None] = ()) -> str:
        """The trace context a new run is stored with (``Run.trace``), given the trace context
        each of its events was sent with. Sampled as the configured sampler decides; unsampled
        (nothing recorded, ids for the logs only) when tracing is off."""
        if self.tracer is None:
            return RunTrace.new(sampled=False).traceparent()
        distinct: dict[str, SenderContext] = {}
        for carrier in senders:
            sender = SenderContext.of(carrier)
            if sender is not None:
                distinct.setdefault(sender.traceparent, sender)
        return self.tracer.new_run(list(distinct.values())).stored()

    def run_started(self, run: Run) -> None:
        if self.metrics is not None:
            self.metrics.run_started(run.fn_id)

    def run_ended(self, runs: RunStore, run: Run) -> None:
        """The run ended (completed, failed, cancelled): its root span, and the count. Only with
        tracing on, and for a run a step.invoke started, is the invoking run read (``runs``)."""
        if self.metrics is not None:
            self.metrics.run_ended(run.fn_id, run.status.value)
        trace = self._sampled(run)
        if trace is not None and self.tracer is not None:
            self.tracer.run_ended(run, trace, run.ended_at or self._now(), _invoker(runs, run))

    def invocation(self, run: Run) -> None:
        """An executor invocation took the run on: its log lines name it from now on."""
        logs.about_run(run.run_id, run.fn_id, _trace_hex(run))

    def message(self, run_id: str | None) -> None:
        """A work message about ``run_id`` (None: about no run) is being handled: its log lines
        name the run."""
        logs.about_run(run_id)

    # -- calls and steps -------------------------------------------------------------------------
    def call_began(self, run: Run, step: str, attempt: int, headers: dict[str, str]) -> CallSpan:
        """A call to the app is about to be made: a span for it, named to the app in a W3C
        ``traceparent`` header added to ``headers`` (the app's spans join the run's trace)."""
        trace = self._sampled(run)
        if trace is None or self.tracer is None:
            return _NO_CALL
        call = self.tracer.call_began(run, trace, step, attempt, self._now(), self._now)
        if call.span_id:
            headers["traceparent"] = trace.traceparent(call.span_id)
        return call

    def step(
        self,
        run: Run,
        step_id: str,
        kind: str,
        attempt: int,
        status: StepStatus,
        error: Mapping[str, Any] | None,
        started_ms: int,
        *,
        name: str = "",
        checkpointed: bool = False,
    ) -> None:
        """A step attempt settled now: its memo was written, or it failed and will be retried."""
        if self.tracer is None and self.metrics is None:
            return
        now = self._now()
        settled = StepAttempt(step_id, name, kind, attempt, status, min(started_ms, now), now, error, checkpointed)
        self.step_settled(run, settled)

    def memo_committed(self, run: Run, memo: Memo, started_ms: int) -> None:
        """A step's memo was written by the attempt begun at ``started_ms`` (the memo's detail
        names its op, attempt and whether it was checkpointed)."""
        if self.tracer is None and self.metrics is None:
            return
        detail = memo.detail
        error = memo.value.get("error")
        self.step(
            run,
            memo.step_id,
            str(detail.get("op") or "StepRun"),
            int(detail.get("attempt") or 0),
            StepStatus.ERROR if error is not None else StepStatus.OK,
            error if isinstance(error, Mapping) else None,
            started_ms,
            name=memo.name,
            checkpointed=bool(detail.get("checkpointed")),
        )

    def step_settled(self, run: Run, attempt: StepAttempt) -> None:
        if self.metrics is not None:
            self.metrics.step(run.fn_id, attempt)
        trace = self._sampled(run)
        if trace is not None and self.tracer is not None:
            self.tracer.step(run, trace, attempt)

    def op_settled(self, runs: RunStore, run_id: str, op: PendingOp | None, value: Mapping[str, Any]) -> None:
        """A sleep, wait for an event or invoke ended (``value`` is its memo): a span over the time
        the run waited. Only with tracing on is the run read (for its trace context)."""
        if self.tracer is None or op is None:
            return
        run = runs.get_run(run_id)
        trace = self._sampled(run) if run is not None else None
        if trace is None:
            return
        error = value.get("error") if isinstance(value.get("error"), Mapping) else None
        attributes = {"stepline.run.id": run_id, "stepline.step.id": op.step_id, "stepline.step.kind": op.op}
        if op.name:
            attributes["stepline.step.name"] = op.name
        name = f"{_WAIT_NAMES.get(op.op, op.op)} {op.name or op.step_id}"
        self.tracer.span(trace, name, op.created_at, self._now(), attributes, _message(error), _settled_by.get())

    def flow_wait(self, runs: RunStore, run_id: str, limit: FlowLimit, since_ms: int, until_ms: int) -> None:
        """A run's start or call waited (or is to wait) behind a flow-control limit from
        ``since_ms`` to ``until_ms``. Only with telemetry on is the run read from ``runs`` (its
        function, its trace)."""
        if until_ms <= since_ms or (self.metrics is None and self.tracer is None):
            return
        run = runs.get_run(run_id)
        if run is None:
            return
        if self.metrics is not None:
            self.metrics.flow_wait(run.fn_id, limit, (until_ms - since_ms) / 1000)
        trace = self._sampled(run)
        if trace is not None and self.tracer is not None:
            attributes = {"stepline.run.id": run.run_id, "stepline.flow.limit": limit.value}
            self.tracer.span(trace, f"queued {limit.value}", since_ms, until_ms, attributes, None)

    def dead_letter(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.dead_letter(kind)

    def flush(self) -> None:
        """Send what is buffered (end of a Lambda invocation; the process stopping)."""
        if self.tracer is not None:
            self.tracer.flush()
        if self.metrics is not None:
            self.metrics.flush()

    def _sampled(self, run: Run) -> RunTrace | None:
        if self.tracer is None:
            return None
        trace = RunTrace.parse(run.trace)
        return trace if trace is not None and trace.sampled else None


_WAIT_NAMES = {"Sleep": "sleep", "WaitForEvent": "wait", "WaitForSignal": "signal", "InvokeFunction": "invoke"}

# The senders of the request being handled that settle ops (``Telemetry.sent_by``).
_settled_by: ContextVar[tuple[SenderContext, ...]] = ContextVar("stepline_settled_by", default=())


def _invoker(runs: RunStore, run: Run) -> RunTrace | None:
    """The trace of the run whose step.invoke started ``run``, if any: the child's root span
    links to it (a run is a trace of its own, the link joins the two)."""
    caller = parse_correlation(run.events[0]) if run.events else None
    if caller is None:
        return None
    parent = runs.get_run(caller[0])
    return RunTrace.parse(parent.trace) if parent is not None else None


def _trace_hex(run: Run) -> str | None:
    trace = RunTrace.parse(run.trace)
    return trace.trace_hex if trace is not None else None


def _message(error: Mapping[str, Any] | None) -> str | None:
    if error is None:
        return None
    return f"{error.get('name') or 'Error'}: {error.get('message') or ''}"


NOOP = Telemetry()
