"""What one executor invocation knows of its run while it loops (``Invocation``), the call it
makes next (``Next``), and the writes it makes for the run's steps as a reply's plan says
(``StepWrites``): a step's result committed with what operators see of it, a failed attempt
retried after its backoff (keeping its claim), a sleep, wait, invoke or model request started, a planned step
recorded and given a job of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from stepline.engine import checkpoint_calls, messages
from stepline.engine.attempts import failed_attempt
from stepline.engine.ids import IdGenerator
from stepline.engine.leases import Hold
from stepline.engine.ops.ai import start_ai
from stepline.engine.ops.invoke import start_invoke
from stepline.engine.ops.signal import start_signal_wait
from stepline.engine.ops.sleep import start_sleep
from stepline.engine.ops.tools import OpTools
from stepline.engine.ops.wait import start_wait
from stepline.engine.plan import Plan, RetryStep, Settle, Target, output_memo, plan_reply, race_branch, waits_for_group
from stepline.engine.ports import Clock, FunctionRecord, Memo, PendingOp, RunState, RunStore, WorkQueue
from stepline.engine.retry import backoff_ms
from stepline.engine.scheduling import Waker
from stepline.protocol.call_encoding import CallEncoder
from stepline.protocol.calls import CallResult, Opcode
from stepline.protocol.opcodes import Op
from stepline.settings import Settings
from stepline.telemetry import NOOP, StepStatus, Telemetry


@dataclass
class Invocation:
    """What one executor invocation knows about its run while it loops."""

    state: RunState
    fn: FunctionRecord | None  # None when the run's function is no longer registered
    hold: Hold  # the run's lease, the planned step's claim, or both (stepline.engine.leases)
    deadline_ms: int
    # Checkpointing calls look at the run now and then: was it cancelled meanwhile? Built with
    # the time the invocation read the run.
    liveness: checkpoint_calls.Liveness
    dirty: dict[str, Any] = field(default_factory=dict)  # run fields to persist on release
    encoder: CallEncoder = field(default_factory=CallEncoder)  # caches each memo's JCS text
    call_started: int = 0  # when the current SDK call began (a memo's started_at)
    # The earliest time a message this invocation queued for the run is due (its wake_at).
    queued_at: int | None = None
    # Checkpointing (stepline.engine.checkpoint_calls): the app may have stored steps through
    # /v1/checkpoint during the last call, so the state is read again before the next one.
    refresh: bool = False
    # Whether the claimed step belongs to a race-mode group: its result then calls discovery at
    # once, whatever else of the group is still running, and its call may answer that the
    # function completed (the race was won without it; docs/protocol.md §7.5). Known from the
    # planned op when the step is claimed, before its call: the call may settle nothing.
    race: bool = field(init=False)

    def __post_init__(self) -> None:
        claimed = self.hold.claimed_step
        self.race = claimed is not None and race_branch(self.state, claimed)

    @property
    def wait_mode(self) -> bool:
        """Whether the run's parallel groups join once all their ops are done (``plan.waits_for_group``)."""
        return waits_for_group(self.state, self.race)

    def plan(self, result: CallResult, call: Target, settings: Settings) -> Plan:
        """What to do about ``result``, the reply to ``call`` (``plan.plan_reply``)."""
        lease, claimed = self.hold.holds_run_lease, self.hold.claimed_step == call.step
        return plan_reply(
            result,
            self.state,
            call,
            self.function,
            settings,
            holds_run_lease=lease,
            wait_mode=self.wait_mode,
            claimed=claimed,
        )

    @property
    def function(self) -> FunctionRecord:
        """The run's function, once the invocation has checked it is still registered."""
        if self.fn is None:
            raise LookupError(f"function {self.state.run.fn_id!r} is not registered")
        return self.fn

    def queued(self, at_ms: int) -> None:
        self.queued_at = at_ms if self.queued_at is None else min(self.queued_at, at_ms)


@dataclass
class Next:
    step: str
    attempt: int
    # The step's failed attempts before this one (stepline.engine.attempts).
    failures: list[dict[str, Any]] = field(default_factory=list)
    # A group's join, queued because the run was busy when a branch finished: it calls the app
    # only if the group has nothing left out by then (else the last op's own join follows).
    join: bool = False

    def call(self, run_id: str) -> messages.Call:
        return messages.Call(
            run_id=run_id, step=self.step, attempt=self.attempt, failures=self.failures, join=self.join
        )


