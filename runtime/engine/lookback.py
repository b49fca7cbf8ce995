"""Look-back for waits: ``wait_for_event(..., lookback="5m")`` also matches an event that arrived
up to that long before the wait began (docs/steps/wait-for-event.md#look-back).

Why: a run that sends a request and then waits for its answer can lose the race to an answer
sent right after the trigger; the answer arrives, finds no waiter, and the wait then times out.

How, without a window where an event is missed: the waiter is stored first, as if it had begun
``lookback`` earlier (``Waiter.created_at``), so an event whose matching runs after it reads the
waiter and accepts it; then the stored events of that name in the window are read back (an index
by name and time, ``EventStore.recent_events``) and matched with the same CEL. An event is stored
before its matching runs and the waiter before the read-back, so every event is seen by one path
or the other (or both: the step's memo write lets one win).

Bounded: the window is at most 24 hours (``MAX_LOOKBACK_MS``, checked when the reply is parsed)
and the newest ``LOOKBACK_LIMIT`` events of the name in it are read; of those that match, the
earliest arrived wins, as it would have had the wait begun ``lookback`` earlier.
"""

from __future__ import annotations

from stepline.engine.expressions import matches
from stepline.engine.ports import EventStore, StoredEvent, Waiter

# Events of the awaited name read back for one wait, newest first.
LOOKBACK_LIMIT = 200


def earliest_match(events: EventStore, waiter: Waiter, now_ms: int) -> StoredEvent | None:
    """The earliest stored event of the waiter's name, received from ``waiter.created_at``
    (already moved back by the look-back) to ``now_ms``, that its expression matches."""
    found = events.recent_events(waiter.event_name, waiter.created_at, now_ms, limit=LOOKBACK_LIMIT)
    for event in sorted(found, key=lambda e: (e.received_at, e.internal_id)):
        if matches(waiter.expression, {"event": waiter.trigger, "async": event.wire()}):
            return event
    return None
