"""The executor: takes one queue message and drives a run forward by calling the user's app.

One invocation holds the run's lease, reads the run ONCE, then loops: call the SDK, commit what
it reports, and call again at once while there is something to run (inline continuation: a
sequential step costs one memo write and no queue hop). It stops when the run waits (sleep,
event, invoke, planned parallel work, a retry backoff), ends, or its time budget runs out, and
then releases the lease with a single write that also persists whatever run fields changed.

A planned parallel step runs as its own job under a claim on that step alone, so branches run
concurrently; only the discovery call that follows needs the run's lease. A planned step whose
attempt failed keeps its claim until its retry is due, and the retry message carries the claim
(``claim``): to the sweeper, a live claim means the step is in hand.

The release also records when the run should next move on (``Run.wake_at``, see
``stepline.engine.due``), so a run whose wake-up got lost is found by the sweeper; the value
rides on the release write, never on a write of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from stepline.engine import checkpoint_calls, messages, pinning
from stepline.engine.app_calls import AppCalls
from stepline.engine.attempts import failed_attempt
from stepline.engine.checkpoint import is_stale_reply
from stepline.engine.checkpoint_stream import RefuseStep, StopReading, StreamHooks
from stepline.engine.due import next_wake_ms
from stepline.engine.ending import Ending, RunEnding
from stepline.engine.flow.concurrency import Concurrency
from stepline.engine.functions import FunctionCache
from stepline.engine.http import HttpCaller, HttpResponse
from stepline.engine.ids import IdGenerator
from stepline.engine.keys import KeyRing, Keys, StaticKeys
from stepline.engine.leases import Hold, Leases, Refusal
from stepline.engine.limits import STEP_LIMIT, TOO_MANY_OPS, reply_problem, steps_problem
from stepline.engine.ops.invoke import start_invoke
from stepline.engine.ops.signal import start_signal_wait
from stepline.engine.ops.sleep import start_sleep
from stepline.engine.ops.tools import OpTools
from stepline.engine.ops.wait import start_wait
from stepline.engine.payload_policy import output_too_large, state_limit_error
from stepline.engine.ports import (
    AppStore,
    Clock,
    EventStore,
    FunctionRecord,
    Memo,
    PendingOp,
    RunState,
    RunStatus,
    RunStore,
    SlotStore,
    Timers,
    WaiterStore,
    WorkQueue,
)
from stepline.engine.resume import Resumer
from stepline.engine.retry import backoff_ms
from stepline.engine.runs import RunStarter
from stepline.engine.scheduling import Waker
from stepline.engine.timeouts import Cancel, first_start_checks
from stepline.protocol.call_encoding import CallEncoder
from stepline.protocol.calls import CallResult, Opcode, memo_data, memo_error
from stepline.protocol.opcodes import DISCOVERY_STEP_ID, RESULT_OPS, Op
from stepline.settings import Settings
from stepline.telemetry import NOOP, StepStatus, Telemetry

log = logging.getLogger(__name__)

# The messages about one run the executor handles itself, by kind.
_RUN_MESSAGES: dict[str, type[messages.Call | messages.Wake | messages.WaitTimeout]] = {
    messages.CALL: messages.Call,
    messages.WAKE: messages.Wake,
    messages.WAIT_TIMEOUT: messages.WaitTimeout,
    messages.INVOKE_TIMEOUT: messages.InvokeTimeout,
}


@dataclass
class _Invocation:
    """What one executor invocation knows about its run while it loops."""

    state: RunState
    fn: FunctionRecord | None  # None when the run's function is no longer registered
    hold: Hold  # the run's lease, the planned step's claim, or both (stepline.engine.leases)
    deadline_ms: int
    dirty: dict[str, Any] = field(default_factory=dict)  # run fields to persist on release
    encoder: CallEncoder = field(default_factory=CallEncoder)  # caches each memo's JCS text
    call_started: int = 0  # when the current SDK call began (a memo's started_at)
    # The earliest time a message this invocation queued for the run is due (its wake_at).
    queued_at: int | None = None
    # Checkpointing (stepline.engine.checkpoint_calls): the app may have stored steps through
    # /v1/checkpoint during the last call, so the state is read again before the next one.
    refresh: bool = False
    # Checkpointing calls look at the run now and then: was it cancelled meanwhile?
    liveness: checkpoint_calls.Liveness | None = None

    @property
    def function(self) -> FunctionRecord:
        """The run's function, once the invocation has checked it is still registered."""
        if self.fn is None:
            raise LookupError(f"function {self.state.run.fn_id!r} is not registered")
        return self.fn

    def queued(self, at_ms: int) -> None:
        self.queued_at = at_ms if self.queued_at is None else min(self.queued_at, at_ms)