class StepWrites:
    def __init__(
        self,
        runs: RunStore,
        queue: WorkQueue,
        waker: Waker,
        tools: OpTools,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.runs = runs
        self.queue = queue
        self.waker = waker
        self.tools = tools
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.telemetry = telemetry  # a span per failed attempt and per stored step

    def apply(self, inv: Invocation, nxt: Next, plan: Plan) -> bool:
        """Carry out what ``plan`` says of the reply's steps, in its order: settle, retry or start
        each step, give each planned step a job of its own.
        True when starting a step settled it at once (an invoke of nothing, a signal conflict, a
        look-back that found its event)."""
        state = inv.state
        settled_on_start = False
        for step in plan.steps:
            if isinstance(step, Settle):
                self.commit(inv, step.op, step.value, nxt)
            elif isinstance(step, RetryStep):
                failures = self.failed(inv, nxt, step.op.id, step.target.attempt - 1, step.error)
                self.retry_later(inv, Next(step.target.step, step.target.attempt, failures), None)
            elif step.op.op == Op.SLEEP:
                start_sleep(self.tools, state, step.op)
            else:
                settled = _STARTS[step.op.op](self.tools, state, step.op)
                # Nothing to invoke, no model request to make or a signal conflict (a failed step),
                # or a look-back that found its event: the step settles at once.
                if settled is not None:
                    self.commit(inv, step.op, settled, nxt)
                    settled_on_start = True
        for op in plan.planned:
            # Recorded before its message is sent (the call must find the op to claim it); a
            # crash in between leaves an op without a message, which the sweeper finds.
            mode = {"parallel_mode": "race"} if (op.options or {}).get("parallelMode") == "race" else {}
            pending = PendingOp(op.id, op.op, self.clock.now_ms(), op.display, mode)
            if self.runs.add_pending(state.run.run_id, pending):
                state.pending[op.id] = pending
                self.queue.send(messages.call(state.run.run_id, op.id, 0))
                inv.queued(pending.created_at)
        return settled_on_start

    def output_memo(self, inv: Invocation, op: Opcode) -> dict[str, Any]:
        return output_memo(inv.state, op.data, self.settings.max_run_state_bytes)

    def failed(
        self, inv: Invocation, nxt: Next, step: str, attempt: int, error: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The step's failed attempts with this one added."""
        before = nxt.failures if nxt.step == step else []
        failure = failed_attempt(attempt, inv.call_started, self.clock.now_ms(), error)
        self.telemetry.step(inv.state.run, step, "StepError", attempt, StepStatus.RETRYING, error, inv.call_started)
        return [*before, failure]

    def retry_later(self, inv: Invocation, nxt: Next, retry_at_ms: int | None) -> None:
        # The app's Retry-After is the time to retry, sooner or later than the backoff would be:
        # it is the app's own word on when it can succeed (docs/protocol.md §8).
        at = retry_at_ms
        if at is None:
            settings = self.settings
            at = self.clock.now_ms() + backoff_ms(nxt.attempt - 1, settings.retry_base_ms, settings.retry_cap_ms)
        # The step stays claimed through its backoff, by the claim its retry carries.
        claim = inv.hold.carry_claim(nxt.step, at + self.settings.lease_ms)
        self.waker.at(replace(nxt.call(inv.state.run.run_id), claim=claim), at)
        inv.queued(at)

    def commit(
        self, inv: Invocation, op: Opcode, value: dict[str, Any], nxt: Next, *, checkpointed: bool = False
    ) -> bool:
        """Store the step's memo; True when ``value`` is now its memo, False when another
        writer's was there first (the state is then read again)."""
        # What operators see of the step: the call that settled it, and which attempt it was.
        detail: dict[str, Any] = {
            "op": op.wire_op or op.op,
            "started_at": inv.call_started,
            "attempt": nxt.attempt if nxt.step == op.id else 0,
        }
        if checkpointed:
            detail["checkpointed"] = True
        planned = inv.state.pending.get(op.id)
        if planned is not None:
            detail["queued_at"] = planned.created_at
        if nxt.step == op.id and nxt.failures:
            detail["failures"] = nxt.failures
        memo = Memo(step_id=op.id, value=value, seq=self.ids.new(), name=op.display, detail=detail)
        stored = self.runs.commit_memo(inv.state.run.run_id, memo)
        if stored:
            inv.state.memos.append(memo)
            self.telemetry.memo_committed(inv.state.run, memo, inv.call_started)
        else:
            # Someone committed first (a duplicate delivery): theirs is the truth.
            fresh = self.runs.load_run(inv.state.run.run_id)
            if fresh is not None:
                inv.state.memos = fresh.memos
        if inv.state.pending.pop(op.id, None) is not None:
            self.runs.remove_pending(inv.state.run.run_id, op.id)
        inv.hold.step_settled(op.id)  # its claim went with the pending op
        return stored


# Ops that park the run and may settle their step as they start (the memo returned is committed at once).
_STARTS = {
    Op.WAIT_FOR_EVENT: start_wait,
    Op.INVOKE_FUNCTION: start_invoke,
    Op.WAIT_FOR_SIGNAL: start_signal_wait,
    Op.AI_GATEWAY: start_ai,
}
