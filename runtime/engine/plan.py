"""Reading an SDK reply: what the executor does with it, decided without doing any of it.

``plan_reply`` maps one parsed reply (``CallResult``) and what the executor knows of the run (its
state as read, the call it made, the function and the limits) to a ``Plan``. It reads no store,
no clock and no network, so every reply an SDK (or a fuzzer) may send is a row in
``tests/engine/test_plan.py``; the executor (``stepline.engine.executor``) only carries plans out.
A checkpointing call's last op (``RunComplete``, ``DiscoveryRequest``) is taken off the reply
before it is planned (``checkpoint_calls.take_ending``).

The rules (docs/protocol.md §6.4, §7):

* 200: the run completed with the body as its output, except in wait mode (§7.5): there a
  planned step's own call answering so failed that call (``NoProgress``: the step is gone from the
  code), and a discovery answering so while wait-mode steps are out is ignored. An error status:
  the call failed, and is retried after a backoff (at the reply's ``retry-after`` when it names
  one) unless it may not be retried (``x-inngest-no-retry``, a 400) or it was the function's
  last attempt; then the run fails.
* 206: one action per step named in the reply, in the reply's order. A step named twice is acted
  on once, as first reported (twice would double its retries). Ops for steps that have a result
  already are ignored, and so are re-reports of ops the run already waits on (§7.6), except a
  result of a planned step, which is what the run waits for. ``StepRun`` and a final
  ``StepError``/``StepFailed`` settle their step (a memo); a ``StepError`` with attempts left
  retries its step; ``Sleep``, ``WaitForEvent``, ``WaitForSignal``, ``InvokeFunction`` and
  ``AIGateway`` are started; any other op settles its step with an ``UnsupportedStep`` error, so
  the user's code sees a ``StepError`` rather than the run hanging (§14.9).
* A reply over the caps (``stepline.engine.limits``: ops per reply, steps per run) fails the
  run, naming the limit: asking the app again would get the same answer.
* ``StepPlanned`` steps each run in a job of their own, except a lone planned step the reply
  reports nothing else with, which the invocation holding the run's lease runs at once (no
  queue hop). A planned step's job, under its claim alone, acts only on steps the run waits on
  (its own result, a sibling's): a new step its call names is left to the discovery after it,
  which holds the run's lease. Whether the next call may run a step inside it is the call's to say, from the
  ops still out (``checkpoint_calls.immediate_disabled``, §7.3): no reply changes the run for it.
* After a step settles, discovery follows at once (race mode needs it; in wait mode the SDK
  re-reports the unfinished ops, which are ignored, §7.5).
* A reply that moves nothing fails the attempt (``NoProgress``): a call for one step answered
  without that step's result, or a discovery that reports only steps with results while the run
  waits on nothing. Left alone the run would hang, or call the app for ever with the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stepline.engine.ending import Ending, call_failed_error
from stepline.engine.limits import STEP_LIMIT, TOO_MANY_OPS, reply_problem, steps_problem
from stepline.engine.payload_policy import json_bytes, output_too_large, state_limit_error
from stepline.engine.records import FunctionRecord, RunState, RunStatus
from stepline.protocol.calls import CallResult, Opcode, memo_data, memo_error
from stepline.protocol.opcodes import DISCOVERY_STEP_ID, RESULT_OPS, TIMED_OPS, Op
from stepline.settings import Settings

NO_PROGRESS = "NoProgress"
UNSUPPORTED_STEP = "UnsupportedStep"
# The execution version whose parallel groups join in one discovery (docs/protocol.md §5.4).
WAIT_MODE_VERSION = 2
# The ops a reply starts rather than settles: they park the run, or (a model request) hand the
# step to a job of Stepline's own.
STARTED_OPS = TIMED_OPS | {Op.AI_GATEWAY}


@dataclass(frozen=True)
class Target:
    """What a call asks the app for: discovery, or one step by id, at an attempt (0-based)."""

    step: str = DISCOVERY_STEP_ID
    attempt: int = 0

    @property
    def discovery(self) -> bool:
        return self.step == DISCOVERY_STEP_ID

    def attempt_of(self, step_id: str) -> int:
        """Which attempt a result for ``step_id`` in this call's reply is: this call's, when the
        call was aimed at that step, else the first."""
        return self.attempt if self.step == step_id else 0


# -- what happens to each step the reply names ---------------------------------------------------


@dataclass(frozen=True)
class Settle:
    """Write ``value`` (``{"data": ...}`` or ``{"error": ...}``) as the step's result, which
    ``attempt`` of the step gave."""

    op: Opcode
    value: dict[str, Any]
    attempt: int


@dataclass(frozen=True)
class RetryStep:
    """The step's attempt failed with attempts left: call it again (``target``) after a backoff;
    ``error`` is what failed, kept with the step's failed attempts."""

    op: Opcode
    target: Target
    error: dict[str, Any] | None


