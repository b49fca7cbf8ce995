"""`batchEvents` {maxSize, timeout, key, if}: one run receives ``events[]`` when a key's batch is
full or ``timeout`` after its first event, whichever comes first.

A batch is a buffer of events per key. The event that fills it seals it and starts the run; the
first event schedules a batch message for the timeout, which starts the run of a batch that
never filled (and does nothing for one that already ran: it names its batch). Events for which
``if`` is false are not batched: each starts a run of its own at once. A batch whose events
would pass ``MAX_BATCH_BYTES`` runs early.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from stepline.engine.flow.buffers import GRACE_MS, MAX_ATTEMPTS, BufferedStarts, event_doc
from stepline.engine.flow.keys import digest, rule_key
from stepline.engine.flow_records import FlowState
from stepline.engine.messages import BatchTimeout
from stepline.engine.ports import FunctionRecord, StoredEvent, StoreError
from stepline.protocol.durations import parse_duration_ms

# Inngest's hard cap on a batch's combined events. A buffer this large fits no DynamoDB item: the
# AWS flow-state store offloads it to S3, as it does any large item.
MAX_BATCH_BYTES = 10 * 1024 * 1024


def enabled(config: dict[str, Any] | None) -> bool:
    """As Inngest: a batch of one, or one without a timeout, is no batch."""
    return config is not None and int(config.get("maxSize") or 0) > 1 and bool(config.get("timeout"))


class Batcher:
    def __init__(self, flow: BufferedStarts) -> None:
        self.flow = flow

    def add(self, fn: FunctionRecord, event: StoredEvent, context: dict[str, Any], now_ms: int) -> None:
        config = fn.config["batchEvents"]
        max_size = int(config["maxSize"])
        timeout = parse_duration_ms(config["timeout"])
        key = rule_key("batch", fn.fn_id, config.get("key"), context)
        # The batch's size counts whole events (what its run receives); the buffer holds references.
        size = len(json.dumps(event_doc(event), separators=(",", ":"), default=str))
        store, buffers = self.flow.flow_state, self.flow.buffers

        def start(events: list[StoredEvent]) -> None:
            self.flow.start_and_send(fn, events)

        for _ in range(MAX_ATTEMPTS):
            state = store.get_flow_state(key, now_ms)
            data = state.data if state else {}
            events = list(data.get("events") or [])
            if state is not None and (
                data.get("sealed") or data["fire_at"] <= now_ms or data.get("bytes", 0) + size > MAX_BATCH_BYTES
            ):
                # Full, timed out or too big to take this event: that batch runs first.
                buffers.finish(key, state, now_ms, start)
                continue
            if any(d["internal_id"] == event.internal_id for d in events):
                return  # a retried request: the event is in this batch already
            first_at = data.get("first_at", now_ms)
            batch = {
                "fn_id": fn.fn_id,
                "batch_id": data.get("batch_id", event.internal_id),
                "events": events + [self.flow.buffers.entry(event)],
                "first_at": first_at,
                "fire_at": first_at + timeout,
                "bytes": data.get("bytes", 0) + size,
            }
            full = len(batch["events"]) >= max_size
            if full:
                batch["sealed"] = True
            elif state is None:
                # A new batch's timeout message goes before the batch itself: a crash in between
                # leaves a message for no batch (ignored), never a batch without one.
                timeout_message = _message(fn.fn_id, key, batch["batch_id"], batch["fire_at"])
                self.flow.waker.at(timeout_message, batch["fire_at"])
            expires_at = batch["fire_at"] + GRACE_MS
            if not store.put_flow_state(
                key,
                batch,
                expect_version=state.version if state else None,
                expires_at=expires_at,
                now_ms=now_ms,
            ):
                continue
            if full:
                # A compare-and-set leaves version + 1; a create's version is read back.
                if state is not None:
                    sealed: FlowState | None = FlowState(key, state.version + 1, batch, expires_at)
                else:
                    sealed = store.get_flow_state(key, now_ms)
                if sealed is not None:
                    buffers.finish(key, sealed, now_ms, start)
            return
        raise StoreError(f"batch {key}: too much contention")

    def fire(self, message: BatchTimeout) -> None:
        """A batch's timeout: run it unless it already ran."""
        key, at = message.key, message.at
        now = self.flow.clock.now_ms()
        for _ in range(MAX_ATTEMPTS):
            state = self.flow.flow_state.get_flow_state(key, now)
            if state is None or state.data.get("batch_id") != message.batch_id:
                return  # that batch ran when it filled
            if now < at and not state.data.get("sealed"):
                self.flow.waker.at(message, at)  # the queue's clock ran ahead of the engine's
                return
            fn = self.flow.function(state.data["fn_id"])
            if fn is None:
                self.flow.flow_state.delete_flow_state(key, state.version)
                return
            if self.flow.buffers.finish(key, state, now, functools.partial(self.flow.start_and_send, fn)):
                return
        raise StoreError(f"batch {key}: too much contention")


def _message(fn_id: str, key: str, batch_id: str, at: int) -> BatchTimeout:
    return BatchTimeout(fn_id=fn_id, key=key, batch_id=batch_id, at=at, step=digest(key, batch_id)[:16])
