"""Starting runs. Run ids are derived from (event, function) so that starting the same run twice,
after a crash or a retried request, collides on the conditional insert instead of duplicating."""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.ids import derived_ulid
from stepline.engine.ports import Clock, FunctionRecord, Run, RunStatus, RunStore, StoredEvent, WaiterStore
from stepline.engine.waits import add_cancel_rules
from stepline.protocol.invocations import INVOKED
from stepline.telemetry import NOOP, Telemetry


def run_id_for(event: StoredEvent, fn_id: str) -> str:
    return derived_ulid(event.received_at, event.internal_id, fn_id)


def run_id_for_events(events: list[StoredEvent], fn_id: str) -> str:
    """A batch's run id derives from every event in it, so two different batches can never
    share one (a retried event may open a second batch after the first one ran)."""
    if len(events) == 1:
        return run_id_for(events[0], fn_id)
    return derived_ulid(events[0].received_at, *(e.internal_id for e in events), fn_id)


def invocation_event(
    fn: FunctionRecord, data: dict[str, Any], event_id: str, now_ms: int, sender: dict[str, str] | None = None
) -> StoredEvent:
    """The event an operator's invoke starts ``fn`` with, whatever its triggers: an
    ``inngest/function.invoked`` carrying ``data``, with no caller to answer (``sender``: the
    request's trace context)."""
    return StoredEvent(
        internal_id=event_id,
        id=event_id,
        name=INVOKED,
        data={**data, "_inngest": {"fn_id": fn.fn_id}},
        ts=now_ms,
        received_at=now_ms,
        trace=sender,
    )


class RunStarter:
    def __init__(self, runs: RunStore, waiters: WaiterStore, clock: Clock, *, telemetry: Telemetry = NOOP) -> None:
        self.runs = runs
        self.waiters = waiters
        self.clock = clock
        self.telemetry = telemetry

    def start_for_event(self, fn: FunctionRecord, event: StoredEvent) -> tuple[str, dict | None]:
        """Create the run (or find it already created). Returns the run id and the queue message
        that starts it, or None when the run was already picked up."""
        return self.start_for_events(fn, [event])

    def start_for_events(self, fn: FunctionRecord, events: list[StoredEvent]) -> tuple[str, dict | None]:
        """As ``start_for_event``, for a run that receives several events (a batch)."""
        now = self.clock.now_ms()
        run = Run(
            run_id=run_id_for_events(events, fn.fn_id),
            fn_id=fn.fn_id,
            app_id=fn.app_id,
            status=RunStatus.QUEUED,
            events=[event.wire() for event in events],
            event_ids=[event.internal_id for event in events],
            created_at=now,
            wake_at=now,  # its start message is due at once
            trace=self.telemetry.new_run_trace(event.trace for event in events),
        )
        if self.runs.create_run(run):
            self.telemetry.run_started(run)
            # Cancel rules watch from the moment the run exists, queued or not.
            add_cancel_rules(self.waiters, run, fn, run.created_at)
            return run.run_id, messages.call(run.run_id)
        existing = self.runs.get_run(run.run_id)
        # Created by an earlier attempt that may have died before enqueueing: enqueue again.
        # A duplicate start message is harmless (the lease and memos make it a no-op).
        if existing is not None and existing.status == RunStatus.QUEUED:
            add_cancel_rules(self.waiters, existing, fn, existing.created_at)
            return run.run_id, messages.call(run.run_id)
        return run.run_id, None
