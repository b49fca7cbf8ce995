"""What happens when a run ends: its waiters go, the events of docs/protocol.md §9.2 are emitted
through ingest (so `on_failure` handlers and user functions trigger on them), and a run that
was invoked hands its result back to the caller's step."""

from __future__ import annotations

import hashlib
import logging
from typing import TYPE_CHECKING, Any

from stepline.engine.cancellation import LIVE
from stepline.engine.ids import seeded_ulid
from stepline.engine.ops.invoke import parse_correlation
from stepline.engine.ports import AppStore, Clock, Run, RunState, RunStatus, RunStore
from stepline.protocol.calls import memo_data, memo_error
from stepline.telemetry import NOOP, Telemetry

if TYPE_CHECKING:
    from stepline.engine.cancellation import Cancellation
    from stepline.engine.ingest import Ingest
    from stepline.engine.resume import Resumer
    from stepline.engine.waits import Waits

log = logging.getLogger(__name__)

FINISHED = "inngest/function.finished"
FAILED = "inngest/function.failed"
CANCELLED = "inngest/function.cancelled"


def lifecycle_seed(run: Run) -> tuple[int, bytes]:
    """The event-id seed of a run's end events: derived from the run, so their internal ids are
    known without a lookup (erasing a run erases them: they carry its events and output) and
    announcing the end again stores the same events."""
    return run.created_at, hashlib.sha256(f"lifecycle\x1f{run.run_id}".encode()).digest()[:10]


def lifecycle_event_ids(run: Run) -> list[str]:
    """Internal ids the run's end events have, if it emitted them: finished, then failed or
    cancelled."""
    ms, entropy = lifecycle_seed(run)
    return [seeded_ulid(ms, entropy, index) for index in range(2)]


class Lifecycle:
    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        clock: Clock,
        ingest: Ingest,
        resumer: Resumer,
        cancellation: Cancellation,
        waits: Waits,
    ) -> None:
        self.runs = runs
        self.apps = apps
        self.clock = clock
        self.ingest = ingest
        self.resumer = resumer
        self.cancellation = cancellation
        self.waits = waits
        self.telemetry: Telemetry = NOOP

    def cancel(self, run_id: str, reason: str | None = None) -> Run | None:
        return self.cancellation.cancel(run_id, reason)

    def fail(self, run_id: str, error: dict[str, Any]) -> Run | None:
        """End a live run as Failed from outside the executor (a poison message), then finish
        it as the executor finishes a run (``run_ended``). Without the run's lease: the write is
        conditional on the run being live, and it clears the lease, since whoever held it (the
        failing delivery) will not release it. None when the run is missing or had ended."""
        changes = {
            "status": RunStatus.FAILED,
            "error": error,
            "ended_at": self.clock.now_ms(),
            "lease_owner": None,
            "lease_until": None,
        }
        if not self.runs.update_run(run_id, changes, expect_status=LIVE):
            return None
        state = self.runs.load_run(run_id)
        if state is None:
            return None
        fn = self.apps.get_function(state.run.fn_id)
        try:
            self.run_ended(state, fn.config if fn else None)
        except Exception:  # noqa: BLE001 - the store is failing: the run is Failed either way
            log.exception("run %s: announcing its end failed", run_id)
        return state.run

    def run_ended(self, state: RunState, fn_config: dict[str, Any] | None) -> None:
        """The executor finished the run (completed or failed)."""
        self.waits.remove_all(state, fn_config)
        self.ingest.flow.run_ended(state.run, fn_config)
        self.run_finished(state.run)

    def run_finished(self, run: Run) -> None:
        self.telemetry.run_ended(run)
        trigger = run.events[0] if run.events else {}
        self._answer_invoker(run, trigger)
        data: dict[str, Any] = {
            "function_id": run.fn_id,
            "run_id": run.run_id,
            "event": trigger,
            "events": run.events,
            "_inngest": {"status": run.status.value},
        }
        correlation = ((trigger.get("data") or {}).get("_inngest") or {}).get("correlation_id")
        if correlation:
            data["correlation_id"] = correlation
        if run.status == RunStatus.COMPLETED:
            data["result"] = run.output
        elif run.error is not None:
            data["error"] = run.error
        # Ids derived from the run: emitting twice (a retried finish) stores each event once.
        events = [{"name": FINISHED, "id": f"{run.run_id}-finished", "data": data}]
        if run.status == RunStatus.FAILED:
            events.append({"name": FAILED, "id": run.run_id, "data": data})
        elif run.status == RunStatus.CANCELLED:
            events.append({"name": CANCELLED, "id": run.run_id, "data": data})
        # A failure here propagates: the caller's message (or request) is retried and announces
        # again, which the derived ids make harmless.
        self.ingest.accept(events, seed=lifecycle_seed(run))

    def _answer_invoker(self, run: Run, trigger: dict[str, Any]) -> None:
        caller = parse_correlation(trigger)
        if caller is None:
            return
        if run.status == RunStatus.COMPLETED:
            value = memo_data(run.output)
        elif run.status == RunStatus.CANCELLED:
            value = memo_error({"name": "FunctionCancelled", "message": f"invoked run {run.run_id} was cancelled"})
        else:
            value = memo_error(run.error or {"name": "Error", "message": f"invoked run {run.run_id} failed"})
        self.resumer.resume(caller[0], caller[1], value)