@dataclass(frozen=True)
class Start:
    """Park the run on a sleep, an event or signal wait, or an invoke (``stepline.engine.ops``).
    Some settle their step at once instead: an invoke of a function that is not registered, a
    signal another run holds, a wait whose look-back finds its event."""

    op: Opcode


StepAction = Settle | RetryStep | Start


# -- how the call ends --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryCall:
    """The call failed: make it again (``target``, the next attempt) after a backoff, or at
    ``retry_at_ms`` when the app said when (its ``Retry-After``, docs/protocol.md §8)."""

    target: Target
    error: dict[str, Any]
    retry_at_ms: int | None = None


@dataclass(frozen=True)
class CallNext:
    """Call the app again at once, in this invocation (inline continuation)."""

    target: Target


# How the call ends: the run ends (``Ending``, Completed or Failed), the call is retried, the next
# call follows at once, or (None) the run waits.
Outcome = Ending | RetryCall | CallNext | None


@dataclass(frozen=True)
class Plan:
    """What to do about one reply, in this order: carry out ``steps`` (in the reply's order), give
    each ``planned`` step a job of its own, then ``outcome`` (None: the run waits)."""

    steps: tuple[StepAction, ...] = ()
    planned: tuple[Opcode, ...] = ()
    outcome: Outcome = None

    def outcome_after(self, settled_on_start: bool) -> Outcome:
        """The outcome once the steps were carried out: a ``Start`` that settled its step at once
        is a result like a ``Settle``, and discovery follows it."""
        if self.outcome is None and settled_on_start:
            return CallNext(Target())
        return self.outcome


# -- the decision -------------------------------------------------------------------------------


def plan_reply(
    result: CallResult,
    state: RunState,
    call: Target,
    fn: FunctionRecord,
    settings: Settings,
    *,
    holds_run_lease: bool = True,
    wait_mode: bool = False,
    claimed: bool = False,
) -> Plan:
    """What to do about ``result``, the reply to ``call`` for the run in ``state`` (as read
    before the call) of ``fn``, within ``settings``' limits. ``holds_run_lease``: False while a
    planned step's job runs under its claim alone (then no planned step runs inline);
    ``wait_mode``: the run's parallel groups join in one discovery (``waits_for_group``);
    ``claimed``: the call is for a planned step this job claimed."""
    if result.kind == "complete" and wait_mode and claimed and not call.discovery:
        # A wait-mode branch's call must answer with that step's result. "The function
        # completed" means the step is gone from the code (it changed under the run): the
        # step's call failed, as the SDK reports it when another step is in the way
        # (docs/protocol.md §7.4). A lone planned step run inline may complete the run, and
        # so may a race's losing branch, called once the code after the race is done.
        message = f"the app was asked to run step {call.step!r} and answered that the function completed"
        error = {"name": NO_PROGRESS, "message": message, "stack": ""}
        failed = CallResult(kind="error", error=error, status=result.status)
        return Plan(outcome=call_failed(failed, call, fn.max_attempts))
    if result.kind == "complete" and wait_mode and call.discovery and planned_outstanding(state, waited_on=True):
        # A wait-mode group cannot be over while its planned steps are out: the code changed
        # under the run, or this discovery is a stale copy. Their calls decide (the SDK fails one
        # whose step is gone), then the group's join asks again. The completion is ignored.
        return Plan()
    if result.kind == "complete":
        return Plan(outcome=Ending(RunStatus.COMPLETED, output=result.output))
    if result.kind == "error":
        return Plan(outcome=call_failed(result, call, fn.max_attempts))
    return _plan_ops(result, state, call, fn, settings, holds_run_lease)


def call_failed(result: CallResult, call: Target, max_attempts: int) -> Ending | RetryCall:
    """A failed call (an error reply): the run fails when it may not be retried or this was the
    last attempt, else the call is made again."""
    error = result.error or {"name": "Error", "message": f"status {result.status}", "stack": ""}
    if result.no_retry or call.attempt + 1 >= max_attempts:
        return Ending(RunStatus.FAILED, error=call_failed_error(error, result.status))
    return RetryCall(Target(call.step, call.attempt + 1), error, result.retry_at_ms)


