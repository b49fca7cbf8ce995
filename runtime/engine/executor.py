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

The executor carries out; each concern it uses lives in a module of its own: the lease and the
claim (``engine.leases``), each call of the app and what its reply says of the run besides its
ops (``engine.invocation_calls``, over ``engine.app_calls``), what a reply means (``engine.plan``,
a pure function), the writes for the run's steps (``engine.invocation``), the checkpointing around
a call (``engine.checkpointed``), and the run's one ending (``engine.ending``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from stepline.engine import checkpoint_calls, messages
from stepline.engine.app_calls import AppCalls
from stepline.engine.checkpointed import CheckpointedCalls
from stepline.engine.due import next_wake_ms
from stepline.engine.ending import Ending, RunEnding
from stepline.engine.flow.concurrency import Concurrency
from stepline.engine.functions import FunctionCache
from stepline.engine.http import HttpCaller
from stepline.engine.ids import IdGenerator
from stepline.engine.invocation import Invocation, Next, StepWrites
from stepline.engine.invocation_calls import InvocationCalls
from stepline.engine.keys import KeyRing
from stepline.engine.leases import Hold, Leases, Refusal
from stepline.engine.ops.invoke import TIMEOUT_ERROR
from stepline.engine.ops.tools import OpTools
from stepline.engine.plan import Plan, RetryCall, Target, group_outstanding
from stepline.engine.ports import (
    AppStore,
    Clock,
    EventStore,
    RunStatus,
    RunStore,
    SignalStore,
    WaiterStore,
    WorkQueue,
)
from stepline.engine.resume import Resumer
from stepline.engine.runs import RunStarter
from stepline.engine.scheduling import Waker
from stepline.engine.timeouts import Cancel, first_start_checks
from stepline.protocol.calls import memo_data, memo_error
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.settings import Settings
from stepline.telemetry import NOOP, Telemetry

log = logging.getLogger(__name__)


