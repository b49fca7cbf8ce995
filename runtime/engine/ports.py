"""The narrow interfaces the engine runs on, and the ``Backend`` that carries one family's.

The storage ports (events, apps, runs, waiters, flow state, key claims, slots) are in
``stepline.engine.stores`` and re-exported here; the work queue, the dead-letter store, the timers
and the clock are below. Two adapter families implement them all: ``stepline.aws`` (DynamoDB
single table, SQS, EventBridge Scheduler) and ``stepline.local`` (one SQLite file).
``tests/contract`` holds the one suite both must pass. The engine never imports either family.

Rules every adapter keeps:
* Conditional writes report a lost race by returning False, never by raising.
* Time comes from the ``Clock`` passed in, never from ``time.time()``, so a manual clock can skip
  a year in a test.
* JSON values round-trip exactly (ints stay ints, nested objects keep their keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from stepline.engine.flow_records import FlowState, LineEntry, SlotHolder, SlotView
from stepline.engine.records import (
    AppRecord,
    CronSchedule,
    FunctionRecord,
    Memo,
    PendingOp,
    Run,
    RunState,
    RunStatus,
    SignalWait,
    StoredEvent,
    Waiter,
    WaiterKind,
    WaiterPage,
)
from stepline.engine.stores import (
    AppStore,
    EventStore,
    FlowStateStore,
    KeyClaims,
    RunEraser,
    RunStore,
    SignalStore,
    SlotStore,
    Store,
    WaiterStore,
)


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""


class StoreError(Exception):
    """A backend failed in a way the engine cannot resolve (throttled past retries, unreachable).
    The message is retried by the queue; it is never a user error."""


@dataclass
class QueueMessage:
    """A received message. ``handle`` acknowledges it; ``receive_count`` starts at 1."""

    handle: str
    body: dict[str, Any]
    receive_count: int = 1


@runtime_checkable
class WorkQueue(Protocol):
    # Longest delay ``send`` accepts; longer waits go through ``Timers`` (SQS caps at 900 s).
    max_delay_seconds: int

    def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        """Enqueue a JSON message, visible after ``delay_seconds`` (0..max_delay_seconds)."""

    def send_many(self, bodies: list[dict[str, Any]], delay_seconds: int = 0) -> None: ...

    def receive(self, max_messages: int, visibility_seconds: int) -> list[QueueMessage]:
        """Messages visible now, hidden for ``visibility_seconds`` after this call; they come
        back (``receive_count`` + 1) unless acknowledged."""

    def ack(self, handle: str) -> None: ...

    def retry_later(self, handle: str, delay_seconds: int) -> None:
        """Make a received message visible again after ``delay_seconds``."""


@dataclass(frozen=True)
class DeadReason:
    """Why a message is in the dead-letter store. ``error`` is what operators read; for a
    message the queue moved by itself (SQS's redrive policy: the executor crashed or timed out
    on every delivery) it says so, and ``dead_at`` is None when the queue does not tell."""

    error: str
    receive_count: int
    dead_at: int | None
    run_id: str | None = None


@dataclass
class DeadLetter:
    """One message in the dead-letter store. ``id`` is opaque (the SQS message id on AWS)."""

    id: str
    body: dict[str, Any]
    reason: DeadReason

    @property
    def run_id(self) -> str | None:
        return self.reason.run_id

    @property
    def dead_at(self) -> int | None:
        return self.reason.dead_at


@runtime_checkable
class DeadLetters(Protocol):
    """Poison messages (``stepline.engine.delivery``), kept until an operator redrives them.

    A port of its own on the ``Backend`` rather than more ``WorkQueue`` methods: the work queue
    is the executor's hot path with SQS's semantics, while this is an operator's store that is
    listed and emptied by id. On AWS it is the DLQ, which SQS also fills by itself (its redrive
    policy, for deliveries that crashed the executor): listing must show those messages too,
    with a reason made up for them.
    """

    def dead_letter(self, body: dict[str, Any], reason: DeadReason) -> None:
        """Keep ``body`` with ``reason``. The caller acknowledges the original afterwards, so a
        crash in between leaves the message on the work queue (and may keep it twice here)."""

    def list_dead(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, in no promised order. Listing leaves them in place."""

    def redrive(
        self,
        ids: list[str] | None = None,
        *,
        limit: int = 100,
        on_move: Callable[[DeadLetter], None] | None = None,
    ) -> int:
        """Put dead letters back on the work queue as new messages (``receive_count`` starts
        again at 1) and remove them from here: those named by ``ids``, or any when ``ids`` is
        None, at most ``limit``. ``on_move`` is called with each one just before it goes back,
        so the caller can make its run ready for it. Unknown ids are skipped. Returns how many
        were moved."""


