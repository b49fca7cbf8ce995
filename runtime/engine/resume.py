"""Resuming a run at a step: the one path every external completion takes (a sleep that ended,
a matching event, a wait or invoke that timed out, a child run that finished).

The memo's conditional write decides who wins when two of these race (an event and its wait's
timeout, two events for one waiter): the first commit is the step's result, the others lose
and do nothing. The winner enqueues discovery before it cleans up, so a winner that dies midway
leaves the pending op behind, and a later loser finishes its work.
"""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.ids import IdGenerator
from stepline.engine.ports import Memo, RunStore, WorkQueue
from stepline.telemetry import NOOP, Telemetry


class Resumer:
    def __init__(self, runs: RunStore, queue: WorkQueue, ids: IdGenerator, *, telemetry: Telemetry = NOOP) -> None:
        self.runs = runs
        self.queue = queue
        self.ids = ids
        self.telemetry = telemetry

    def resume(self, run_id: str, step_id: str, value: dict[str, Any], name: str = "") -> bool:
        """Memoize ``value`` (``{"data": ...}`` or ``{"error": ...}``) for the step and run
        discovery. True if this call's value became the step's result."""
        # The op being settled is about to go: its memo keeps what operators want to see of it
        # (name, kind, since when, what it was given). One point read, not the whole run.
        op = self.runs.get_pending(run_id, step_id)
        detail: dict[str, Any] = {}
        if op is not None:
            name = name or op.name
            detail = {"op": op.op, "started_at": op.created_at}
            if op.detail:
                detail["input"] = op.shown_detail()
        memo = Memo(step_id=step_id, value=value, seq=self.ids.new(), name=name, detail=detail)
        if self.runs.commit_memo(run_id, memo):
            self.telemetry.op_settled(self.runs, run_id, op, value)
            self.queue.send(messages.call(run_id))
            self.runs.remove_pending(run_id, step_id)
            return True
        state = self.runs.load_run(run_id)
        if state is not None and step_id in state.pending and not state.run.status.terminal:
            self.queue.send(messages.call(run_id))
            self.runs.remove_pending(run_id, step_id)
        return False
