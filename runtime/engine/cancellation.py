"""Cancelling runs: one by id (REST `DELETE /v1/runs/{id}`, cancel_on rules, timeouts) and in
bulk by function, time window and CEL expression (`POST /v1/cancellations`).

A cancelled run's timers and queued messages are not chased down: each finds the run terminal
and does nothing. It ends as every run does (``stepline.engine.ending``): announced, written,
then its waiters and singleton key released.
"""

from __future__ import annotations

from stepline.engine.ending import LIVE, Ending, RunEnding
from stepline.engine.expressions import matches
from stepline.engine.ports import Run, RunStatus, RunStore

BULK_PAGE = 100


class Cancellation:
    def __init__(self, runs: RunStore, ending: RunEnding) -> None:
        self.runs = runs
        self.ending = ending

    def cancel(self, run_id: str, reason: str | None = None) -> Run | None:
        """Cancel a run that has not ended, through the run's one ending
        (``stepline.engine.ending``). Returns the run as it now is (unchanged if it had already
        ended), or None if there is no such run. A run cancelled already is announced and
        released again, so a retried cancel repairs what a crash left half done."""
        error = {"name": "Cancelled", "message": reason, "stack": ""} if reason else None
        return self.ending.end_by_id(run_id, Ending(RunStatus.CANCELLED, error=error), again=True)

    def cancel_many(
        self,
        fn_id: str,
        *,
        started_after: int | None,
        started_before: int | None,
        expression: str | None,
    ) -> int:
        """Cancel every live run of the function created inside the window whose trigger event
        matches ``expression`` (CEL over ``event``). Returns how many were cancelled."""
        cancelled = 0
        cursor: str | None = None
        while True:
            runs, cursor = self.runs.list_runs(
                fn_id, limit=BULK_PAGE, cursor=cursor, created_after=started_after, created_before=started_before
            )
            for run in runs:
                if run.status not in LIVE:
                    continue
                trigger = run.events[0] if run.events else {}
                if not matches(expression, {"event": trigger}):
                    continue
                after = self.cancel(run.run_id)
                if after is not None and after.status == RunStatus.CANCELLED:
                    cancelled += 1
            if cursor is None:
                return cancelled
