"""What debounce and batching share: events held in a versioned flow state until a run takes
them, and the crash-safe way a buffer becomes a run.

Turning a buffer into a run is three writes: seal it (compare-and-set, so no event can join a
buffer whose run is being made), start the run (its id derives from the buffer's events, so
doing it twice creates one run), delete it. Whoever finds a sealed buffer (an event arriving,
the buffer's timer) finishes that job first, so a crash between the writes loses nothing.

A batch buffer holds its events by reference (``event_ref``: the internal id, the events being
stored already), read back when the run starts: every added event rewrites the buffer item, and
with whole events that would write every event of the batch again each time (up to 256 KiB, 256
write units, per event added). A debounce holds one event, whole.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from stepline.engine.flow_records import FlowState
from stepline.engine.ports import Clock, EventStore, FlowStateStore, FunctionRecord, StoredEvent
from stepline.engine.scheduling import Waker

# A buffer is kept this long past its fire time before it may expire; its timer empties it
# long before (this only bounds what a lost timer could leave behind).
GRACE_MS = 30 * 24 * 3600 * 1000
MAX_ATTEMPTS = 64

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BufferedStarts:
    """What debounce and batching work with, handed over by flow control (which owns both):
    the flow state and its buffers, timers, the clock, the function configs as flow control
    reads them, and the start of a run under the start-time rules (``FlowControl.start_and_send``)."""

    flow_state: FlowStateStore
    buffers: Buffers
    waker: Waker
    clock: Clock
    function: Callable[[str], FunctionRecord | None]
    start_and_send: Callable[[FunctionRecord, list[StoredEvent]], None]


def event_doc(event: StoredEvent) -> dict[str, Any]:
    return asdict(event)


def event_from_doc(doc: dict[str, Any]) -> StoredEvent:
    return StoredEvent(**doc)


def event_ref(event: StoredEvent) -> dict[str, Any]:
    return {"internal_id": event.internal_id}


class Buffers:
    def __init__(self, flow_state: FlowStateStore, events: EventStore) -> None:
        self.flow_state = flow_state
        self.events = events  # where a batch's referenced events are read back

    def entry(self, event: StoredEvent) -> dict[str, Any]:
        """What a batch buffer holds for ``event`` (stored already: its reference)."""
        return event_ref(event)

    def events_of(self, entries: list[dict[str, Any]]) -> list[StoredEvent]:
        out: list[StoredEvent] = []
        for entry in entries:
            if "name" in entry:  # a whole event: a debounce's, or a batch's from before references
                out.append(event_from_doc(entry))
                continue
            event = self.events.get_event(entry["internal_id"])
            if event is None:
                log.error("buffered event %s is not stored; its run starts without it", entry["internal_id"])
                continue
            out.append(event)
        return out

    def finish(
        self,
        key: str,
        state: FlowState,
        now_ms: int,
        start: Callable[[list[StoredEvent]], None],
    ) -> bool:
        """Seal ``state`` (unless sealed), start its run, delete it. False when another writer
        changed the buffer first: read it again and decide again."""
        version = state.version
        if not state.data.get("sealed"):
            sealed = {**state.data, "sealed": True}
            if not self.flow_state.put_flow_state(
                key, sealed, expect_version=version, expires_at=state.expires_at, now_ms=now_ms
            ):
                return False
            version += 1
        start(self.events_of(state.data.get("events") or []))
        self.flow_state.delete_flow_state(key, version)
        return True
