"""The sweeper: finds runs that should have moved on long ago and sends again what wakes them, so
no run hangs forever, whatever crashed where (docs/architecture.md, "No silent hangs").

What it finds. Every run that has not ended carries ``wake_at``: when something should next
happen to it if nothing is wrong (``stepline.engine.due``). It is set when the run is created,
and each time an executor releases the run, on writes that happen anyway. A run whose
``wake_at`` lies more than a grace period in the past, and whose lease is free or expired, has
lost what would have woken it: an executor died holding the lease and its message is gone, a
timer or delayed message went missing, a planned step's call was never sent, an executor
crashed between two of its writes. The grace (``sweep_grace_s``) is longer than the longest
queue delay (SQS: 15 minutes) plus Scheduler's early firing and delivery window, so a healthy
wait is never touched.

What it does, per run, from one read of its state:
* a pending op whose step already has a memo (a resume that died before it finished): queue
  discovery and drop the op, as ``Resumer`` would have;
* a planned step nobody holds (its claim is free or expired): its call message again, at
  attempt 0 (the attempt count lived only in the lost message); a step whose claim is live is
  in hand, retry backoffs included (the executor keeps the claim through them);
* a sleep, a wait or an invoke: its wake-up or timeout message again, at the time the op
  recorded (``scheduling.Waker``: at once when that time has passed);
* nothing pending at all: a discovery call.
A call that waits in a concurrency line is not sent again: the line holds it. Its line is woken
instead (``Concurrency.wake``): when slots are free, the entries that should have them get a
copy of their message made from the line, so work whose own copy was lost moves on too.

Everything it sends is harmless if the original also arrives: memos are written once
(conditional write), a planned step runs under its claim, a duplicate discovery call finds the
run leased or replays to the same place. Before sending, it moves ``wake_at`` forward with a
compare-and-set on the value it read: a run another sweep or an executor touched meanwhile is
skipped, and the run is not found again before the grace passes once more.

Runs are swept by ``stepline dev``'s driver every ``sweep_interval_s``, on AWS by a ``sweep``
message that an EventBridge Scheduler rate schedule puts on the work queue, and on demand by
``POST /v1/sweep`` (``stepline sweep``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from stepline.engine import messages
from stepline.engine.due import next_wake_ms, op_due_ms
from stepline.engine.flow.concurrency import Concurrency, Limit, limits_for
from stepline.engine.flow_records import SlotView
from stepline.engine.ids import IdGenerator
from stepline.engine.ports import (
    AppStore,
    Clock,
    FunctionRecord,
    PendingOp,
    Run,
    RunState,
    RunStatus,
    RunStore,
    SlotStore,
    WorkQueue,
)
from stepline.engine.scheduling import Waker
from stepline.engine.waits import pending_match_key
from stepline.protocol.opcodes import DISCOVERY_STEP_ID, Op
from stepline.settings import Settings

log = logging.getLogger(__name__)

_LIVE = {RunStatus.QUEUED, RunStatus.RUNNING}
_PAGE = 100
# How much of a concurrency line is read to see whether a run's call waits in it. A call deeper
# in a longer line is sent again: it then waits twice, which costs a slot turn, nothing more.
_LINE_SCAN = 1000
# Ops woken by a message of their own, and how to make it.
_WAKES = {
    Op.SLEEP: lambda run_id, op: messages.wake(run_id, op.step_id),
    Op.WAIT_FOR_EVENT: lambda run_id, op: messages.wait_timeout(
        run_id, op.step_id, str(op.detail.get("event") or ""), pending_match_key(op.detail)
    ),
    Op.INVOKE_FUNCTION: lambda run_id, op: messages.invoke_timeout(run_id, op.step_id),
    # A signal's timeout is a plain wake: null unless a signal won the step.
    Op.WAIT_FOR_SIGNAL: lambda run_id, op: messages.wake(run_id, op.step_id),
}

# Ops run by a job of their own under a claim on the op: sent again only when nobody holds it.
_JOBS = frozenset({Op.STEP_PLANNED, Op.AI_GATEWAY})


@dataclass
class SweepReport:
    """What one sweep did. ``sent`` counts by what was sent: ``discovery`` calls, planned
    ``step`` calls, ``wake``, ``wait_timeout``, ``invoke_timeout`` and ``ai_call`` messages."""

    before_ms: int
    found: int = 0  # stalled runs listed
    rearmed: int = 0  # runs something was sent for
    in_hand: int = 0  # runs with nothing to send (their planned steps are claimed): only moved on
    skipped: int = 0  # runs that moved on before the sweeper got to them
    errors: int = 0  # runs the sweeper failed on (logged; found again by the next sweep)
    sent: Counter[str] = field(default_factory=Counter)
    more: bool = False  # stopped at the sweep's run limit with more stalled runs left

    def as_json(self) -> dict[str, Any]:
        return {
            "before": self.before_ms,
            "found": self.found,
            "rearmed": self.rearmed,
            "in_hand": self.in_hand,
            "skipped": self.skipped,
            "errors": self.errors,
            "sent": dict(sorted(self.sent.items())),
            "more": self.more,
        }


class Sweeper:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        slots: SlotStore,
        queue: WorkQueue,
        waker: Waker,
        concurrency: Concurrency,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
    ) -> None:
        self.runs = runs
        self.apps = apps
        self.slots = slots
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.waker = waker
        # The executor's: a line's head this process woke moments ago is not woken again.
        self.concurrency = concurrency
        self._functions: dict[str, FunctionRecord | None] = {}

    def sweep(
        self, now_ms: int | None = None, *, grace_ms: int | None = None, max_runs: int | None = None
    ) -> SweepReport:
        """Re-arm up to ``max_runs`` runs (``sweep_max_runs``) stalled for longer than
        ``grace_ms`` (``sweep_grace_s``) at ``now_ms``."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        grace = int(self.settings.sweep_grace_s * 1000) if grace_ms is None else grace_ms
        most = self.settings.sweep_max_runs if max_runs is None else max_runs
        report = SweepReport(before_ms=now - grace)
        self._functions = {}  # read once per sweep
        cursor: str | None = None
        while report.found < most:
            runs, cursor = self.runs.stalled_runs(
                report.before_ms, now, limit=min(_PAGE, most - report.found), cursor=cursor
            )
            for run in runs:
                report.found += 1
                try:
                    self._rearm(run, now, report)
                except Exception:  # noqa: BLE001 - one run must not stop the sweep of the rest
                    report.errors += 1
                    log.exception("sweeper: re-arming run %s failed", run.run_id)
            if cursor is None:
                break
        report.more = cursor is not None
        if report.found:
            log.info("sweeper: %s", report.as_json())
        return report

    def handle(self, body: dict[str, Any]) -> None:
        """A ``sweep`` message (the AWS schedule's). A sweep that stopped at its run limit
        queues the next one at once, so a backlog does not wait for the schedule."""
        if self.sweep().more:
            self.queue.send(messages.sweep())

    # -- one run -----------------------------------------------------------------------------
    def _rearm(self, run: Run, now: int, report: SweepReport) -> None:
        state = self.runs.load_run(run.run_id)
        if state is None or not self._still_stalled(state.run, run, now):
            report.skipped += 1
            return
        run_id = run.run_id
        queued, lines = self._queued_calls(state)
        sends: list[tuple[str, dict[str, Any], int]] = []  # (what, message, when)
        settled: list[str] = []  # ops whose step has a memo: the resume did not finish
        waiting: list[PendingOp] = []
        for op in state.pending.values():
            if state.has_memo(op.step_id) or (op.op not in _WAKES and op.op not in _JOBS):
                settled.append(op.step_id)
                continue
            waiting.append(op)
            if op.op in _WAKES:
                wake = _WAKES[op.op](run_id, op)
                sends.append((wake["kind"], wake, op_due_ms(op)))
            elif op.op == Op.AI_GATEWAY:
                if self._unclaimed(run_id, op.step_id, now):
                    sends.append((messages.AI_CALL, messages.ai_call(run_id, op.step_id), now))
            elif op.step_id not in queued and self._unclaimed(run_id, op.step_id, now):
                sends.append(("step", messages.call(run_id, op.step_id), now))
        if (settled or not waiting) and DISCOVERY_STEP_ID not in queued:
            sends.append(("discovery", messages.call(run_id), now))
        wake_at = max(now, next_wake_ms(waiting, None, now))
        # Claim the run for this sweep: another sweep, or an executor that took and released
        # the run since it was listed, changed wake_at, and then this one stays out.
        if not self.runs.update_run(run_id, {"wake_at": wake_at}, expect_status=_LIVE, expect_wake_at=run.wake_at):
            report.skipped += 1
            return
        for _, body, at in sends:
            self.waker.at(body, at)
        for step_id in settled:
            self.runs.remove_pending(run_id, step_id)  # after discovery is queued, as Resumer does
        for limit, view in lines:
            self.concurrency.wake(limit.key, limit.limit, view)
        if not sends:
            report.in_hand += 1
            return
        report.rearmed += 1
        report.sent.update(what for what, _, _ in sends)
        log.warning(
            "sweeper: run %s was due %d s ago with nothing moving it; sent %s",
            run_id,
            (now - (run.wake_at or now)) // 1000,
            ", ".join(what for what, _, _ in sends),
        )

    @staticmethod
    def _still_stalled(current: Run, listed: Run, now: int) -> bool:
        leased = current.lease_owner is not None and current.lease_until is not None and current.lease_until >= now
        return current.status in _LIVE and not leased and current.wake_at == listed.wake_at

    def _unclaimed(self, run_id: str, step_id: str, now: int) -> bool:
        """Whether nobody holds the planned step. The probe takes the claim only when it is
        free or expired, and leaves it expired, so the call it precedes can take it at once."""
        return self.runs.claim_pending(run_id, step_id, f"sweeper-{self.ids.new()}", now - 1, now)

    def _queued_calls(self, state: RunState) -> tuple[set[str], list[tuple[Limit, SlotView]]]:
        """The steps (``DISCOVERY_STEP_ID`` for discovery) of the run's calls that wait in a concurrency
        line, and the lines they wait in as read (to be woken: a stalled run's call may be one
        whose copies are all gone, or wait behind such work)."""
        fn_id = state.run.fn_id
        if fn_id not in self._functions:
            self._functions[fn_id] = self.apps.get_function(fn_id)
        fn = self._functions[fn_id]
        if fn is None or not fn.config.get("concurrency"):
            return set(), []
        event = state.run.events[0] if state.run.events else {}
        steps: set[str] = set()
        lines: list[tuple[Limit, SlotView]] = []
        for limit in limits_for(fn, event):
            view = self.slots.slot_view(limit.key, _LINE_SCAN)
            mine = {
                str(e.body.get("step") or DISCOVERY_STEP_ID)
                for e in view.line
                if e.body.get("run_id") == state.run.run_id
            }
            if mine:
                lines.append((limit, view))
            steps |= mine
        return steps, lines