@dataclass
class _Next:
    step: str
    attempt: int
    # The step's failed attempts before this one (stepline.engine.attempts).
    failures: list[dict[str, Any]] = field(default_factory=list)

    def call(self, run_id: str) -> dict[str, Any]:
        return messages.call(run_id, self.step, self.attempt, failures=self.failures)


class Executor:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        events: EventStore,
        waiters: WaiterStore,
        slots: SlotStore,
        queue: WorkQueue,
        timers: Timers,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        caller: HttpCaller,
        ending: RunEnding,
        cancel: Cancel,
        resumer: Resumer,
        starter: RunStarter,
        *,
        keys: KeyRing | None = None,
    ) -> None:
        self.runs = runs
        self.apps = apps
        self.waiters = waiters
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.ending = ending
        self.cancel = cancel  # for timeouts.start
        self.waker = Waker(queue, timers, clock)
        self.tools = OpTools(runs, apps, events, waiters, queue, self.waker, clock, ids, resumer, starter)
        self.concurrency = Concurrency(slots, queue, self.waker, clock, ids, settings)
        self.leases = Leases(runs, clock, ids, settings)
        self.app = AppCalls(caller, keys or StaticKeys(Keys.from_settings(settings)), clock, settings)
        self.functions = FunctionCache(apps, clock)
        # Message kinds handled outside the executor (cron fires, run timeouts), by kind.
        self.handlers: dict[str, Callable[[dict[str, Any]], object]] = {}
        self.telemetry: Telemetry = NOOP  # spans, metrics, log fields (stepline.telemetry)

    # -- entry point -------------------------------------------------------------------------
    def handle(self, body: dict[str, Any], *, budget_ms: int | None = None) -> None:
        """Process one message. Returning means the message is done (acknowledge it); an
        exception means an infrastructure failure (let the queue deliver it again)."""
        if self.waker.early(body):
            return
        kind = body.get("kind")
        if kind in _RUN_MESSAGES and isinstance(body.get("run_id"), str):
            message = _RUN_MESSAGES[kind].from_body(body)
            if isinstance(message, messages.Call):
                nxt = _Next(message.step, message.attempt, message.failures)
                # A call queued behind a concurrency limit carries its place in line: it goes on
                # only once a slot may be its (else it is back on the queue, or a stale copy).
                with self.concurrency.message(body) as ticket:
                    if self.concurrency.may_run(ticket):
                        self._drive(message, nxt, body, budget_ms)
            elif isinstance(message, messages.InvokeTimeout):
                error = {"name": "InvokeTimeoutError", "message": "the invoked function did not finish in time"}
                self.tools.resumer.resume(message.run_id, message.step, memo_error(error))
            elif isinstance(message, messages.Wake):
                self.tools.resumer.resume(message.run_id, message.step, memo_data(None))
            elif isinstance(message, messages.WaitTimeout):
                # Null unless an event already won the step (the memo write decides).
                self.tools.resumer.resume(message.run_id, message.step, memo_data(None))
                self.waiters.remove_waiter(message.event, message.run_id, message.step, message.match_key)
        elif kind in self.handlers:
            self.handlers[kind](body)
        else:
            log.error("dropping a message of unknown kind: %r", body)

    # -- the loop ----------------------------------------------------------------------------
    def _drive(self, message: messages.Call, nxt: _Next, body: dict[str, Any], budget_ms: int | None) -> None:
        run_id = message.run_id
        hold = self.leases.take(run_id, nxt.step, message.claim)
        if hold == Refusal.SETTLED:
            # Settled already: this is a copy, or a redelivery after the job that ran it failed
            # before its discovery call was made or queued. Queue one: it is harmless if another
            # is on its way, and without it the run could stall.
            self.queue.send(messages.call(run_id))
            return
        if hold == Refusal.BUSY:
            self._busy(run_id, body)  # another job holds the run, or the step's claim
            return
        if not isinstance(hold, Hold):
            return  # the run ended
        try:
            self._invoke(hold, nxt, budget_ms)
        except Exception:
            # A store or queue failure part-way (the message will be delivered again): let go of
            # the run now, best effort, so the next delivery goes on at once instead of waiting
            # out the lease. A crash that kills the process leaves the lease to expire instead.
            self.leases.let_go_quietly(hold)
            raise

    def _invoke(self, hold: Hold, nxt: _Next, budget_ms: int | None) -> None:
        """One invocation, once the run's lease (or the planned step's claim) is held."""
        run_id, now = hold.run_id, hold.taken_at
        # Lease (or claim) first, then read: a read taken before could miss the memo the
        # previous holder wrote just before releasing, and run that step again.
        state = self.runs.load_run(run_id)
        if state is None or state.run.status.terminal:
            self.leases.let_go(hold)
            return
        if hold.claimed_step is not None and state.has_memo(hold.claimed_step):
            # The job that ran this step died between writing its memo and removing the op: do
            # what it had left (discovery, then the op goes, as Resumer orders them). Calling the
            # app for a step it has a result for would only make it report an unexpected step.
            self.queue.send(messages.call(run_id))
            self.runs.remove_pending(run_id, hold.claimed_step)
            return
        fn = self.functions.function(state.run.fn_id)
        self.telemetry.invocation(state.run)
        budget = budget_ms if budget_ms is not None else int(self.settings.invocation_budget_s * 1000)
        inv = _Invocation(state, fn, hold, now + budget)
        if fn is None:
            error = {"name": "FunctionNotFound", "message": f"function {state.run.fn_id!r} is not registered"}
            self._finish(inv, RunStatus.FAILED, {"error": memo_error(error)["error"]}, nxt)
            return
        inv.liveness = checkpoint_calls.Liveness(self.runs, run_id, hold.owner, now)  # the run was just read
        if hold.holds_run_lease and not first_start_checks(self.cancel, self.waker, inv.state, fn, now):
            return
        step: _Next | None = nxt
        # Concurrency limits hold a slot around each call (None without limits: no cost).
        with self.concurrency.slots(fn, inv.state, hold.owner) as slots:
            while step is not None:
                if self.clock.now_ms() >= inv.deadline_ms:
                    # Out of time: hand the rest to a fresh invocation rather than race the deadline.
                    self.queue.send(step.call(run_id))
                    inv.queued(self.clock.now_ms())
                    break
                if step.step == DISCOVERY_STEP_ID and not hold.holds_run_lease and not self._upgrade(inv):
                    break
                self.leases.renew(hold)
                if slots is not None and not slots.admit(step.call(run_id)):
                    inv.queued(self.clock.now_ms())
                    break  # over a concurrency limit: the call waits in line for a slot
                step = self._call_once(inv, step)
                if inv.state.run.status.terminal:
                    return
        self._release(inv)

    def _call_once(self, inv: _Invocation, nxt: _Next) -> _Next | None:
        if inv.refresh and not self._refresh(inv):
            return None
        run = inv.state.run
        # Checkpointing (docs/architecture.md): what the call may do besides answering.
        plan = checkpoint_calls.plan_call(
            self.settings,
            inv.state,
            discovery=nxt.step == DISCOVERY_STEP_ID,
            disable_immediate=checkpoint_calls.immediate_disabled(inv.state, nxt.step == DISCOVERY_STEP_ID),
            attempt=nxt.attempt,
            holds_run_lease=inv.hold.holds_run_lease,
            deadline_ms=inv.deadline_ms,
            now_ms=self.clock.now_ms(),
        )
        if plan.api_checkpoints and not self._still_live(inv):
            return None
        inv.call_started = self.clock.now_ms()
        result, resp = self.app.call(
            inv.state,
            inv.function,
            nxt.step,
            nxt.attempt,
            plan,
            encoder=inv.encoder,
            queue_item_id=inv.hold.owner,
            stream_hooks=lambda: self._stream_hooks(inv, nxt),
        )
        if resp is not None:
            self._note_version(inv, resp)
        if resp is not None and resp.lines is None:
            inv.refresh = plan.api_checkpoints and self._stored_through_api(inv.fn, resp, result)
        if result.req_version is not None and result.req_version > 0 and result.req_version != run.req_version:
            run.req_version = result.req_version
            inv.dirty["req_version"] = result.req_version
        if is_stale_reply(result):
            if self._let_stale_call_go(inv):
                return None
            # Stale, says the app, yet the run is ours and live: a glitch, retried like one.
            result = replace(result, no_retry=False)
        if result.kind == "complete":
            self._finish(inv, RunStatus.COMPLETED, {"output": result.output}, nxt)
            return None
        if result.kind == "ops":
            result, ending = checkpoint_calls.take_ending(result)
            if ending is None:
                return self._handle_ops(inv, nxt, result)
            # A checkpointing call's last reply (docs/protocol.md §17.3): store what else it
            # carries, then complete the run or call again.
            if result.ops:
                self._handle_ops(inv, nxt, result)
                if inv.state.run.status.terminal:
                    return None
            if ending.completed:
                self._finish(inv, RunStatus.COMPLETED, {"output": ending.output}, nxt)
                return None
            return _Next(DISCOVERY_STEP_ID, 0)
        return self._handle_error(inv, nxt, result)

    # -- responses ---------------------------------------------------------------------------
    def _handle_ops(self, inv: _Invocation, nxt: _Next, result: CallResult) -> _Next | None:
        state = inv.state
        # Ignore ops already memoized, and re-reports of ops already waited on (docs/protocol.md §7.6);
        # a result (StepRun/StepError/StepFailed) of a planned step is what we wait for. A step
        # named twice in one reply is acted on once: twice would double its retries, and so on.
        first: dict[str, Opcode] = {}
        for op in result.ops:
            first.setdefault(op.id, op)
        fresh = [
            op
            for op in first.values()
            if not state.has_memo(op.id) and (op.id not in state.pending or op.op in RESULT_OPS)
        ]
        # Caps on what one reply may make (stepline.engine.limits): the run fails, naming the
        # limit, since asking the app again would get the same answer.
        over = reply_problem(len(result.ops), self.settings) or steps_problem(
            state, (op.id for op in fresh), inv.function, self.settings
        )
        if over is not None:
            name = TOO_MANY_OPS if len(result.ops) > self.settings.max_ops_per_reply else STEP_LIMIT
            error = {"name": name, "message": over, "stack": ""}
            return self._handle_error(
                inv, nxt, CallResult(kind="error", error=error, no_retry=True, status=result.status)
            )
        if len(result.ops) > 1 and not state.run.disable_immediate:
            # From now on every step is planned, never run inside discovery (docs/protocol.md §7.3).
            state.run.disable_immediate = True
            self.runs.update_run(state.run.run_id, {"disable_immediate": True})
        progressed = False
        planned: list[Opcode] = []
        for op in fresh:
            if op.op == Op.STEP_RUN:
                self._commit(inv, op, self._output_memo(inv, op), nxt)
                progressed = True
            elif op.op == Op.STEP_FAILED or (op.op == Op.STEP_ERROR and self._error_is_final(inv, nxt, op, result)):
                self._commit(inv, op, memo_error(op.error), nxt)
                progressed = True
            elif op.op == Op.STEP_ERROR:
                attempt = nxt.attempt if nxt.step == op.id else 0
                failures = self._failed(inv, nxt, op.id, attempt, op.error)
                self._retry_later(inv, _Next(op.id, attempt + 1, failures), None)
            elif op.op == Op.STEP_PLANNED:
                planned.append(op)
            elif op.op == Op.SLEEP:
                start_sleep(self.tools, state, op)
            elif op.op in _STARTS:
                settled = _STARTS[op.op](self.tools, state, op)
                # Nothing to invoke or a signal conflict (a failed step), or a look-back that
                # found its event: the step settles at once.
                if settled is not None:
                    self._commit(inv, op, settled, nxt)
                    progressed = True
            else:
                # Ops this runtime does not run fail their step, so the user's code sees a
                # StepError instead of the run hanging (docs/protocol.md §14.9).
                message = f"step kind {op.wire_op!r} is not supported by this runtime"
                self._commit(inv, op, memo_error({"name": "UnsupportedStep", "message": message}), nxt)
                progressed = True
        stalled = _no_progress(state, nxt, list(first.values()), fresh)
        if stalled is not None:
            # Left alone, the run would hang, or call the app for ever with the same answer (the
            # sweeper too): a failed attempt, retried, and in the end the run fails naming it.
            error = {"name": "NoProgress", "message": stalled, "stack": ""}
            return self._handle_error(
                inv, nxt, CallResult(kind="error", error=error, retry_at_ms=result.retry_at_ms, status=result.status)
            )
        if len(planned) == 1 and len(fresh) == 1 and inv.hold.holds_run_lease:
            return _Next(planned[0].id, 0)  # a lone planned step runs inline, no queue hop
        for op in planned:
            # Recorded before its message is sent (the call must find the op to claim it); a
            # crash in between leaves an op without a message, which the sweeper finds.
            pending = PendingOp(op.id, op.op, self.clock.now_ms(), op.display)
            if self.runs.add_pending(state.run.run_id, pending):
                state.pending[op.id] = pending
                self.queue.send(messages.call(state.run.run_id, op.id, 0))
                inv.queued(pending.created_at)
        # Discovery after each completed op, whatever the parallel mode: race mode needs it, and
        # in wait mode it is harmless, since the SDK re-reports the unfinished ops, which are
        # ignored (docs/protocol.md §7.5).
        return _Next(DISCOVERY_STEP_ID, 0) if progressed else None

    def _output_memo(self, inv: _Invocation, op: Opcode) -> dict[str, Any]:
        message = output_too_large(op.data)
        if message is not None:
            return memo_error({"name": "OutputTooLarge", "message": message})
        memo = memo_data(op.data)
        too_large = state_limit_error(inv.state, memo, self.settings.max_run_state_bytes)
        return memo_error(too_large) if too_large else memo

    def _error_is_final(self, inv: _Invocation, nxt: _Next, op: Opcode, result: CallResult) -> bool:
        attempt = nxt.attempt if nxt.step == op.id else 0
        return result.no_retry or attempt + 1 >= inv.function.max_attempts

    def _handle_error(self, inv: _Invocation, nxt: _Next, result: CallResult) -> _Next | None:
        error = result.error or {"name": "Error", "message": f"status {result.status}", "stack": ""}
        if result.no_retry or nxt.attempt + 1 >= inv.function.max_attempts:
            self._finish(inv, RunStatus.FAILED, {"error": error}, nxt)
            return None
        log.info("run %s attempt %d failed (%s); retrying", inv.state.run.run_id, nxt.attempt, error.get("message"))
        failures = self._failed(inv, nxt, nxt.step, nxt.attempt, error) if nxt.step != DISCOVERY_STEP_ID else []
        self._retry_later(inv, _Next(nxt.step, nxt.attempt + 1, failures), result.retry_at_ms)
        return None

    def _failed(
        self, inv: _Invocation, nxt: _Next, step: str, attempt: int, error: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """The step's failed attempts with this one added."""
        before = nxt.failures if nxt.step == step else []
        failure = failed_attempt(attempt, inv.call_started, self.clock.now_ms(), error)
        self.telemetry.step(inv.state.run, step, "StepError", attempt, StepStatus.RETRYING, error, inv.call_started)
        return [*before, failure]

    def _retry_later(self, inv: _Invocation, nxt: _Next, retry_at_ms: int | None) -> None:
        at = self.clock.now_ms() + backoff_ms(nxt.attempt - 1, self.settings.retry_base_ms, self.settings.retry_cap_ms)
        if retry_at_ms is not None:
            at = max(at, retry_at_ms)
        body = nxt.call(inv.state.run.run_id)
        claim = inv.hold.carry_claim(nxt.step, at + self.settings.lease_ms)
        if claim is not None:
            body["claim"] = claim  # the step stays claimed through its backoff, by this claim
        self.waker.at(body, at)
        inv.queued(at)

    def _commit(
        self, inv: _Invocation, op: Opcode, value: dict[str, Any], nxt: _Next, *, checkpointed: bool = False
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

    # -- checkpointed calls (stepline.engine.checkpoint_calls) ----------------------------------
    def _stream_hooks(self, inv: _Invocation, nxt: _Next) -> StreamHooks:
        def store(op: Opcode) -> bool:
            over = steps_problem(inv.state, [op.id], inv.function, self.settings)
            if over is not None:
                raise RefuseStep(STEP_LIMIT, over)
            value = self._output_memo(inv, op)
            # An output over a limit becomes an error memo, but the app went on with the value.
            return self._commit(inv, op, value, nxt, checkpointed=True) and "error" not in value

        def check() -> None:
            self._liveness(inv).check(self.clock.now_ms())

        def hold() -> None:
            try:
                self.leases.renew(inv.hold)
            except RuntimeError as lost:
                raise StopReading(str(lost)) from None

        return StreamHooks(store, check, hold)

    def _liveness(self, inv: _Invocation) -> checkpoint_calls.Liveness:
        if inv.liveness is None:
            inv.liveness = checkpoint_calls.Liveness(self.runs, inv.hold.run_id, inv.hold.owner, self.clock.now_ms())
        return inv.liveness

    def _still_live(self, inv: _Invocation) -> bool:
        """Before another checkpointing call of the same invocation: False (and the run is let
        go) when it was cancelled or lost meanwhile."""
        try:
            self._liveness(inv).check(self.clock.now_ms())
        except StopReading:
            return not self._let_stale_call_go(inv)
        return True

    def _refresh(self, inv: _Invocation) -> bool:
        """Read the state again after a call that may have checkpointed through the API; False
        when the run may not go on (it ended, or outgrew its state limit and failed)."""
        inv.refresh = False
        fresh = self.runs.load_run(inv.state.run.run_id)
        if fresh is None or fresh.run.status.terminal:
            inv.state.run.status = fresh.run.status if fresh is not None else RunStatus.CANCELLED
            return False
        for name, value in inv.dirty.items():
            setattr(fresh.run, name, value)
        inv.state = fresh
        too_large = checkpoint_calls.state_too_large(fresh, self.settings.max_run_state_bytes)
        over = steps_problem(fresh, (), inv.function, self.settings)
        if over is not None:
            too_large = {"name": STEP_LIMIT, "message": over, "stack": ""}
        if too_large is not None:
            self._finish(inv, RunStatus.FAILED, {"error": too_large}, _Next(DISCOVERY_STEP_ID, 0))
            return False
        return True

    def _stored_through_api(self, fn: FunctionRecord | None, resp: HttpResponse, result: CallResult) -> bool:
        app = self.functions.app(fn.app_id) if fn is not None else None
        return checkpoint_calls.stored_through_api(app, resp.headers, result, resp.body)

    def _let_stale_call_go(self, inv: _Invocation) -> bool:
        """The app (or the stream reader) says the call is stale: True, and the run is let go,
        when it is (the run ended, or another call holds it); False when it still is ours."""
        run = self.runs.get_run(inv.state.run.run_id)
        if run is None or run.status.terminal:
            inv.state.run.status = run.status if run is not None else RunStatus.CANCELLED
            return True
        if inv.hold.holds_run_lease and run.lease_owner != inv.hold.owner:
            inv.hold.holds_run_lease = False  # nothing of ours to release
            return True
        return False

    # -- ends ----------------------------------------------------------------------------------
    def _finish(self, inv: _Invocation, status: RunStatus, fields: dict[str, Any], nxt: _Next) -> None:
        if not inv.hold.holds_run_lease and not self._upgrade(inv, queue_discovery=False):
            # A claimed step's call ended the run, but another job holds the run: do this call
            # again once it is free, rather than end the run without the lease.
            self._busy(inv.hold.run_id, nxt.call(inv.hold.run_id))
            return
        # The run as read again after an upgrade, if there was one: the end is set on the run
        # that is announced and written, through the one ending (stepline.engine.ending).
        fn_config = inv.fn.config if inv.fn else None
        ending = Ending(status, output=fields.get("output"), error=fields.get("error"))
        if not self.ending.end(inv.state, fn_config, ending, lease_owner=inv.hold.owner, also=inv.dirty):
            log.warning("run %s: lease lost before finishing; another executor owns it", inv.hold.run_id)

    # -- leases and bookkeeping (stepline.engine.leases) ----------------------------------------
    def _upgrade(self, inv: _Invocation, *, queue_discovery: bool = True) -> bool:
        """Take the run's lease after a claimed step, to run discovery; re-read the run, since
        other branches may have finished meanwhile. False if busy (then discovery is queued,
        unless told not to)."""
        if not self.leases.upgrade(inv.hold):
            if queue_discovery:
                self._busy(inv.hold.run_id, messages.call(inv.hold.run_id))
            return False
        fresh = self.runs.load_run(inv.hold.run_id)
        if fresh is not None:
            inv.state = fresh
        return True

    def _release(self, inv: _Invocation) -> None:
        wake_at = next_wake_ms(inv.state.pending.values(), inv.queued_at, self.clock.now_ms())
        self.leases.release(inv.hold, {**inv.dirty, "wake_at": wake_at})

    def _note_version(self, inv: _Invocation, resp: HttpResponse) -> None:
        """Record the app version the run is on (stepline.engine.pinning), with the release."""

        def registered() -> str | None:
            app = self.functions.app(inv.function.app_id)
            return app.app_version if app else None

        version = pinning.observed(inv.state.run, inv.function.url, resp.headers, registered)
        if version is not None:
            inv.state.run.app_version = version
            inv.dirty["app_version"] = version

    def _busy(self, run_id: str, body: dict[str, Any]) -> None:
        """Someone else holds the run (or the step): try again shortly, backing off. The
        message is idempotent, so running it after the holder finished costs one harmless call.
        The retry is a fresh call, out of any concurrency line (see flow.concurrency)."""
        retry = messages.Call.from_body(body).when_busy()
        self.waker.after(retry.to_body(), min(1000 * 2 ** min(retry.busy - 1, 5), 30_000))


# Ops that may settle their step as they start (the memo they return is committed at once).
_STARTS = {Op.WAIT_FOR_EVENT: start_wait, Op.INVOKE_FUNCTION: start_invoke, Op.WAIT_FOR_SIGNAL: start_signal_wait}


def _no_progress(state: RunState, nxt: _Next, ops: list[Opcode], fresh: list[Opcode]) -> str | None:
    """Why a reply's ops (one per step) leave the run with nothing to do; None when they move
    it on.

    A call for one step must answer with that step's result (the SDKs answer an error status
    when they cannot run it). Discovery must report something new, unless the run is waiting
    on ops already (parallel branches re-reported, docs/protocol.md §7.5).
    """
    if nxt.step != DISCOVERY_STEP_ID:
        if any(op.id == nxt.step and op.op in RESULT_OPS for op in ops):
            return None
        return f"the app was asked to run step {nxt.step!r} and answered without its result"
    if fresh or state.pending:
        return None
    reported = ", ".join(repr(op.id) for op in ops[:3]) or "no steps"
    return f"the app reported {reported}, all with results already, and the run waits on nothing"
