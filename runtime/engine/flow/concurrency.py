"""`concurrency` [{limit, key, scope}] (at most two): at most ``limit`` steps of a key execute
at once. It limits steps, not runs: a run holds a slot only while the executor is calling the
app for it, so sleeping and waiting runs hold nothing.

Per key the store keeps counted slots and a line of the work waiting for one, ordered by
position = enqueue time minus the run's priority (FIFO per key, priority jumps the line). A call
goes ahead when, under every limit, its rank among the work waiting there is below the number of
free slots. Otherwise it waits in the line of the limit that stopped it, and its message goes
back on the queue with a delay, longer the further back it waits: never dropped. Whoever frees
a slot wakes the head of that line at once, so the delay is only a safety net. A call keeps its
position when a second limit stops it after the first, so it is not pushed to the back of the
other line.

The entry of a waiting message travels in the message (``Call.place``, a ``messages.LinePlace``).
Copies of it (the wake, the safety net, a redelivery) resolve through the store: a copy whose
entry is gone is a duplicate and stops. An entry is removed only once the copy that was
admitted has finished, so a crash never loses the work.

Nothing is held by someone who is gone for longer than a bound, whichever write fails and
wherever an executor dies:
* a slot is a lease of 1.5 step timeouts (``slot_lease_ms``), renewed between calls: a dead
  holder's slot is free once it ends, and admission counts only live leases. A clean-up write
  that fails (freeing a slot, leaving the line) is logged, not raised: what it leaves expires
  or is woken, and the run's own release still happens. A take whose answer was lost is given
  back at once.
* an entry always has a copy coming back for it: the message's own copy waits on while
  another copy holds a slot for the entry (that holder may die), and only extra copies (wakes)
  stop. Should every copy be gone all the same (a message lost with its queue write, a crash
  between joining and queueing), the line itself holds the message: a wake is a copy made
  from the entry. Entries that could take a free slot and have not, one safety-net delay after
  a message behind them noted it (``ahead``), are woken by that message; the sweeper wakes
  the line of a stalled run.
* the same call waits in a line once: a joiner that finds it waiting already drops its entry.

Between two calls of one invocation (inline continuation) the holder keeps its slots unless
work is waiting for one; then it yields: it queues itself at the back, then frees them and
wakes the head. A function without ``concurrency`` costs nothing here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from stepline.engine.flow.gate import Gate
from stepline.engine.flow.lines import (
    SAFETY_DELAYS_MS,
    Limit,
    Ticket,
    TicketState,
    entry_call,
    limits_for,
    line_page,
    quietly,
    slot_lease_ms,
    standing_of,
    turns_away,
)
from stepline.engine.flow.priority import factor_ms
from stepline.engine.flow_records import LineEntry, SlotView
from stepline.engine.ids import IdGenerator
from stepline.engine.messages import Call, LinePlace, Message
from stepline.engine.ports import Clock, FunctionRecord, RunState, RunStore, SlotStore, WorkQueue
from stepline.engine.scheduling import Waker
from stepline.settings import Settings
from stepline.telemetry import NOOP, FlowLimit, Telemetry

# Names other modules read here: the rules' vocabulary lives in flow.lines, the slots of one
# invocation in flow.gate.
__all__ = ["SAFETY_DELAYS_MS", "Concurrency", "Gate", "Limit", "Ticket", "limits_for", "slot_lease_ms"]

log = logging.getLogger(__name__)

# A head this process woke is not woken again by it for this long (its wake is on the way).
_REWAKE_MS = 500
# Entries ahead a waiting message notes, to find at its next delivery those that never came.
_AHEAD_KEPT = 8


class Concurrency:
    def __init__(
        self,
        slots: SlotStore,
        runs: RunStore,
        queue: WorkQueue,
        waker: Waker,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        *,
        telemetry: Telemetry = NOOP,
    ) -> None:
        self.slot_store = slots
        self.runs = runs  # read only for a waited call's span and metric (its function, its trace)
        self.queue = queue
        self.waker = waker
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self._local = threading.local()
        self._woken: dict[tuple[str, str], int] = {}
        self._woken_lock = threading.Lock()
        self.telemetry = telemetry  # how long a call waited in a line

    # -- one delivery of a call message ------------------------------------------------------
    @contextmanager
    def message(self, call: Call) -> Iterator[Ticket | None]:
        """The scope of one call message. A waiting message's entry is removed when this
        delivery ends normally without having been admitted or queued again: its work is done
        or obsolete (the run ended, the step was settled). An exception keeps it: the queue
        delivers the message again."""
        ticket = Ticket.of(call)
        self._local.ticket = ticket
        try:
            yield ticket
        finally:
            self._local.ticket = None
        if ticket is not None and ticket.state == TicketState.OPEN:
            if self.slot_store.leave_line(ticket.key, ticket.position):
                self.wake(ticket.key, ticket.limit)

    def may_run(self, ticket: Ticket | None) -> bool:
        """Before the run is touched: may this delivery go on? A waiting message still behind
        a limit goes back on the queue here, at the cost of one read per limit."""
        if ticket is None:
            return True
        now = self.clock.now_ms()
        view = self.slot_store.slot_view(ticket.key, line_page(ticket.limit))
        ticket.views[ticket.key] = view
        standing = standing_of(view, ticket.limit, now)
        if not self._entry_exists(ticket, view):
            ticket.state = TicketState.DUPLICATE  # another copy has finished the work
            return False
        if ticket.position in standing.busy_tokens:
            # Another copy holds a slot for this entry: a live one, or one that died and whose
            # slot runs out with its lease. The message's own copy waits on (a woken one
            # stops), so the entry never ends up with no copy to come back for it.
            self.still_waiting(ticket)
            return False
        if not standing.admits(ticket.position, in_line=True):
            # The entries ahead that a free slot is theirs to take. Those that had it already
            # a safety-net delay ago, when this copy last came by, are not coming for it: their
            # wake was lost, or no copy of theirs is left. They are woken from the line.
            ahead = standing.waiting[: min(len(standing.free), _AHEAD_KEPT)]
            noted = ticket.call.place.ahead if ticket.call.place else ()
            stalled = [e for e in ahead if e.position in noted]
            rank = standing.rank(ticket.position, in_line=True)
            self.still_waiting(
                ticket, ahead=[e.position for e in ahead], turns=turns_away(rank, standing, ticket.limit)
            )
            if stalled and ticket.state == TicketState.WAITING:
                self._send_wakes(ticket.key, stalled, now)
            return False
        for limit in ticket.limits:
            if limit.key == ticket.key:
                continue
            other = self.slot_store.slot_view(limit.key, line_page(limit.limit))
            ticket.views[limit.key] = other
            if not standing_of(other, limit.limit, now).admits(ticket.position, in_line=False):
                self.move(ticket, limit)
                return False
        entry = next((e for e in view.line if e.position == ticket.position), None)
        if entry is not None:
            self.telemetry.flow_wait(self.runs, ticket.call.run_id, FlowLimit.CONCURRENCY, entry.created_at, now)
        return True

    # -- around the executor's calls ---------------------------------------------------------
    @contextmanager
    def slots(self, fn: FunctionRecord | None, state: RunState, owner: str) -> Iterator[Gate | None]:
        """The slots of one executor invocation, freed when it ends. If it ends in an exception
        the message is delivered again, so a waiting message keeps its place in the line."""
        gate = self.gate(fn, state, owner)
        if gate is None:
            yield None
            return
        try:
            yield gate
        except BaseException:
            gate.release(keep_place=True)
            raise
        gate.release()

    def gate(self, fn: FunctionRecord | None, state: RunState, owner: str) -> Gate | None:
        """The slots one executor invocation takes around its calls; None when the function
        has no concurrency limit."""
        if fn is None or not fn.config.get("concurrency"):
            return None
        event = state.run.events[0] if state.run.events else {}
        limits = limits_for(fn, event)
        if not limits:
            return None
        ticket = getattr(self._local, "ticket", None)
        if ticket is not None and ticket.state != TicketState.OPEN:
            ticket = None
        first = not state.memos and not state.pending
        base = state.run.created_at if first else None
        return Gate(self, limits, owner, base, factor_ms(fn.config, event), ticket)

    # -- the line ----------------------------------------------------------------------------
    def join(self, limit: Limit, limits: list[Limit], call: Call, position: str) -> None:
        """Queue ``call`` behind ``limit``: an entry in its line, and the message back
        on the queue. Read again after joining: a slot freed between the first read and the
        join woke nobody, so this call wakes itself.

        The same call may wait in the line already (a duplicate message, a retry after a busy
        run, the sweeper's discovery): one entry is enough. The joiner holds the run (or the
        step), so the entry that waits runs after it and sees all it wrote. Of the entries
        seen, the one first in line stays; should two joiners race, both keep the same one."""
        now = self.clock.now_ms()
        waiting = self._waiting_call(call, limit, limits, position)
        try:
            self.slot_store.join_line(limit.key, LineEntry(position, waiting.to_body(), now))
            standing = standing_of(self.slot_store.slot_view(limit.key, line_page(limit.limit)), limit.limit, now)
            work = waiting.work()
            same = [e.position for e in standing.waiting if e.position != position and _work_of(e) == work]
            if same and min(same) < position:
                self.slot_store.leave_line(limit.key, position)
                return
            for other in same:
                quietly(self.slot_store.leave_line, limit.key, other)
            rank = standing.rank(position, in_line=True)
            if rank < len(standing.free):
                self.queue.send(waiting.to_body())
            else:
                self.requeue(waiting, turns=turns_away(rank, standing, limit.limit))
        except Exception:
            # The caller's message comes back and joins again, at a position of its own: this
            # entry would be one more for the same work.
            quietly(self.slot_store.leave_line, limit.key, position)
            raise

    def move(self, ticket: Ticket, limit: Limit) -> None:
        """The waiting message may have its slot under its own line's limit but not under
        ``limit``: it waits in that line now, at the same position. The new entry is written
        before the old one goes, so a crash in between leaves the message findable."""
        now = self.clock.now_ms()
        waiting = self._waiting_call(ticket.call, limit, ticket.limits, ticket.position)
        self.slot_store.join_line(limit.key, LineEntry(ticket.position, waiting.to_body(), now))
        self.requeue(waiting)
        if self.slot_store.leave_line(ticket.key, ticket.position):
            self.wake(ticket.key, ticket.limit)
        ticket.state = TicketState.MOVED

    def still_waiting(self, ticket: Ticket, ahead: list[str] | None = None, turns: int = 0) -> None:
        """Back on the queue with the safety-net delay (see ``requeue``); ``ahead``: the
        positions of the entries ahead that could have taken a free slot, for the next
        delivery to check."""
        if ticket.call.place is not None and ticket.call.place.woken:
            # A wake that lost its slot to a race: the message's own safety net goes on.
            ticket.state = TicketState.DUPLICATE
            return
        self.requeue(ticket.call, ahead, turns)
        ticket.state = TicketState.WAITING

    def requeue(self, call: Call, ahead: list[str] | None = None, turns: int = 0) -> None:
        """The safety net: the message comes back after a delay that grows with each time it
        came back, and with ``turns``, how many times the slots must all change hands before
        it is at the head (a wake reaches it then; its own return matters only if none does)."""
        place = call.place
        if place is None:
            raise ValueError(f"run {call.run_id}: only a call waiting in a line comes back for its place")
        # Its own copy, not a wake; it notes only what it saw ahead this time.
        waits = place.waits
        again = replace(place, waits=waits + 1, woken=False, ahead=tuple(ahead or ()))
        self.waker.after(replace(call, place=again), SAFETY_DELAYS_MS[min(waits + turns, len(SAFETY_DELAYS_MS) - 1)])

    def wake(self, key: str, limit: int, view: SlotView | None = None) -> None:
        """Send the head of the line as many wakes as there are free slots (``view``: the key
        as just read, if it was). Slots freed in quick succession would wake the same head
        again: an entry this process woke moments ago is skipped (another process may still
        wake it; the copy is then a duplicate).

        A wake is a copy of the entry's message made from the line itself, so it also brings
        back work whose own copy is gone. It only hastens what the safety net does: a wake
        that fails is logged, not raised."""
        now = self.clock.now_ms()
        try:
            view = view or self.slot_store.slot_view(key, line_page(limit))
        except Exception:  # noqa: BLE001 - the safety net of the waiting messages wakes them
            log.warning("could not read the line of %s to wake it", key, exc_info=True)
            return
        standing = standing_of(view, limit, now)
        self._send_wakes(key, standing.waiting[: len(standing.free)], now)

    def _send_wakes(self, key: str, entries: list[LineEntry], now: int) -> None:
        """A copy of each entry's message, marked woken; never raises."""
        with self._woken_lock:
            self._woken = {k: t for k, t in self._woken.items() if now - t < _REWAKE_MS}
            entries = [e for e in entries if (key, e.position) not in self._woken]
            self._woken.update({(key, e.position): now for e in entries})
        wakes = [wake for wake in map(_wake_of, entries) if wake is not None]
        if wakes:
            try:
                self.queue.send_many(wakes)
            except Exception:  # noqa: BLE001
                log.warning("could not wake %d entries of %s", len(entries), key, exc_info=True)

    def abandon(self, message: Message) -> None:
        """A waiting message that will not be delivered again (it was dead-lettered): its place
        in line goes, so the work behind it moves up."""
        ticket = Ticket.of(message) if isinstance(message, Call) else None
        if ticket is not None and self.slot_store.leave_line(ticket.key, ticket.position):
            self.wake(ticket.key, ticket.limit)

    def position(self, base_ms: int | None, priority_ms: int) -> str:
        base = self.clock.now_ms() if base_ms is None else base_ms
        return f"{max(base - priority_ms, 0):015d}.{self.ids.new()}"

    def _entry_exists(self, ticket: Ticket, view: SlotView) -> bool:
        if any(e.position == ticket.position for e in view.line):
            return True
        if len(view.line) < line_page(ticket.limit):
            return False  # the whole line was read
        return self.slot_store.line_entry(ticket.key, ticket.position) is not None

    @staticmethod
    def _waiting_call(call: Call, limit: Limit, limits: list[Limit], position: str) -> Call:
        place = LinePlace(
            key=limit.key,
            position=position,
            limit=limit.limit,
            limits=tuple((lim.key, lim.limit) for lim in limits),
        )
        return replace(call.work(), place=place)


def _work_of(entry: LineEntry) -> Call | None:
    call = entry_call(entry)
    return call.work() if call is not None else None


def _wake_of(entry: LineEntry) -> dict[str, object] | None:
    """The body of a wake: a copy of the waiting call made from its line entry, marked woken."""
    call = entry_call(entry)
    if call is None or call.place is None:
        return None
    return replace(call, place=replace(call.place, woken=True)).to_body()
