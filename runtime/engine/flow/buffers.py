"""What debounce and batching share: events held in a versioned flow state until a run takes
them, and the crash-safe way a buffer becomes a run.

Turning a buffer into a run is three writes: seal it (compare-and-set, so no event can join a
buffer whose run is being made), start the run (its id derives from the buffer's events, so
doing it twice creates one run), delete it. Whoever finds a sealed buffer (an event arriving,
the buffer's timer) finishes that job first, so a crash between the writes loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from stepline.engine.ports import FlowStateStore, StoredEvent
from stepline.engine.records import FlowState

# A buffer is kept this long past its fire time before it may expire; its timer empties it
# long before (this only bounds what a lost timer could leave behind).
GRACE_MS = 30 * 24 * 3600 * 1000
MAX_ATTEMPTS = 64


def event_doc(event: StoredEvent) -> dict[str, Any]:
    return asdict(event)


def event_from_doc(doc: dict[str, Any]) -> StoredEvent:
    return StoredEvent(**doc)


class Buffers:
    def __init__(self, flow_state: FlowStateStore) -> None:
        self.flow_state = flow_state

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
        start([event_from_doc(d) for d in state.data.get("events") or []])
        self.flow_state.delete_flow_state(key, version)
        return True
