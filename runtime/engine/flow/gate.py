"""The concurrency slots of one executor invocation (``Gate``): taken before a call, kept between
calls unless work waits for them, renewed when their lease runs short, freed (waking the line)
when the invocation ends. See ``stepline.engine.flow.concurrency`` for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepline.engine.flow.lines import Limit, Lines, Ticket, TicketState, line_page, quietly, slot_lease_ms, standing_of
from stepline.engine.flow_records import SlotView
from stepline.engine.messages import Call

_TAKE_ATTEMPTS = 3


@dataclass
class _Held:
    key: str
    limit: int
    index: int
    token: str = ""


class Gate:
    """The concurrency slots of one executor invocation."""

    def __init__(
        self,
        concurrency: Lines,
        limits: list[Limit],
        owner: str,
        first_base_ms: int | None,
        priority_ms: int,
        ticket: Ticket | None,
    ) -> None:
        self.c = concurrency
        self.limits = limits
        self.owner = owner
        self.priority_ms = priority_ms
        self.ticket = ticket
        self._base = first_base_ms  # a run's first call queues by its creation time
        self._held: list[_Held] = []
        self._until = 0

    def admit(self, call: Call) -> bool:
        """Before a call: True when it may go ahead (its slots are held). False when it was
        queued behind a limit instead: the invocation stops, the work is not lost."""
        if self._held:
            return self._keep(call)
        return self._acquire(call)

    def release(self, *, keep_place: bool = False) -> None:
        """After the last call: free the slots and wake what waits for them. The admitted
        message's entry goes first, so no copy of it can be admitted once the slot is free
        (unless ``keep_place``: the message will be delivered again and needs it)."""
        if self.ticket is not None and self.ticket.state == TicketState.ADMITTED and not keep_place:
            # Should this fail, the entry is still there with its slot free: a copy of it (its
            # own, or a wake) is admitted again, and a repeated call is harmless.
            quietly(self.c.slot_store.leave_line, self.ticket.key, self.ticket.position)
            self.ticket.state = TicketState.DONE
        self._free()

    # -- internals ---------------------------------------------------------------------------
    def _acquire(self, call: Call) -> bool:
        now = self.c.clock.now_ms()
        until = now + slot_lease_ms(self.c.settings)
        ticket = self.ticket if self.ticket is not None and self.ticket.state == TicketState.OPEN else None
        position = ticket.position if ticket else self.c.position(self._base, self.priority_ms)
        for limit in self.limits:
            in_line = ticket is not None and limit.key == ticket.key
            cached = ticket.views.pop(limit.key, None) if ticket else None
            index = self._take(limit, position, in_line=in_line, until=until, now=now, view=cached)
            if index is None:
                self._free()
                if ticket is None:
                    self.c.join(limit, self.limits, call, position)
                elif in_line:
                    self.c.still_waiting(ticket)
                else:
                    self.c.move(ticket, limit)
                return False
            self._held.append(_Held(limit.key, limit.limit, index, position if in_line else ""))
        self._until = until
        if ticket is not None and any(h.key == ticket.key for h in self._held):
            ticket.state = TicketState.ADMITTED
        return True

    def _take(
        self, limit: Limit, position: str, *, in_line: bool, until: int, now: int, view: SlotView | None
    ) -> int | None:
        token = position if in_line else ""
        for _ in range(_TAKE_ATTEMPTS):
            view = view or self.c.slot_store.slot_view(limit.key, line_page(limit.limit))
            standing = standing_of(view, limit.limit, now, mine=token)
            rank = standing.rank(position, in_line=in_line)
            if rank >= len(standing.free):
                return None
            index = standing.free[rank]
            try:
                taken = self.c.slot_store.take_slot(limit.key, index, self.owner, until, now, token)
            except Exception:
                # It may have applied, its answer lost: give it back rather than leave a slot
                # held by nobody until its lease ends.
                quietly(self.c.slot_store.release_slot, limit.key, index, self.owner)
                raise
            if taken:
                return index
            view = None  # lost the slot to a racer: read again
        return None

    def _free(self) -> None:
        held, self._held = self._held, []
        for h in held:
            # Tried again once when refused; a slot that still could not be freed expires.
            quietly(self.c.slot_store.release_slot, h.key, h.index, self.owner, attempts=2)
        for h in held:
            self.c.wake(h.key, h.limit)

    def _keep(self, call: Call) -> bool:
        """Between two calls: keep the slots unless work waits for them; renew them when their
        lease runs short."""
        now = self.c.clock.now_ms()
        for h in self._held:
            standing = standing_of(self.c.slot_store.slot_view(h.key, line_page(h.limit)), h.limit, now)
            if len(standing.waiting) > len(standing.free):
                # The next call queues first, then the slots go: should queueing fail, this
                # message is delivered again with its place kept, and nothing is lost.
                limit = next(lim for lim in self.limits if lim.key == h.key)
                self.c.join(limit, self.limits, call, self.c.position(None, self.priority_ms))
                self.release()
                self.ticket = None
                return False
        if self._until - now <= self.c.settings.step_timeout_s * 1000:
            until = now + slot_lease_ms(self.c.settings)
            for h in self._held:
                self.c.slot_store.take_slot(h.key, h.index, self.owner, until, now, h.token)
            self._until = until
        return True