class Executor:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        events: EventStore,
        waiters: WaiterStore,
        signals: SignalStore,
        concurrency: Concurrency,
        queue: WorkQueue,
        waker: Waker,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        caller: HttpCaller,
        ending: RunEnding,
        cancel: Cancel,
        resumer: Resumer,
        starter: RunStarter,
        *,
        keys: KeyRing,
        handlers: Mapping[str, Callable[[Any], object]],
        telemetry: Telemetry = NOOP,
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
        self.waker = waker
        self.tools = OpTools(runs, apps, events, waiters, signals, queue, waker, clock, ids, resumer, starter)
        self.telemetry = telemetry  # spans, metrics, log fields (stepline.telemetry)
        self.concurrency = concurrency  # the slots around each call (flow.concurrency)
        self.leases = Leases(runs, clock, ids, settings)
        self.functions = FunctionCache(apps, clock)
        self.writes = StepWrites(runs, queue, self.waker, self.tools, clock, ids, settings, telemetry=telemetry)
        self.checkpointed = CheckpointedCalls(runs, clock, settings, self.leases, self.writes, self.functions)
        app = AppCalls(caller, keys, clock, settings, telemetry=telemetry)
        self.calls = InvocationCalls(app, self.checkpointed, self.functions, clock, settings)
        # Message kinds handled outside the executor (cron fires, run timeouts), by kind: each
        # handler takes the typed message of its kind (``messages.Other`` for a kind of its own).
        self.handlers: dict[str, Callable[[Any], object]] = dict(handlers)

    # -- entry point -------------------------------------------------------------------------
    def handle(self, message: messages.Message | dict[str, Any], *, budget_ms: int | None = None) -> None:
        """Process one message (delivery hands it parsed; a body as received is parsed here).
        Returning means the message is done (acknowledge it); an exception means an
        infrastructure failure (let the queue deliver it again)."""
        if isinstance(message, dict):
            try:
                message = messages.parse(message, self.handlers)
            except messages.Malformed as refusal:
                log.error("dropping a malformed message: %s", refusal.reason)
                return
        if self.waker.early(message):
            return
        if isinstance(message, messages.Call):
            nxt = Next(message.step, message.attempt, message.failures, join=message.join)
            # A call queued behind a concurrency limit carries its place in line: it goes on
            # only once a slot may be its (else it is back on the queue, or a stale copy).
            with self.concurrency.message(message) as ticket:
                if self.concurrency.may_run(ticket):
                    self._drive(message, nxt, budget_ms)
        elif isinstance(message, messages.InvokeTimeout):
            self.tools.resumer.resume(message.run_id, message.step, memo_error(TIMEOUT_ERROR))
        elif isinstance(message, messages.Wake):
            self.tools.resumer.resume(message.run_id, message.step, memo_data(None))
        elif isinstance(message, messages.WaitTimeout):
            # Null unless an event already won the step (the memo write decides).
            self.tools.resumer.resume(message.run_id, message.step, memo_data(None))
            self.waiters.remove_waiter(message.event, message.run_id, message.step, message.match_key)
        elif message.kind in self.handlers:
            self.handlers[message.kind](message)
        else:
            log.error("dropping a message no handler takes: %r", message)

    # -- the loop ----------------------------------------------------------------------------
    def _drive(self, message: messages.Call, nxt: Next, budget_ms: int | None) -> None:
        run_id = message.run_id
        hold = self.leases.take(run_id, nxt.step, message.claim)
        if hold == Refusal.SETTLED:
            # Settled already: this is a copy, or a redelivery after the job that ran it failed
            # before its discovery call was made or queued. Queue one: it is harmless if another
            # is on its way, and without it the run could stall.
            self.queue.send(messages.call(run_id))
            return
        if hold == Refusal.BUSY:
            self._busy(message)  # another job holds the run, or the step's claim
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

    def _invoke(self, hold: Hold, nxt: Next, budget_ms: int | None) -> None:
        """One invocation, once the run's lease (or the planned step's claim) is held."""
        run_id, now = hold.run_id, hold.taken_at
        # Lease (or claim) first, then read: a read taken before could miss the memo the
        # previous holder wrote just before releasing, and run that step again.
        if hold.holds_run_lease:
            state = self.runs.load_run(run_id, lease_owner=hold.owner)
        else:
            state = self.runs.load_run(run_id, claimed=hold.claimed_step)
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
        # Checkpointing calls look again at the run read ``now`` (cancelled meanwhile?).
        liveness = checkpoint_calls.Liveness(self.runs, run_id, hold.owner, now)
        inv = Invocation(state, fn, hold, now + budget, liveness)
        if fn is None:
            error = {"name": "FunctionNotFound", "message": f"function {state.run.fn_id!r} is not registered"}
            self._finish(inv, Ending(RunStatus.FAILED, error=memo_error(error)["error"]), nxt)
            return
        self.checkpointed.start(inv)
        if hold.holds_run_lease and not first_start_checks(self.cancel, self.waker, inv.state, fn, now):
            return
        step: Next | None = nxt
        # Concurrency limits hold a slot around each call (None without limits: no cost).
        with self.concurrency.slots(fn, inv.state, hold.owner) as slots:
            while step is not None:
                if self.clock.now_ms() >= inv.deadline_ms:
                    # Out of time: hand the rest to a fresh invocation rather than race the deadline.
                    self.queue.send(step.call(run_id).to_body())
                    inv.queued(self.clock.now_ms())
                    break
                upgrading = step.step == DISCOVERY_STEP_ID and not hold.holds_run_lease
                if upgrading and not self._upgrade(inv):
                    break
                if (upgrading or step.join) and inv.wait_mode and group_outstanding(inv.state):
                    # Wait mode: a group joins in one discovery, made by what settles its last op (each
                    # checks after writing its result, so the last sees all; docs/protocol.md §7.5).
                    break
                self.leases.renew(hold)
                if slots is not None and not slots.admit(step.call(run_id)):
                    inv.queued(self.clock.now_ms())
                    break  # over a concurrency limit: the call waits in line for a slot
                step = self._call_once(inv, step)
                if inv.state.run.status.terminal:
                    return
        self._release(inv)

    def _call_once(self, inv: Invocation, nxt: Next) -> Next | None:
        if inv.refresh:
            failed = self.checkpointed.refresh(inv)
            if failed is not None:
                self._finish(inv, failed, Next(DISCOVERY_STEP_ID, 0))
            if failed is not None or inv.state.run.status.terminal:
                return None
        result = self.calls.call(inv, nxt)
        if result is None:
            return None  # the run is no longer this invocation's to move
        ending = None
        if result.kind == "ops":
            result, ending = checkpoint_calls.take_ending(result)
        if ending is None:
            return self._carry_out(inv, nxt, inv.plan(result, Target(nxt.step, nxt.attempt), self.settings))
        # A checkpointing call's last reply (docs/protocol.md §17.3): store what else it carries,
        # then complete the run or call again.
        if result.ops:
            self._carry_out(inv, nxt, inv.plan(result, Target(nxt.step, nxt.attempt), self.settings))
            if inv.state.run.status.terminal:
                return None
        if ending.completed:
            self._finish(inv, Ending(RunStatus.COMPLETED, output=ending.output), nxt)
            return None
        return Next(DISCOVERY_STEP_ID, 0)

    # -- carrying out a reply's plan (stepline.engine.plan) -----------------------------------
    def _carry_out(self, inv: Invocation, nxt: Next, plan: Plan) -> Next | None:
        """Do what ``plan`` says, in its order; the call to make next in this invocation."""
        state = inv.state
        settled_on_start = self.writes.apply(inv, nxt, plan)
        outcome = plan.outcome_after(settled_on_start)
        if isinstance(outcome, Ending):
            self._finish(inv, outcome, nxt)
            return None
        if isinstance(outcome, RetryCall):
            message = outcome.error.get("message")
            log.info("run %s attempt %d failed (%s); retrying", state.run.run_id, nxt.attempt, message)
            failures = (
                self.writes.failed(inv, nxt, nxt.step, nxt.attempt, outcome.error)
                if not outcome.target.discovery
                else []
            )
            self.writes.retry_later(
                inv, Next(outcome.target.step, outcome.target.attempt, failures), outcome.retry_at_ms
            )
            return None
        return Next(outcome.target.step, outcome.target.attempt) if outcome is not None else None

    # -- ends ----------------------------------------------------------------------------------
    def _finish(self, inv: Invocation, ending: Ending, nxt: Next) -> None:
        if not inv.hold.holds_run_lease and not self._upgrade(inv, queue_discovery=False):
            if ending.status is RunStatus.FAILED:
                # A planned step failed the run another job holds: ended now, if live (docs/protocol.md §8).
                self.ending.end_by_id(inv.hold.run_id, ending)
                return
            self._busy(nxt.call(inv.hold.run_id))
            return
        # The run as read again after an upgrade, if there was one: the end is set on the run
        # that is announced and written, through the one ending (stepline.engine.ending).
        fn_config = inv.fn.config if inv.fn else None
        if not self.ending.end(inv.state, fn_config, ending, lease_owner=inv.hold.owner, also=inv.dirty):
            log.warning("run %s: lease lost before finishing; another executor owns it", inv.hold.run_id)

    # -- leases and bookkeeping (stepline.engine.leases) ----------------------------------------
    def _upgrade(self, inv: Invocation, *, queue_discovery: bool = True) -> bool:
        """Take the run's lease after a claimed step, to run discovery; re-read the run, since
        other branches may have finished meanwhile (a take like any other: from the container's
        copy when it is current). False if busy (then discovery is queued, unless told not to)."""
        if not self.leases.upgrade(inv.hold):
            if queue_discovery:
                self._busy(Next(DISCOVERY_STEP_ID, 0, join=True).call(inv.hold.run_id))
            return False
        fresh = self.runs.load_run(inv.hold.run_id, lease_owner=inv.hold.owner)
        if fresh is not None:
            inv.state = fresh
        return True

    def _release(self, inv: Invocation) -> None:
        wake_at = next_wake_ms(inv.state.pending.values(), inv.queued_at, self.clock.now_ms())
        self.leases.release(inv.hold, {**inv.dirty, "wake_at": wake_at})

    def _busy(self, call: messages.Call) -> None:
        """Someone else holds the run (or the step): try again shortly, backing off. The
        message is idempotent, so running it after the holder finished costs one harmless call.
        The retry is a fresh call, out of any concurrency line (see flow.concurrency)."""
        retry = call.when_busy()
        self.waker.after(retry, min(1000 * 2 ** min(retry.busy - 1, 5), 30_000))