def _plan_ops(
    result: CallResult, state: RunState, call: Target, fn: FunctionRecord, settings: Settings, holds_run_lease: bool
) -> Plan:
    first: dict[str, Opcode] = {}
    for op in result.ops:
        first.setdefault(op.id, op)
    fresh = [op for op in first.values() if _acts_on(op, state)]
    if not holds_run_lease and not call.discovery:
        # A planned step's job writes only the items of ops the run waits on: new steps are the
        # discovery's (the SDKs name none here, docs/protocol.md §7.4; the discovery after the
        # result reports them again), and the copies of the run kept by containers count on it
        # (stepline.aws.run_cache).
        fresh = [op for op in fresh if op.id in state.pending]
    over = reply_problem(len(result.ops), settings) or steps_problem(state, (op.id for op in fresh), fn, settings)
    if over is not None:
        name = TOO_MANY_OPS if len(result.ops) > settings.max_ops_per_reply else STEP_LIMIT
        error = {"name": name, "message": over, "stack": ""}
        return Plan(outcome=Ending(RunStatus.FAILED, error=error))
    steps: list[StepAction] = []
    planned: list[Opcode] = []
    added_bytes = 0  # what the results settled so far add to the run's state
    for op in fresh:
        attempt = call.attempt_of(op.id)
        final = result.no_retry or attempt + 1 >= fn.max_attempts
        if op.op == Op.STEP_RUN:
            value = output_memo(state, op.data, settings.max_run_state_bytes, added_bytes)
        elif op.op == Op.STEP_FAILED or (op.op == Op.STEP_ERROR and final):
            value = memo_error(op.error)
        elif op.op == Op.STEP_ERROR:
            steps.append(RetryStep(op, Target(op.id, attempt + 1), op.error))
            continue
        elif op.op == Op.STEP_PLANNED:
            planned.append(op)
            continue
        elif op.op in STARTED_OPS:
            steps.append(Start(op))
            continue
        else:
            message = f"step kind {op.wire_op!r} is not supported by this runtime"
            value = memo_error({"name": UNSUPPORTED_STEP, "message": message})
        steps.append(Settle(op, value, attempt))
        added_bytes += json_bytes(value)
    stalled = _no_progress(state, call, list(first.values()), fresh)
    if stalled is not None:
        error = {"name": NO_PROGRESS, "message": stalled, "stack": ""}
        failed = CallResult(kind="error", error=error, retry_at_ms=result.retry_at_ms, status=result.status)
        return Plan(tuple(steps), (), call_failed(failed, call, fn.max_attempts))
    if len(planned) == 1 and len(fresh) == 1 and holds_run_lease:
        return Plan(tuple(steps), (), CallNext(Target(planned[0].id)))
    settled = any(isinstance(step, Settle) for step in steps)
    return Plan(tuple(steps), tuple(planned), CallNext(Target()) if settled else None)


def _acts_on(op: Opcode, state: RunState) -> bool:
    """Whether the op is news: its step has no result, and it is not a re-report of an op the
    run already waits on (a planned step's result is what the run waits for)."""
    return not state.has_memo(op.id) and (op.id not in state.pending or op.op in RESULT_OPS)


def output_memo(state: RunState, data: Any, max_state_bytes: int, added_bytes: int = 0) -> dict[str, Any]:
    """The memo a step's output becomes: the output, or the error that replaces one too large
    for a step (``payload_policy.MAX_STEP_OUTPUT_BYTES``) or for the run's state
    (``added_bytes``: results settled beside it and not yet in ``state``)."""
    message = output_too_large(data)
    if message is not None:
        return memo_error({"name": "OutputTooLarge", "message": message})
    memo = memo_data(data)
    too_large = state_limit_error(state, memo, max_state_bytes, added_bytes)
    return memo_error(too_large) if too_large else memo


def _no_progress(state: RunState, call: Target, ops: list[Opcode], fresh: list[Opcode]) -> str | None:
    """Why a reply's ops (one per step) leave the run with nothing to do; None when they move it
    on. A call for one step must answer with that step's result (the SDKs answer an error status
    when they cannot run it). Discovery must report something new, unless the run is waiting on
    ops already (parallel branches re-reported, docs/protocol.md §7.5)."""
    if not call.discovery:
        if any(op.id == call.step and op.op in RESULT_OPS for op in ops):
            return None
        return f"the app was asked to run step {call.step!r} and answered without its result"
    if fresh or state.pending:
        return None
    reported = ", ".join(repr(op.id) for op in ops[:3]) or "no steps"
    return f"the app reported {reported}, all with results already, and the run waits on nothing"


def waits_for_group(state: RunState, race: bool) -> bool:
    """Whether the run's parallel groups join once all their ops are done (wait mode): the
    default of the Python SDKs and of TypeScript's V2 execution (``req_version`` 2), unless the
    claimed step was planned in race mode (``race``). TypeScript's V1 (``Promise.race``
    included) expects discovery after each op (docs/protocol.md §7.5)."""
    return state.run.req_version == WAIT_MODE_VERSION and not race


def race_branch(state: RunState, step_id: str) -> bool:
    """Whether the planned step ``step_id`` is a branch of a race-mode group."""
    planned = state.pending.get(step_id)
    return planned is not None and planned.detail.get("parallel_mode") == "race"


def planned_outstanding(state: RunState, *, waited_on: bool = False) -> bool:
    """Whether planned steps of the run are still running (no result yet); with ``waited_on``,
    only those of wait-mode groups (a race's slow branch does not hold the run back)."""
    return any(
        op.op == Op.STEP_PLANNED
        and not state.has_memo(op.step_id)
        and not (waited_on and op.detail.get("parallel_mode") == "race")
        for op in state.pending.values()
    )


def group_outstanding(state: RunState) -> bool:
    """Whether any op the run waits on has no result yet (in Python, every op pending at once
    belongs to the one parallel group the code is blocked on)."""
    return any(not state.has_memo(op.step_id) for op in state.pending.values())
