"""Flow control where runs start (the Event API's side): rate limit, debounce and batching
decide whether and when an event makes a run; idempotency, singleton and throttle apply to
every run about to start, debounced and batched ones included.

A function that configures none of these costs nothing here: its runs start exactly as without
flow control. Concurrency is the executor's (``flow.concurrency``): it limits steps, not starts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stepline.engine import messages
from stepline.engine.expressions import matches
from stepline.engine.flow import batching, idempotency, ratelimit, singleton, throttle
from stepline.engine.flow.batching import Batcher
from stepline.engine.flow.buffers import BufferedStarts, Buffers
from stepline.engine.flow.debounce import Debouncer
from stepline.engine.flow.keys import event_context
from stepline.engine.functions import FunctionCache
from stepline.engine.ports import (
    AppStore,
    Clock,
    EventStore,
    FlowStateStore,
    FunctionRecord,
    KeyClaims,
    RunStatus,
    RunStore,
    StoredEvent,
    WorkQueue,
)
from stepline.engine.runs import RunStarter, run_id_for, run_id_for_events
from stepline.engine.scheduling import Waker
from stepline.telemetry import NOOP, FlowLimit, Telemetry

log = logging.getLogger(__name__)

INGEST_RULES = ("rateLimit", "debounce", "batchEvents", "idempotency", "singleton", "throttle")


class FlowControl:
    def __init__(
        self,
        flow_state: FlowStateStore,
        key_claims: KeyClaims,
        runs: RunStore,
        events: EventStore,
        apps: AppStore,
        queue: WorkQueue,
        waker: Waker,
        clock: Clock,
        starter: RunStarter,
        *,
        cancel: Callable[[str, str], Any],
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.flow_state = flow_state
        self.key_claims = key_claims
        self.runs = runs
        self.apps = apps
        self.queue = queue
        self.clock = clock
        self.starter = starter
        self.waker = waker  # throttled starts, debounce and batch timers
        # Buffered events: a batch holds references, read back from ``events`` when its run starts.
        self.buffers = Buffers(flow_state, events)
        # The function configs a debounce or batch timer reads, as the executor reads them.
        self.functions = FunctionCache(apps, clock)
        buffered = BufferedStarts(
            flow_state, self.buffers, self.waker, clock, self.functions.function, self.start_and_send
        )
        self.debounce = Debouncer(buffered)
        self.batching = Batcher(buffered)
        self.telemetry = telemetry  # how long a throttled start waited
        # Cancels a run (singleton mode "cancel"): Cancellation.cancel.
        self.cancel = cancel

    # -- events ------------------------------------------------------------------------------
    def on_event(self, fn: FunctionRecord, event: StoredEvent, *, duplicate: bool = False) -> list[dict[str, Any]]:
        """Whatever ``event`` starts for ``fn`` (which it triggers): the queue messages to send
        now. Delayed starts (throttle) and buffered events (debounce, batching) take care of
        themselves."""
        config = fn.config
        if not any(config.get(rule) for rule in INGEST_RULES):
            _, message = self.starter.start_for_event(fn, event)
            return [message] if message is not None else []
        if duplicate:
            # The same event again (its id within 24 h): it was counted, buffered or started
            # the first time. Only a run it created but never got onto the queue is resent.
            return self._resend(fn, event)
        now = self.clock.now_ms()
        context = event_context(event.wire())
        if not ratelimit.allows(self.flow_state, fn, context, now):
            log.info("rate limit: event %s starts no run of %s", event.internal_id, fn.fn_id)
            return []
        if config.get("debounce"):
            self.debounce.add(fn, event, context, now)
            return []
        batch = config.get("batchEvents")
        if batch is not None and batching.enabled(batch) and matches(batch.get("if"), context):
            self.batching.add(fn, event, context, now)
            return []
        return self.start(fn, [event])

    def start(self, fn: FunctionRecord, events: list[StoredEvent]) -> list[dict[str, Any]]:
        """Start one run of ``fn`` with ``events`` under the start-time rules. Returns the
        message to send now, if any (a throttled start is scheduled here for its time)."""
        now = self.clock.now_ms()
        context = event_context(events[0].wire())
        run_id = run_id_for_events(events, fn.fn_id)
        if not idempotency.claim(self.key_claims, fn, context, run_id, now):
            log.info("idempotency: run %s of %s skipped, its key has a run", run_id, fn.fn_id)
            return []
        if not singleton.claim(self.key_claims, self.runs, fn, context, run_id, now, self.cancel):
            return []
        started, message = self.starter.start_for_events(fn, events)
        if message is None:
            return []
        at = throttle.start_at(self.flow_state, fn, context, now)
        if at > now:
            self.telemetry.flow_wait(self.runs, started, FlowLimit.THROTTLE, now, at)
            self.waker.at(messages.Call(run_id=started), at)
            # A delayed start is due later than its creation: tell the sweeper when (one write
            # per throttled start, and only while the run still waits for it).
            self.runs.update_run(started, {"wake_at": at}, expect_status={RunStatus.QUEUED})
            return []
        return [message]

    def start_and_send(self, fn: FunctionRecord, events: list[StoredEvent]) -> None:
        started = self.start(fn, events)
        if started:
            self.queue.send_many(started)

    def _resend(self, fn: FunctionRecord, event: StoredEvent) -> list[dict[str, Any]]:
        run = self.runs.get_run(run_id_for(event, fn.fn_id))
        if run is not None and run.status == RunStatus.QUEUED:
            return [messages.call(run.run_id)]
        return []
