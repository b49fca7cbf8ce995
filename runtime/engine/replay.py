"""Operator-started runs: replay a run from its trigger, or rerun it from a chosen step.

Both make a NEW run (fresh id) of the same function with the same events, executed by the
function's current code. A replay starts from nothing; a rerun starts with the original's memos
that were committed before the chosen step (in stack order), so the SDK skips those steps and
runs the chosen one and everything after it again. The new run's ``origin`` says where it came
from; its events are the original's, unchanged.

Flow control that acts when events arrive (rate limit, throttle, debounce, batching,
idempotency, singleton) is not applied: the operator asked for this run. Concurrency limits
still hold, since the executor enforces them on every call.
"""

from __future__ import annotations

from typing import Any

from ulid import ULID

from stepline.engine import messages
from stepline.engine.ids import IdGenerator
from stepline.engine.ports import AppStore, Clock, Memo, Run, RunState, RunStatus, RunStore, WaiterStore, WorkQueue
from stepline.engine.waits import add_cancel_rules
from stepline.telemetry import NOOP, Telemetry


def _seq_ms(seq: str) -> int | None:
    try:
        return ULID.from_str(seq).milliseconds
    except (ValueError, TypeError):
        return None


class ReplayError(Exception):
    """The run cannot be replayed as asked. ``status`` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Replays:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        waiters: WaiterStore,
        queue: WorkQueue,
        clock: Clock,
        ids: IdGenerator,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.runs = runs
        self.apps = apps
        self.waiters = waiters
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.telemetry = telemetry  # the new run's trace and its start's count

    def replay(self, run_id: str) -> Run:
        """A new run of the function with the original's events, from the first step."""
        state = self._original(run_id)
        return self._start(state, [], {"kind": "replay", "run_id": run_id})

    def rerun_from(self, run_id: str, step_id: str) -> Run:
        """A new run that keeps the original's step results committed before ``step_id`` and
        runs ``step_id`` (which must have a result in the original) and what follows again."""
        state = self._original(run_id)
        ordered = sorted(state.memos, key=lambda m: m.seq)
        chosen = next((m for m in ordered if m.step_id == step_id), None)
        if chosen is None:
            pending = state.pending.get(step_id)
            what = f"is still {pending.op} in run {run_id}" if pending else f"is not a step of run {run_id}"
            raise ReplayError(400, f"step_id: {step_id!r} {what}; rerun from a step that has a result")
        kept = [m for m in ordered if m.seq < chosen.seq]
        origin = {"kind": "rerun", "run_id": run_id, "step_id": step_id, "step_name": chosen.name}
        return self._start(state, kept, origin)

    def _original(self, run_id: str) -> RunState:
        state = self.runs.load_run(run_id)
        if state is None:
            raise ReplayError(404, f"run {run_id!r} not found")
        return state

    def _start(self, original: RunState, memos: list[Memo], origin: dict[str, Any]) -> Run:
        source = original.run
        fn = self.apps.get_function(source.fn_id)
        if fn is None:
            raise ReplayError(409, f"function {source.fn_id!r} is no longer registered; sync its app first")
        now = self.clock.now_ms()
        run = Run(
            run_id=self.ids.new(),
            fn_id=fn.fn_id,
            app_id=fn.app_id,
            status=RunStatus.QUEUED,
            events=source.events,
            event_ids=source.event_ids,
            created_at=now,
            origin=origin,
            wake_at=now,  # its start message is due at once
            trace=self.telemetry.new_run_trace(),  # a trace of its own (origin links it to the first)
        )
        if not self.runs.create_run(run):
            raise ReplayError(409, f"run id {run.run_id} already exists")  # a fresh ULID: never
        self.telemetry.run_started(run)
        add_cancel_rules(self.waiters, run, fn, run.created_at)
        # Memos before the queue message: the first call must already see them. Fresh seqs in
        # the original order keep the stack order the SDK replays them in.
        for memo in memos:
            detail = {**memo.detail, "copied_from": source.run_id}
            # The copy's seq is new; its end stays the original's (the time in the old seq).
            detail.setdefault("ended_at", _seq_ms(memo.seq))
            copied = Memo(step_id=memo.step_id, value=memo.value, seq=self.ids.new(), name=memo.name, detail=detail)
            self.runs.commit_memo(run.run_id, copied)
        self.queue.send(messages.call(run.run_id))
        return run
