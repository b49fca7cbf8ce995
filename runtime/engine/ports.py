"""The narrow interfaces the engine runs on.

Two adapter families implement them: ``stepline.aws`` (DynamoDB single table, SQS, EventBridge
Scheduler) and ``stepline.local`` (one SQLite file). ``tests/contract`` holds the one suite both
must pass. The engine never imports either family.

Rules every adapter keeps:
* Conditional writes report a lost race by returning False, never by raising.
* Time comes from the ``Clock`` passed in, never from ``time.time()``, so a manual clock can skip
  a year in a test.
* JSON values round-trip exactly (ints stay ints, nested objects keep their keys).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from stepline.engine.records import (
    AppRecord,
    CronSchedule,
    FlowState,
    FunctionRecord,
    LineEntry,
    Memo,
    PendingOp,
    Run,
    RunState,
    RunStatus,
    SlotHolder,
    SlotView,
    StoredEvent,
    Waiter,
    WaiterKind,
    WaiterPage,
)


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""


class StoreError(Exception):
    """A backend failed in a way the engine cannot resolve (throttled past retries, unreachable).
    The message is retried by the queue; it is never a user error."""


@runtime_checkable
class RunStore(Protocol):
    # -- events ------------------------------------------------------------------------------
    def save_events(self, events: list[StoredEvent], now_ms: int) -> list[StoredEvent]:
        """Durably store events, deduplicating by ``event.id`` within 24 h.

        Returns, per input event and in order, the event as stored: the input itself when it
        is new, or the earlier stored event with the same ``id`` when it is a duplicate (its
        ``internal_id`` differs from the input's). Callers detect duplicates by comparing
        ``internal_id``. Once this returns, every event is durable.
        """

    def get_event(self, internal_id: str) -> StoredEvent | None: ...

    def list_events(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        name: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> tuple[list[StoredEvent], str | None]:
        """Newest first. ``cursor`` is the opaque value returned by the previous page; the
        second element of the result is the next page's cursor or None at the end."""

    # -- apps and functions ------------------------------------------------------------------
    def put_app(self, app: AppRecord, functions: list[FunctionRecord]) -> None:
        """Replace the app's whole function set: functions of this app that are not in
        ``functions`` are removed."""

    def get_app(self, app_id: str) -> AppRecord | None: ...

    def list_apps(self) -> list[AppRecord]: ...

    def get_function(self, fn_id: str) -> FunctionRecord | None: ...

    def list_functions(self) -> list[FunctionRecord]: ...

    def functions_for_event(self, event_name: str) -> list[FunctionRecord]:
        """Functions with an event trigger on exactly this name (``FunctionRecord.event_triggers``).
        Expressions are evaluated by the engine, not here."""

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, run: Run) -> bool:
        """Insert a new run. False if a run with this id exists (the write is skipped). Every
        ``Run`` field round-trips, ``origin`` included (None stays None)."""

    def load_run(self, run_id: str) -> RunState | None:
        """The run with its memos and pending ops, in ONE backend read."""

    def get_run(self, run_id: str) -> Run | None: ...

    def runs_for_event(self, internal_event_id: str) -> list[Run]:
        """Runs whose ``event_ids`` include this event, oldest first."""

    def update_run(
        self,
        run_id: str,
        changes: dict[str, Any],
        *,
        expect_status: set[RunStatus] | None = None,
        expect_lease_owner: str | None = None,
        expect_wake_at: int | None = None,
    ) -> bool:
        """Set the named ``Run`` fields. With ``expect_status`` the write happens only while the
        run's status is one of those; with ``expect_lease_owner`` only while that owner holds
        the lease; with ``expect_wake_at`` only while ``wake_at`` still has that value. False
        when a condition fails or the run does not exist. Setting a terminal status also clears
        ``wake_at`` (an ended run is never stalled), whatever ``changes`` say of it."""

    def acquire_lease(self, run_id: str, owner: str, until_ms: int, now_ms: int) -> bool:
        """Take the run's lease when it is free, expired (``lease_until < now_ms``) or already
        held by ``owner``; also moves a QUEUED run to RUNNING and sets ``started_at`` once.
        False when another owner holds a live lease, or the run is terminal or missing."""

    def release_lease(self, run_id: str, owner: str) -> None:
        """Drop the lease if ``owner`` still holds it; otherwise do nothing."""

    def stalled_runs(
        self, before_ms: int, now_ms: int, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Run], str | None]:
        """Runs that have not ended, with ``wake_at < before_ms``, whose lease is free or
        expired (``lease_until < now_ms``): the sweeper's candidates. Runs whose ``wake_at`` is
        None are never listed. A page holds at most ``limit`` runs in no promised order; the
        second element is the next page's cursor, None at the end. As in ``list_runs``, a page
        may be short or empty and still carry a cursor (backends that filter after reading an
        index); a run whose ``wake_at`` moves past ``before_ms`` meanwhile is not listed again.
        Read from an index, never by scanning every run."""

    # -- steps -------------------------------------------------------------------------------
    def commit_memo(self, run_id: str, memo: Memo) -> bool:
        """Write a step result once. False if that step already has a memo (the new value is
        discarded: the first write wins). ``memo.detail`` is stored with it and read back as
        given ({} when empty)."""

    def add_pending(self, run_id: str, op: PendingOp) -> bool:
        """Record an op the run waits on. False if an op or memo with that step id exists."""

    def remove_pending(self, run_id: str, step_id: str) -> None: ...

    def get_pending(self, run_id: str, step_id: str) -> PendingOp | None:
        """One pending op, or None when there is none (never recorded, or removed). A point read
        (one GetItem on DynamoDB), so resuming a step can keep what its op recorded (name, kind,
        start, input) in the memo without reading the whole run."""

    def claim_pending(self, run_id: str, step_id: str, owner: str, until_ms: int, now_ms: int) -> bool:
        """Lease one pending op (a planned step run by its own job, concurrently with the run's
        other branches): taken when the op exists and is unclaimed, its claim expired, or
        ``owner`` holds it. False otherwise (no such op: it was memoized and removed)."""

    # -- listing runs ----------------------------------------------------------------------------
    def list_runs(
        self,
        fn_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        status: RunStatus | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
    ) -> tuple[list[Run], str | None]:
        """A function's runs, newest first (``created_at``), bounds exclusive, with an opaque
        cursor as in ``list_events``. A status filter may yield short or empty pages with a
        cursor; the listing ends when the cursor is None."""

    # -- waiters -----------------------------------------------------------------------------
    def add_waiter(self, waiter: Waiter) -> bool:
        """Store a waiter in its bucket: the one of its ``match_key`` on its event name, or the
        event name's unkeyed bucket when it has none. False if one with the same (event_name,
        run_id, step_id) exists. A keyed waiter's ``match_field`` is recorded among the event
        name's fields (``waiter_fields``) no later than the waiter itself."""

    def waiter_fields(self, event_name: str) -> list[str]:
        """Every ``match_field`` a keyed waiter on this event name has had: what an incoming
        event computes its keys from. Fields are kept after their waiters go (they are few)."""

    def waiters_for_event(
        self,
        event_name: str,
        now_ms: int,
        match_key: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> WaiterPage:
        """Unexpired waiters (``expires_at > now_ms``) in one bucket of this event name: those
        with ``match_key``, or the unkeyed ones when it is None. At most ``limit`` per page (a
        page may hold fewer and still continue); ``after`` is the previous page's. The pages of
        a bucket hold each of its waiters once; each page is oldest first."""

    def remove_waiter(self, event_name: str, run_id: str, step_id: str, match_key: str | None = None) -> bool:
        """Delete a waiter from the bucket of ``match_key``; True only for the one call that
        actually deleted it. Two events racing for one waiter both call this, and only the
        winner resumes the run."""

    # -- flow control: versioned state (throttle, rate limit, debounce, batching) --------------
    def get_flow_state(self, key: str, now_ms: int) -> FlowState | None:
        """The state under ``key``; None when there is none or it expired
        (``expires_at <= now_ms``). Strongly consistent."""

    def put_flow_state(
        self,
        key: str,
        data: dict[str, Any],
        *,
        expect_version: int | None,
        expires_at: int,
        now_ms: int,
    ) -> bool:
        """Compare-and-set. With ``expect_version=None`` the write happens only when there is no
        live state (none, or expired at ``now_ms``); otherwise only while the stored version
        equals ``expect_version``, and the state then has version ``expect_version + 1``. Every
        successful write raises the version (an expired state's version included), so a stale
        reader can never match. False on a lost race."""

    def delete_flow_state(self, key: str, expect_version: int) -> bool:
        """Delete the state while its version equals ``expect_version``; True only for the
        caller that deleted it."""

    # -- flow control: key claims (function idempotency, singleton) -----------------------------
    def claim_key(
        self,
        key: str,
        holder: str,
        expires_at: int,
        now_ms: int,
        *,
        replacing: str | None = None,
    ) -> str:
        """Take ``key`` for ``holder`` until ``expires_at``. Taken when unclaimed, expired
        (``expires_at <= now_ms``), already held by ``holder``, or held by ``replacing`` when
        that is given. Returns who holds the key after the call: ``holder`` when it was taken,
        otherwise the live holder that kept it. One conditional write."""

    def release_key(self, key: str, holder: str) -> bool:
        """Drop the claim if ``holder`` still holds it. True only for the call that dropped it."""

    # -- flow control: concurrency slots and their waiting line ---------------------------------
    def slot_view(self, key: str, line_limit: int) -> SlotView:
        """Every slot item of ``key`` and the first ``line_limit`` line entries in position
        order: one read where the backend allows (one Query on DynamoDB). Strongly consistent."""

    def take_slot(self, key: str, index: int, owner: str, until_ms: int, now_ms: int, token: str = "") -> bool:
        """Hold slot ``index`` of ``key`` until ``until_ms``: taken when free, expired
        (``until < now_ms``) or already held by ``owner`` (a renewal). ``token`` is stored with
        the holder. Of racing owners exactly one wins a free slot. False otherwise."""

    def release_slot(self, key: str, index: int, owner: str) -> bool:
        """Free slot ``index`` if ``owner`` holds it; True only for the call that freed it."""

    def join_line(self, key: str, entry: LineEntry) -> bool:
        """Add a waiting entry; False if one with this position exists (create-only)."""

    def leave_line(self, key: str, position: str) -> bool:
        """Remove a line entry; True only for the call that removed it."""

    def line_entry(self, key: str, position: str) -> LineEntry | None:
        """One line entry by position (for an entry beyond the head ``slot_view`` returned)."""


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
        schedule (whose message carries no ``at``: the receiver takes the current minute)."""

    def list_crons(self) -> list[str]:
        """Names of the cron schedules that exist (so a sync can remove the ones it no longer
        wants)."""

    def fire_due(self, now_ms: int) -> int:
        """Send every timer due at ``now_ms`` to the queue and remove it; return how many.
        Locally this is the timer driver. On AWS, EventBridge Scheduler fires timers itself;
        this exists for moto (which never fires schedules) and ``--backend moto``."""


@dataclass
class Backend:
    """One adapter family, wired: what the engine, the dev server and the handlers run on."""

    store: RunStore
    queue: WorkQueue
    timers: Timers
    dead_letters: DeadLetters
    name: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        closer = self.extras.get("close")
        if closer:
            closer()


__all__ = [
    "AppRecord",
    "Backend",
    "CronSchedule",
    "Clock",
    "DeadLetter",
    "DeadLetters",
    "DeadReason",
    "FlowState",
    "FunctionRecord",
    "LineEntry",
    "Memo",
    "PendingOp",
    "QueueMessage",
    "Run",
    "RunState",
    "RunStatus",
    "RunStore",
    "SlotHolder",
    "SlotView",
    "StoreError",
    "StoredEvent",
    "Timers",
    "Waiter",
    "WaiterKind",
    "WaiterPage",
    "WorkQueue",
]
