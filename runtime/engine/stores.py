"""The storage ports: one narrow protocol per concern, so each engine service names the part of
the store it uses (``Ingest`` needs events and apps; ``Waits`` needs waiters and runs).

Each adapter family implements them all on one object (``SqliteStore``, ``DynamoStore``), which a
``Backend`` carries as ``store`` (typed ``Store``, every port at once) and hands out through
typed views (``backend.events``, ``backend.runs``, ...). ``tests/contract`` is the one suite both
families pass; its modules are named after these ports.

Rules every implementation keeps:
* Conditional writes report a lost race by returning False, never by raising; failures the
  engine cannot resolve raise ``StoreError``.
* Times are arguments (``now_ms``), never read from the system clock.
* JSON values round-trip exactly (ints stay ints, nested objects keep their keys).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from stepline.engine.flow_records import FlowState, LineEntry, SlotView
from stepline.engine.records import (
    AppRecord,
    Erased,
    FunctionRecord,
    Memo,
    PendingOp,
    Run,
    RunState,
    RunStatus,
    SignalWait,
    StoredEvent,
    Waiter,
    WaiterPage,
)


@runtime_checkable
class EventStore(Protocol):
    """Events as received, deduplicated by ``id`` (the Event API, crons, invokes, run ends)."""

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

    def recent_events(self, name: str, since_ms: int, until_ms: int, *, limit: int) -> list[StoredEvent]:
        """Events of exactly this name received in ``[since_ms, until_ms]``, newest first, at
        most ``limit`` (a wait's look-back, ``stepline.engine.lookback``). Read from an index by
        name and time: the cost grows with this name's events in the window, never with other
        names'. Strongly consistent: an event whose ``save_events`` returned is listed."""


@runtime_checkable
class AppStore(Protocol):
    """Synced apps and their functions (sync, and every reader of a function's config)."""

    def put_app(self, app: AppRecord, functions: list[FunctionRecord]) -> None:
        """Replace the app's whole function set: functions of this app that are not in
        ``functions`` are removed."""

    def get_app(self, app_id: str) -> AppRecord | None: ...

    def delete_app(self, app_id: str) -> None:
        """Remove the app and its functions (with their triggers); functions that moved to
        another app since stay with it. Deleting an unknown app does nothing."""

    def list_apps(self) -> list[AppRecord]: ...

    def get_function(self, fn_id: str) -> FunctionRecord | None: ...

    def list_functions(self) -> list[FunctionRecord]: ...

    def functions_for_event(self, event_name: str) -> list[FunctionRecord]:
        """Functions with an event trigger on exactly this name (``FunctionRecord.event_triggers``).
        Expressions are evaluated by the engine, not here."""


@runtime_checkable
class RunStore(Protocol):
    """Runs with their memos and pending ops, the lease on a run and the claims on its planned
    steps (starting, executing, resuming, cancelling, sweeping and listing runs)."""

    def create_run(self, run: Run) -> bool:
        """Insert a new run. False if a run with this id exists (the write is skipped). Every
        ``Run`` field round-trips, ``origin`` included (None stays None)."""

    def load_run(self, run_id: str, *, lease_owner: str | None = None, claimed: str | None = None) -> RunState | None:
        """The run with its memos and pending ops, in ONE backend read; by the ``lease_owner`` that just
        took it or the job that ``claimed`` a planned step, maybe from the adapter's copy (``aws.run_cache``)."""

    def forget_run(self, run_id: str) -> None:
        """Any copy of the run is out of date (written elsewhere): the next load reads it whole."""

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

    def acquire_lease(self, run_id: str, owner: str, until_ms: int, now_ms: int) -> int | None:
        """Take the run's lease when it is free, expired (``lease_until < now_ms``) or already
        held by ``owner``; moves a QUEUED run to RUNNING, sets ``started_at`` once. Returns the
        run's count of takes, renewals included; None when refused (held, ended or missing)."""

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
        """One pending op, or None (never recorded, or removed): a point read (one GetItem on
        DynamoDB), so a resume keeps what its op recorded (name, kind, start, input) in the memo."""

    def claim_pending(self, run_id: str, step_id: str, owner: str, until_ms: int, now_ms: int) -> bool:
        """Lease one pending op (a planned step run by its own job, concurrently with the run's
        other branches): taken when the op exists and is unclaimed, its claim expired, or
        ``owner`` holds it. False otherwise (no such op: it was memoized and removed)."""

    # -- listing -----------------------------------------------------------------------------
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


@runtime_checkable
class WaiterStore(Protocol):
    """Runs waiting for an event by name: ``step.wait_for_event`` and ``cancel`` rules."""

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


@runtime_checkable
class SignalStore(Protocol):
    """Runs waiting for a signal by name (``step.waitForSignal``): one live wait per signal, which
    ``POST /v1/signals`` resumes (``stepline.engine.signals``)."""

    def put_signal_wait(self, wait: SignalWait, now_ms: int, *, replace: bool = False) -> SignalWait:
        """Make ``wait`` the signal's wait: written when the signal has no live wait (none, or
        one expired: ``expires_at <= now_ms``), when the live one is the same run's same step (a
        re-report: its first times are kept), or with ``replace``. Returns the signal's wait after
        the call: the one written, or the live one that kept the signal. One conditional write;
        of racing callers without ``replace``, one wins."""

    def get_signal_wait(self, signal: str, now_ms: int) -> SignalWait | None:
        """The signal's live wait (``expires_at > now_ms``), or None. Strongly consistent."""

    def remove_signal_wait(self, signal: str, run_id: str, step_id: str) -> bool:
        """Delete the signal's wait while it is this run's step's (a replacement is left alone).
        True only for the call that deleted it."""


@runtime_checkable
class FlowStateStore(Protocol):
    """Versioned compare-and-set state under a key: throttle, rate limit, debounce, batching."""

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


@runtime_checkable
class KeyClaims(Protocol):
    """One holder per key until it expires: function idempotency keys and singleton runs."""

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


@runtime_checkable
class SlotStore(Protocol):
    """Concurrency limits: numbered slots per key and the line of runs waiting for one."""

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


@runtime_checkable
class RunEraser(Protocol):
    """Removing data: erasure on request (``stepline.engine.erasure``) and expiry after the
    retention period (``stepline.engine.retention``).

    Removal is by key and idempotent: erasing what is already gone removes nothing and says so.
    What a store keeps under a run (its steps, pending ops, the links from its events, large
    values in S3) goes with the run; what the engine knows better (the events the run's end
    emitted) the engine removes itself.

    Retention: a store opened with ``retention_ms`` gives every run an expiry on the write that
    ends it (``RunStore.update_run`` with a terminal status and ``ended_at``: ``ended_at`` plus
    the period), and every event one when it is stored (``received_at`` plus the period).
    ``expired_runs`` and ``expired_events`` list what is past it for the engine to erase; a store
    whose backend deletes expired items by itself (DynamoDB's TTL, for events) lists none there.
    """

    # Milliseconds a finished run and a stored event are kept; None keeps them for ever.
    retention_ms: int | None

    def erase_run(self, run_id: str) -> Erased:
        """Remove the run with its steps, pending ops, waiters, event links and their payloads. A
        step written after this (a call that was in flight) lands on nothing the run can be read
        by; erasing again removes it. ``NOTHING`` when the run has nothing stored."""

    def erase_event(self, internal_id: str) -> Erased:
        """Remove the event with its dedupe claim, its links to runs and its payloads (not the
        runs: erase those first)."""

    def expired_runs(self, now_ms: int, *, limit: int) -> list[str]:
        """Ids of ended runs whose expiry is before ``now_ms``, earliest expiry first, at most
        ``limit``. Read from an index, never by scanning every run."""

    def expired_events(self, now_ms: int, *, limit: int) -> list[str]:
        """Internal ids of events whose expiry is before ``now_ms`` that the backend does not
        delete by itself, at most ``limit``."""


@runtime_checkable
class Store(
    EventStore, AppStore, RunStore, WaiterStore, SignalStore, FlowStateStore, KeyClaims, SlotStore, RunEraser, Protocol
):
    """Every storage port at once: what one adapter family implements and ``Backend.store`` is.
    Engine services never take it whole; they take the ports above."""
