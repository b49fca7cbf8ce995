"""Cancelling runs: one by id (REST `DELETE /v1/runs/{id}`, cancel_on rules, timeouts) and in
bulk by function, time window and CEL expression (`POST /v1/cancellations`).

A cancelled run's timers and queued messages are not chased down: each finds the run terminal
and does nothing. Its waiters are removed so later events stop matching it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stepline.engine.expressions import matches
from stepline.engine.ports import AppStore, Clock, Run, RunStatus, RunStore

if TYPE_CHECKING:
    from stepline.engine.lifecycle import Lifecycle
    from stepline.engine.waits import Waits

LIVE = {RunStatus.QUEUED, RunStatus.RUNNING}
BULK_PAGE = 100


class Cancellation:
    def __init__(self, runs: RunStore, apps: AppStore, clock: Clock) -> None:
        self.runs = runs
        self.apps = apps
        self.clock = clock
        self.lifecycle: Lifecycle | None = None
        self.waits: Waits | None = None

    def cancel(self, run_id: str, reason: str | None = None) -> Run | None:
        """Cancel a run that has not ended. Returns the run as it now is (unchanged if it had
        already ended), or None if there is no such run."""
        changes: dict[str, Any] = {"status": RunStatus.CANCELLED, "ended_at": self.clock.now_ms()}
        if reason:
            changes["error"] = {"name": "Cancelled", "message": reason, "stack": ""}
        if not self.runs.update_run(run_id, changes, expect_status=LIVE):
            run = self.runs.get_run(run_id)
            if run is None or run.status != RunStatus.CANCELLED:
                return run
            # Cancelled already, maybe by a try that failed before announcing it: announce again
            # (idempotent), so a retried cancel repairs what a crash left half done.
        state = self.runs.load_run(run_id)
        if state is None:
            return None
        if self.waits is not None:
            fn = self.apps.get_function(state.run.fn_id)
            self.waits.remove_all(state, fn.config if fn else None)
        if self.lifecycle is not None:
            self.lifecycle.run_finished(state.run)
        return state.run

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