@runtime_checkable
class Timers(Protocol):
    def schedule(self, name: str, fire_at_ms: int, body: dict[str, Any]) -> None:
        """At ``fire_at_ms`` put ``body`` on the work queue. Scheduling an existing name again
        replaces it. Names are at most 64 characters of ``[0-9A-Za-z_.-]``."""

    def cancel(self, name: str) -> None:
        """Remove a timer; no error if it does not exist (it may have fired)."""

    def schedule_cron(self, schedule: CronSchedule) -> None:
        """Put ``schedule.body`` on the queue at every fire time of the cron, in its zone, with
        ``"at": <fire time in ms>`` added to the body. Scheduling an existing name again
        replaces it; ``cancel(name)`` removes it. On AWS this is an EventBridge Scheduler cron
        schedule: its fixed Input carries ``"scheduled_time": "<aws.scheduler.scheduled-time>"``,
        which Scheduler replaces with the fire time (ISO 8601, UTC) instead of an ``at``."""

    def list_crons(self) -> list[str]:
        """Names of the cron schedules that exist (so a sync can remove the ones it no longer
        wants)."""

    def fire_due(self, now_ms: int) -> int:
        """Send every timer due at ``now_ms`` to the queue and remove it; return how many.
        Locally this is the timer driver. On AWS, EventBridge Scheduler fires timers itself;
        this exists for moto (which never fires schedules) and ``--backend moto``."""


@dataclass
class Backend:
    """One adapter family, wired: what the engine, the dev server and the handlers run on.

    What a family holds beyond the ports is typed on its own subclass (``LocalBackend`` in
    ``stepline.local``, ``AwsBackend`` in ``stepline.aws``), never read by the engine."""

    store: Store  # every storage port, on one object; services take the views below
    queue: WorkQueue
    timers: Timers
    dead_letters: DeadLetters
    name: str = ""
    # What ``close`` releases: the SQLite file, or the AWS clients and the payload store's pool.
    closer: Callable[[], None] | None = None
    # Where this process is the backend's only user (`stepline dev` on SQLite): at start, frees
    # at once what a killed predecessor held (leases, claims, slots, in-flight messages) instead
    # of after their timeouts. None where other processes share the backend (AWS).
    recover_after_restart: Callable[[], object] | None = None

    def close(self) -> None:
        if self.closer is not None:
            self.closer()

    # The storage ports one at a time, for wiring each service with only what it uses.
    @property
    def events(self) -> EventStore:
        return self.store

    @property
    def apps(self) -> AppStore:
        return self.store

    @property
    def runs(self) -> RunStore:
        return self.store

    @property
    def waiters(self) -> WaiterStore:
        return self.store

    @property
    def signals(self) -> SignalStore:
        return self.store

    @property
    def flow_state(self) -> FlowStateStore:
        return self.store

    @property
    def key_claims(self) -> KeyClaims:
        return self.store

    @property
    def slots(self) -> SlotStore:
        return self.store

    @property
    def eraser(self) -> RunEraser:
        return self.store


__all__ = [
    "AppRecord",
    "AppStore",
    "Backend",
    "CronSchedule",
    "Clock",
    "DeadLetter",
    "DeadLetters",
    "DeadReason",
    "EventStore",
    "FlowState",
    "FlowStateStore",
    "FunctionRecord",
    "KeyClaims",
    "LineEntry",
    "Memo",
    "PendingOp",
    "QueueMessage",
    "Run",
    "RunEraser",
    "RunState",
    "RunStatus",
    "RunStore",
    "SlotHolder",
    "SignalStore",
    "SignalWait",
    "SlotStore",
    "SlotView",
    "Store",
    "StoreError",
    "StoredEvent",
    "Timers",
    "Waiter",
    "WaiterKind",
    "WaiterPage",
    "WaiterStore",
    "WorkQueue",
]
