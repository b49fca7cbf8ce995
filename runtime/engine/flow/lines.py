"""The vocabulary of concurrency lines (``stepline.engine.flow.concurrency``): a function's
limits, a slot's lease, what one read of a key shows (free slots, the line, ranks in it), a
waiting call's place as one delivery handles it (``Ticket``; the place a call carries is
``messages.LinePlace``), and the call a line entry holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from stepline.engine.flow.keys import digest, event_context, key_value
from stepline.engine.flow_records import LineEntry, SlotView
from stepline.engine.messages import Call, Malformed
from stepline.engine.ports import Clock, FunctionRecord, SlotStore
from stepline.settings import Settings

log = logging.getLogger(__name__)

MAX_LIMITS = 2
# Delays of a waiting message's safety net, in order; the last repeats.
SAFETY_DELAYS_MS = (1_000, 2_000, 4_000, 8_000, 15_000, 30_000)
# Line entries read beyond twice the limit: enough to rank any entry that could be admitted
# (those ahead of it are at most the admitted ones plus the free slots).
_LINE_PAGE_EXTRA = 8


def slot_lease_ms(settings: Settings) -> int:
    """How long a slot is held without renewal: one call (at most the step timeout) and the
    writes around it. A holder that died frees its slot after this; a live one renews it
    between calls once less than a step timeout is left."""
    return int(settings.step_timeout_s * 1000 * 3 / 2)


def quietly(write: Callable[..., Any], *args: Any, attempts: int = 1) -> None:
    """A clean-up write whose failure leaves only what expires or is woken anyway."""
    for attempt in range(attempts):
        try:
            write(*args)
            return
        except Exception:  # noqa: BLE001
            if attempt + 1 == attempts:
                log.warning("concurrency clean-up %s%r failed", getattr(write, "__name__", write), args, exc_info=True)


def entry_call(entry: LineEntry) -> Call | None:
    """The call a line entry holds (the body of the message that waits); None for a body no
    call could be read from, which only a store written by hand could hold."""
    try:
        return Call.from_body(entry.body)
    except Malformed:
        log.warning("line entry %s holds no call: %r", entry.position, entry.body)
        return None


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int


def limits_for(fn: FunctionRecord, event: dict[str, Any]) -> list[Limit]:
    """The function's concurrency limits for a run with this trigger event, tightest first."""
    context = event_context(event)
    out: list[Limit] = []
    for rule in (fn.config.get("concurrency") or [])[:MAX_LIMITS]:
        limit = int(rule.get("limit") or 0)
        if limit <= 0:
            continue  # 0 means no limit of its own
        expression = rule.get("key")
        value = key_value(expression, context)
        scope = rule.get("scope") or "fn"
        if scope == "fn":
            key = f"conc:{fn.fn_id}:{digest(expression or '', value)}"
        else:
            # Shared by every function whose key gives the same value in this scope.
            key = f"conc:{scope}:{digest(value)}"
        out.append(Limit(key, limit))
    return sorted(out, key=lambda c: c.limit)


def line_page(limit: int) -> int:
    return 2 * limit + _LINE_PAGE_EXTRA


@dataclass
class Standing:
    """One key as one read saw it."""

    free: list[int]
    waiting: list[LineEntry]
    busy_tokens: set[str] = field(default_factory=set)

    def rank(self, position: str, *, in_line: bool) -> int:
        """How many waiting entries go before ``position``."""
        if in_line:
            for index, entry in enumerate(self.waiting):
                if entry.position == position:
                    return index
            return len(self.waiting)  # beyond the page read: behind everything seen
        return sum(1 for entry in self.waiting if entry.position < position)

    def admits(self, position: str, *, in_line: bool) -> bool:
        return self.rank(position, in_line=in_line) < len(self.free)


def standing_of(view: SlotView, limit: int, now: int, *, mine: str = "") -> Standing:
    live = [h for h in view.holders if h.until >= now]
    taken = {h.index for h in live}
    busy = {h.token for h in live if h.token and h.token != mine}
    # Slots numbered past the limit (held since a sync lowered it) still count against it.
    free = [i for i in range(limit) if i not in taken][: max(limit - len(live), 0)]
    return Standing(
        free=free,
        waiting=[e for e in view.line if e.position not in busy],
        busy_tokens=busy,
    )


def turns_away(rank: int, standing: Standing, limit: int) -> int:
    """How many times every slot must be taken and freed again before an entry of this rank
    (``len(standing.waiting)`` when it is beyond the page read) can have one."""
    return max(rank - len(standing.free), 0) // max(limit, 1)


class TicketState(StrEnum):
    """What became of a waiting message's place in one delivery."""

    OPEN = "open"  # not decided yet
    ADMITTED = "admitted"  # it got its slots
    WAITING = "waiting"  # back on the queue, in the same line
    MOVED = "moved"  # waiting in another limit's line now
    DUPLICATE = "duplicate"  # another copy has it, or has finished the work
    DONE = "done"  # admitted, its call made, and its entry left the line


@dataclass
class Ticket:
    """A waiting call's place: its entry in the line of ``key``, and all the limits it needs;
    ``state`` says what became of it in this delivery."""

    key: str
    position: str
    limit: int
    limits: list[Limit]
    call: Call
    state: TicketState = TicketState.OPEN
    views: dict[str, SlotView] = field(default_factory=dict)

    @classmethod
    def of(cls, call: Call) -> Ticket | None:
        """The ticket of a call that carries a place in a line; None for one that does not."""
        place = call.place
        if place is None:
            return None
        limits = [Limit(key, limit) for key, limit in place.limits or ()] or [Limit(place.key, place.limit)]
        return cls(place.key, place.position, place.limit, limits, call)


class Lines(Protocol):
    """What a ``Gate`` asks of the lines it queues its invocation's calls in (``Concurrency``)."""

    slot_store: SlotStore
    clock: Clock
    settings: Settings

    def position(self, base_ms: int | None, priority_ms: int) -> str: ...

    def join(self, limit: Limit, limits: list[Limit], call: Call, position: str) -> None: ...

    def move(self, ticket: Ticket, limit: Limit) -> None: ...

    def still_waiting(self, ticket: Ticket, ahead: list[str] | None = None, turns: int = 0) -> None: ...

    def wake(self, key: str, limit: int, view: SlotView | None = None) -> None: ...
