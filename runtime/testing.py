"""Unit-test durable functions in milliseconds, without a server.

``run`` drives one function the way a server would: it sends real call requests (JCS bodies
built by the protocol layer), reads the real opcode replies, memoizes results, retries failed
steps, runs parallel branches, and moves a manual clock through sleeps instead of waiting::

    from stepline import testing

    result = testing.run(welcome_drip, UserSignedUp(user_id="u1"),
                         mocks={"get-user": {"email": "ada@example.com"}})
    assert result.status == "Completed"
    assert result.step("send-tips").output == {"sent": True}
    assert result.clock.now_ms() - start >= 24 * 3600 * 1000

``mocks`` maps a step id to the value that step returns instead of running its body (an
exception instance makes the step fail with it). ``wait_for_event``, ``wait_for_signal`` and
``invoke`` steps need a mock: the event that arrives (None for a timeout), the signal's data
(None for a timeout; a ``Signal`` to send None itself) and the invoked function's result.

Everything a unit test needs is here (``ManualClock`` included), so a test never imports the
engine's modules, and all of it works with the SDK alone (``pip install stepline``).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ulid import ULID

from stepline.engine.clock import ManualClock
from stepline.protocol.calls import CallResult, Opcode, build_call_request, parse_call_response
from stepline.protocol.durations import parse_duration_ms, parse_sleep_until_ms
from stepline.protocol.jsoncanon import canonical_json, loads
from stepline.protocol.opcodes import DISCOVERY_STEP_ID, RESULT_OPS, Op
from stepline.protocol.signals import op_signal
from stepline.sdk import execution
from stepline.sdk.events import Event, EventData, to_wire_event
from stepline.sdk.function import FAILED_EVENT, Function
from stepline.sdk.steps.signal import Signal
from stepline.sdk.triggers import CronTrigger

__all__ = ["ManualClock", "RecordedStep", "TestRun", "TestingError", "failure_event", "run"]

CRON_EVENT = "inngest/scheduled.timer"
_KINDS = {
    Op.STEP_RUN: "run",
    Op.STEP_ERROR: "run",
    Op.STEP_FAILED: "run",
    Op.STEP_PLANNED: "run",
    Op.SLEEP: "sleep",
    Op.WAIT_FOR_EVENT: "wait_for_event",
    Op.WAIT_FOR_SIGNAL: "wait_for_signal",
    Op.INVOKE_FUNCTION: "invoke",
}


class TestingError(AssertionError):
    """The function under test needs something the test did not give (a mock, a bound)."""


@dataclasses.dataclass
class RecordedStep:
    """One step as the run saw it. ``name`` is the wire name: a sleep's duration or instant,
    the event a wait waits for."""

    id: str
    kind: str
    name: str
    opts: dict[str, Any] | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: int = 0
    mocked: bool = False


@dataclasses.dataclass
class TestRun:
    status: str  # "Completed" or "Failed"
    output: Any
    error: dict[str, Any] | None
    steps: list[RecordedStep]
    sent_events: list[dict[str, Any]]
    clock: ManualClock
    calls: int

    def step(self, step_id: str) -> RecordedStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"no step {step_id!r}; the run had {self.step_ids}")

    @property
    def step_ids(self) -> list[str]:
        return [s.id for s in self.steps]


def failure_event(fn: Function, error: str | BaseException, event: Any) -> dict[str, Any]:
    """The ``inngest/function.failed`` event the server emits when ``fn`` fails, to test an
    ``on_failure`` handler with ``run(fn.failure_function, failure_event(...))``."""
    if isinstance(error, BaseException):
        err = {"name": type(error).__name__, "message": str(error), "stack": ""}
    else:
        err = {"name": "Error", "message": error, "stack": ""}
    original = to_wire_event(event, allow_reserved=True)
    return {
        "name": FAILED_EVENT,
        "data": {
            "function_id": fn.composite_id,
            "run_id": "01TESTRUN0000000000000000",
            "error": err,
            "event": original,
            "events": [original],
        },
    }


def run(
    fn: Function,
    event: Any = None,
    *,
    events: list[Any] | None = None,
    mocks: dict[str, Any] | None = None,
    clock: ManualClock | None = None,
    run_id: str | None = None,
    max_calls: int = 1000,
) -> TestRun:
    """Run ``fn`` to its end on ``event`` (or the batch ``events``) and report what happened."""
    return _Driver(fn, event, events, mocks or {}, clock or ManualClock(), run_id, max_calls).drive()


class _Driver:
    """A server in miniature: a work list of calls, timers for sleeps, memos and a stack."""

    def __init__(
        self,
        fn: Function,
        event: Any,
        events: list[Any] | None,
        mocks: dict[str, Any],
        clock: ManualClock,
        run_id: str | None,
        max_calls: int,
    ) -> None:
        self.fn = fn
        self.mocks = mocks
        self.clock = clock
        self.max_calls = max_calls
        self.run_id = run_id or str(ULID.from_timestamp(clock.now_ms() / 1000))
        self.events = [self._event(e, i) for i, e in enumerate(events or [event])]
        self.memos: dict[str, dict[str, Any]] = {}
        self.stack: list[str] = []
        self.pending: set[str] = set()
        self.work: list[tuple[str, int]] = [(DISCOVERY_STEP_ID, 0)]
        self.timers: list[tuple[int, str, dict[str, Any]]] = []
        self.recorded: dict[str, RecordedStep] = {}
        self.sent: list[dict[str, Any]] = []
        self.calls = 0

    def _event(self, event: Any, index: int) -> dict[str, Any]:
        if event is None:
            crons = [t.cron for t in self.fn.triggers if isinstance(t, CronTrigger)]
            event = {"name": CRON_EVENT, "data": {"cron": crons[0] if crons else ""}}
        if isinstance(event, EventData):
            event = event.to_event()
        wire = to_wire_event(event, allow_reserved=True)
        wire.setdefault("id", f"{self.run_id}-event-{index}")
        wire["ts"] = wire.get("ts") if isinstance(event, (dict, Event)) and _given_ts(event) else self.clock.now_ms()
        return wire

    # -- the loop ----------------------------------------------------------------------------
    def drive(self) -> TestRun:
        while True:
            if not self.work:
                if not self.timers:
                    raise TestingError("the run stopped making progress (no work and no timers left)")
                self._fire_next_timer()
                continue
            target, attempt = self.work.pop(0)
            result = self._call(target, attempt)
            if result.kind == "complete":
                return self._finish("Completed", result.output, None)
            if result.kind == "error":
                if result.no_retry or attempt + 1 >= self.fn.max_attempts:
                    return self._finish("Failed", None, result.error)
                self._advance_to(result.retry_at_ms)
                self.work.insert(0, (target, attempt + 1))
                continue
            self._ops(result, target, attempt)

    def _call(self, target: str, attempt: int) -> CallResult:
        self.calls += 1
        if self.calls > self.max_calls:
            raise TestingError(f"more than {self.max_calls} calls: does the function loop forever?")
        request = build_call_request(
            run_id=self.run_id,
            attempt=attempt,
            max_attempts=self.fn.max_attempts,
            events=self.events,
            steps=self.memos,
            stack=self.stack,
            # As the engine says it (docs/protocol.md §7.3): a targeted call plans every other
            # step; discovery runs one inline unless a step or op of the run is still out.
            disable_immediate=target != DISCOVERY_STEP_ID or bool(self.pending),
            use_api=False,
            version=-1,
            step_id=target,
        )
        body = execution.parse_body(loads(canonical_json(request)))
        step = None if target == DISCOVERY_STEP_ID else target
        outcome = execution.call(self.fn, body, step, self._send, mocks=self.mocks)
        raw = json.dumps(outcome.body).encode()
        return parse_call_response(outcome.status, outcome.headers, raw, self.clock.now_ms())

    def _ops(self, result: CallResult, target: str, attempt: int) -> None:
        for op in result.ops:
            if op.id in self.memos or (op.id in self.pending and op.op not in RESULT_OPS):
                continue  # already memoized, or a re-report of work in hand (docs/protocol.md §7.6)
            step = self._record(op)
            this_attempt = attempt if target == op.id else 0
            if op.op == Op.STEP_RUN:
                step.attempts += 1
                step.output = op.data
                self._commit(op.id, {"data": op.data})
            elif op.op in (Op.STEP_ERROR, Op.STEP_FAILED):
                step.attempts += 1
                final = op.op == Op.STEP_FAILED or result.no_retry or this_attempt + 1 >= self.fn.max_attempts
                if final:
                    step.error = _error(op.error)
                    self._commit(op.id, {"error": step.error})
                else:
                    self._advance_to(result.retry_at_ms)
                    self._later(op.id, this_attempt + 1)
            elif op.op == Op.STEP_PLANNED:
                self._later(op.id, 0)
            elif op.op == Op.SLEEP:
                self.pending.add(op.id)
                self.timers.append((parse_sleep_until_ms(op.sleep_value, self.clock.now_ms()), op.id, {"data": None}))
            elif op.op == Op.WAIT_FOR_EVENT:
                self._wait(op, step)
            elif op.op == Op.WAIT_FOR_SIGNAL:
                self._wait_signal(op, step)
            elif op.op == Op.INVOKE_FUNCTION:
                self._invoke(op, step)
            else:
                raise TestingError(f"step {op.display!r}: unknown opcode {op.wire_op!r}")

    # -- durable operations --------------------------------------------------------------------
    def _wait(self, op: Opcode, step: RecordedStep) -> None:
        found, value = self._mock(op)
        if not found:
            raise TestingError(
                f"step {op.display!r} waits for {op.wait_event!r}: give the event that arrives "
                f"(or None for a timeout) in mocks={{{op.display!r}: ...}}"
            )
        step.mocked = True
        if value is None:
            self._time_out_later(op)
            return
        if isinstance(value, EventData) or (isinstance(value, Event) and isinstance(value.data, EventData)):
            wire = to_wire_event(value)
        else:
            wire = to_wire_event(
                value if not isinstance(value, dict) or "name" in value else {"name": op.wait_event, "data": value}
            )
        step.output = wire
        self._commit(op.id, {"data": wire})

    def _time_out_later(self, op: Opcode) -> None:
        """A wait mocked with None: it settles with null once its timeout has passed."""
        timeout = parse_duration_ms(str(op.options.get("timeout") or "0s"))
        self.pending.add(op.id)
        self.timers.append((self.clock.now_ms() + timeout, op.id, {"data": None}))

    def _wait_signal(self, op: Opcode, step: RecordedStep) -> None:
        signal = op_signal(op)
        found, value = self._mock(op)
        if not found:
            raise TestingError(
                f"step {op.display!r} waits for signal {signal!r}: give the data it is sent "
                f"(or None for a timeout) in mocks={{{op.display!r}: ...}}"
            )
        step.mocked = True
        if value is None:
            self._time_out_later(op)
            return
        data = value.data if isinstance(value, Signal) else value
        step.output = {"signal": signal, "data": data}
        self._commit(op.id, {"data": step.output})

    def _invoke(self, op: Opcode, step: RecordedStep) -> None:
        found, value = self._mock(op)
        if not found:
            raise TestingError(
                f"step {op.display!r} invokes {op.options.get('function_id')!r}: give its result "
                f"in mocks={{{op.display!r}: ...}} (an exception to make it fail)"
            )
        step.mocked = True
        if isinstance(value, BaseException):
            step.error = {"name": type(value).__name__, "message": str(value), "stack": ""}
            self._commit(op.id, {"error": step.error})
        else:
            step.output = value
            self._commit(op.id, {"data": value})

    def _send(self, events: list[dict[str, Any]], seed: str) -> list[str]:
        ids = []
        for event in events:
            self.sent.append(event)
            ids.append(event.get("id") or f"test-event-{len(self.sent)}")
        return ids

    # -- bookkeeping -------------------------------------------------------------------------
    def _mock(self, op: Opcode) -> tuple[bool, Any]:
        index = (op.userland or {}).get("index")
        for key in (f"{op.display}:{index}" if index else None, op.display):
            if key is not None and key in self.mocks:
                return True, self.mocks[key]
        return False, None

    def _record(self, op: Opcode) -> RecordedStep:
        step = self.recorded.get(op.id)
        if step is None:
            name = op.name if op.op in (Op.SLEEP, Op.WAIT_FOR_EVENT) else op.display
            step = RecordedStep(
                id=op.display,
                kind=_KINDS.get(op.op, op.wire_op),
                name=name,
                opts=op.opts,
                mocked=self._mock(op)[0] and op.op != Op.STEP_PLANNED,
            )
            self.recorded[op.id] = step
        return step

    def _commit(self, step_id: str, memo: dict[str, Any]) -> None:
        self.memos[step_id] = memo
        self.stack.append(step_id)
        self.pending.discard(step_id)
        if (DISCOVERY_STEP_ID, 0) not in self.work:
            self.work.append((DISCOVERY_STEP_ID, 0))

    def _later(self, step_id: str, attempt: int) -> None:
        self.pending.add(step_id)
        self.work.append((step_id, attempt))

    def _fire_next_timer(self) -> None:
        self.timers.sort(key=lambda t: t[0])
        at, step_id, memo = self.timers.pop(0)
        self._advance_to(at)
        self._commit(step_id, memo)

    def _advance_to(self, at_ms: int | None) -> None:
        if at_ms is not None and at_ms > self.clock.now_ms():
            self.clock.set(at_ms)

    def _finish(self, status: str, output: Any, error: dict[str, Any] | None) -> TestRun:
        return TestRun(
            status=status,
            output=output,
            error=error,
            steps=list(self.recorded.values()),
            sent_events=self.sent,
            clock=self.clock,
            calls=self.calls,
        )


def _error(err: dict[str, Any] | None) -> dict[str, Any]:
    src = err or {}
    return {
        "name": str(src.get("name", "Error")),
        "message": str(src.get("message", "")),
        "stack": str(src.get("stack") or ""),
    }


def _given_ts(event: Any) -> bool:
    ts = event.get("ts") if isinstance(event, dict) else getattr(event, "ts", None)
    return isinstance(ts, int)
