"""The events a run emits when it ends (PROTOCOL §9.2), fed back through ingest like any other
event, so that `on_failure` handlers and user functions can trigger on them."""

from __future__ import annotations

import logging
from typing import Any

from runtime.engine.ingest import Ingest
from runtime.engine.ports import Run, RunStatus

log = logging.getLogger(__name__)

FINISHED = "inngest/function.finished"
FAILED = "inngest/function.failed"
CANCELLED = "inngest/function.cancelled"


class Lifecycle:
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

    def run_finished(self, run: Run) -> None:
        data: dict[str, Any] = {
            "function_id": run.fn_id,
            "run_id": run.run_id,
            "event": run.events[0] if run.events else {},
            "events": run.events,
            "_inngest": {"status": run.status.value},
        }
        if run.status == RunStatus.COMPLETED:
            data["result"] = run.output
        elif run.error is not None:
            data["error"] = run.error
        events = [{"name": FINISHED, "data": data}]
        # The failed/cancelled event's id is the run id, so emitting it twice starts nothing twice.
        if run.status == RunStatus.FAILED:
            events.append({"name": FAILED, "id": run.run_id, "data": data})
        elif run.status == RunStatus.CANCELLED:
            events.append({"name": CANCELLED, "id": run.run_id, "data": data})
        try:
            self.ingest.accept(events)
        except Exception:  # noqa: BLE001 - the run has ended either way; never undo that
            log.exception("run %s: emitting lifecycle events failed", run.run_id)
