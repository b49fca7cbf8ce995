"""What the engine stores: plain records that every adapter family persists the same way.

These are engine-side shapes, not wire shapes (those live in ``stepline.protocol``). JSON-valued
fields (``data``, ``output``, memo values, configs) hold plain Python JSON values; adapters
serialize them as JSON text so that no backend's type system (DynamoDB numbers, SQLite affinity)
leaks into them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any

from stepline.protocol.opcodes import Op

JSON = Any

DAY_MS = 24 * 60 * 60 * 1000
EVENT_DEDUPE_WINDOW_MS = DAY_MS


class RunStatus(str, Enum):
    """Lifecycle of a run. ``QUEUED`` is reported as ``Running`` by the REST API, as Inngest does."""

    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


@dataclass
class StoredEvent:
    """An accepted event.

    ``internal_id`` is the ULID the Event API returns in ``ids`` and the REST API lists by.
    ``id`` is what the SDK sees as ``event.id``: the user's id when they gave one, else the
    internal id. ``received_at`` orders events for listing.
    """

    internal_id: str
    id: str
    name: str
    data: dict[str, JSON]
    ts: int
    received_at: int
    user: dict[str, JSON] = field(default_factory=dict)
    v: str | None = None
    # The W3C trace context its sender sent with it ({"traceparent", "tracestate"}), kept so
    # that the runs it starts, however late, join the sender's trace (stepline.telemetry
    # .propagation). None without one, or with tracing off. Never sent to the SDK.
    trace: dict[str, str] | None = None

    def wire(self) -> dict[str, JSON]:
        """The event as call requests carry it: string id, integer ts (docs/protocol.md §5.2)."""
        out: dict[str, JSON] = {
            "data": self.data,
            "id": self.id,
            "name": self.name,
            "ts": self.ts,
            "user": self.user,
        }
        if self.v is not None:
            out["v"] = self.v
        return out


@dataclass
class AppRecord:
    """A synced app: where it lives and what it told us at its last sync."""

    app_id: str
    url: str
    synced_at: int
    sdk: str = ""
    framework: str = ""
    app_version: str = ""
    function_ids: list[str] = field(default_factory=list)


@dataclass
class FunctionRecord:
    """One registered function. ``config`` is the function object as registered (normalized by
    ``stepline.protocol``), ``url`` the call URL (``steps.step.runtime.url``, deployId stripped)."""

    fn_id: str
    app_id: str
    name: str
    url: str
    config: dict[str, JSON]
    event_triggers: list[str] = field(default_factory=list)

    @property
    def retries(self) -> int:
        step = (self.config.get("steps") or {}).get("step") or {}
        attempts = (step.get("retries") or {}).get("attempts")
        return 3 if attempts is None else int(attempts)

    @property
    def max_attempts(self) -> int:
        return self.retries + 1


@dataclass
class Run:
    """One execution of a function. ``events`` are the wire events it was started with."""

    run_id: str
    fn_id: str
    app_id: str
    status: RunStatus
    events: list[dict[str, JSON]]
    event_ids: list[str]
    created_at: int
    started_at: int | None = None
    ended_at: int | None = None
    output: JSON = None
    error: dict[str, JSON] | None = None
    # Echo of the SDK's x-inngest-req-version; -1 until the SDK has told us (docs/protocol.md §5.4).
    req_version: int = -1
    lease_owner: str | None = None
    lease_until: int | None = None
    # Where a run started by an operator came from, else None:
    # {"kind": "replay", "run_id": <original>} or {"kind": "rerun", "run_id": ..., "step_id": ...,
    # "step_name": ...}. Shown by the REST API and the dashboard; the engine never reads it.
    origin: dict[str, JSON] | None = None
    # When something should next happen to the run if nothing is wrong (ms): its first message
    # at creation, then, at each lease release, the earliest due time of what it waits on. None
    # once it ended. The sweeper (stepline.engine.sweeper) re-arms runs left well past it.
    wake_at: int | None = None
    # The app version the run started on (stepline.engine.pinning): the Lambda version its first
    # invoke ran (later calls go to it), else the appVersion its app had registered. None until
    # the first call answered, or when the app names none.
    app_version: str | None = None
    # The run's trace context: the W3C traceparent of its root span (stepline.telemetry), made
    # when it is created, so every span of every invocation joins one trace. None for runs
    # created before it was kept.
    trace: str | None = None


@dataclass
class Memo:
    """A step result, exactly ``{"data": v}`` or ``{"error": {name, message, stack}}``.

    ``seq`` orders memos by commit (the ``ctx.stack`` order); adapters assign nothing, the
    engine passes a monotonic value from its id generator.
    """

    step_id: str
    value: dict[str, JSON]
    seq: str
    name: str = ""
    # How the step went, for operators (REST API, dashboard); never sent to the SDK. Keys, all
    # optional: ``op`` (the opcode that settled it: StepRun, StepError, Sleep, WaitForEvent, ...),
    # ``started_at`` (ms: the call that produced it, or when the run began waiting),
    # ``queued_at`` (ms: when a planned step was queued), ``attempt`` (0-based, of the call that
    # produced it), ``input`` (what a waiting op was given: wake time, event, invoked function),
    # ``copied_from`` (the run a rerun took this memo from).
    detail: dict[str, JSON] = field(default_factory=dict)


# The key of a PendingOp's detail that no reader shows: step.ai.infer's provider key, kept only
# until the step settles (stepline.engine.ops.ai).
SECRET_DETAIL = "secret"


@dataclass
class PendingOp:
    """An op the run is waiting on (sleep, planned step, wait, invoke), keyed by its hashed id
    so that re-reports are ignored (docs/protocol.md §7.6). ``detail`` holds what the op needs to
    resume (wake time, wait expression, ...)."""

    step_id: str
    op: Op
    created_at: int
    name: str = ""
    detail: dict[str, JSON] = field(default_factory=dict)

    def shown_detail(self) -> dict[str, JSON]:
        """``detail`` as operators may see it: without its secret part (``SECRET_DETAIL``)."""
        return {k: v for k, v in self.detail.items() if k != SECRET_DETAIL}


class WaiterKind(str, Enum):
    WAIT = "wait"  # step.wait_for_event: the first matching event resumes the run
    CANCEL = "cancel"  # a cancel_on rule: the first matching event cancels the run


@dataclass
class Waiter:
    """A run waiting for an event by name (docs/protocol.md §6.4 WaitForEvent, and cancel_on rules).

    ``expression`` is CEL over ``event`` (``trigger``, the run's first event) and ``async`` (the
    incoming event). ``step_id`` is the WaitForEvent op's hashed id, or ``cancel-<n>`` for the
    n-th cancel rule. A waiter past ``expires_at`` never matches; its timeout timer handles it.
    """

    event_name: str
    run_id: str
    step_id: str
    kind: WaiterKind
    expires_at: int
    created_at: int
    expression: str | None = None
    trigger: dict[str, JSON] = field(default_factory=dict)
    # The equality the expression states between a field of the incoming event and a value
    # known when the wait began (``event.data.id == async.data.id``), as an index
    # (``stepline.engine.waiter_index``): ``match_field`` names the incoming event's field and
    # ``match_key`` stands for the value it must have. Events read only the waiters whose key
    # their own value gives, plus those without one (None: the expression states no equality).
    match_field: str | None = None
    match_key: str | None = None


@dataclass
class SignalWait:
    """A run waiting for a signal by name (``step.waitForSignal``, docs/steps/signals.md): at most
    one per signal. ``step_id`` is the WaitForSignal op's hashed id; a wait past ``expires_at``
    reads as absent (its timeout wakes the run with null)."""

    signal: str
    run_id: str
    step_id: str
    expires_at: int
    created_at: int

    def same_wait(self, other: SignalWait) -> bool:
        """The same run's same step (a re-reported op), whatever its times."""
        return self.run_id == other.run_id and self.step_id == other.step_id


@dataclass
class WaiterPage:
    """One page of a bucket of waiters; ``after`` continues it (None: the bucket is done)."""

    waiters: list[Waiter]
    after: str | None = None


@dataclass
class CronSchedule:
    """A cron trigger of a function. ``cron`` is the five- or six-field expression without any
    ``TZ=`` prefix; ``timezone`` is an IANA zone name ("UTC" when none was given)."""

    name: str
    cron: str
    timezone: str
    body: dict[str, JSON]


@dataclass
class RunState:
    """A run with everything it has memoized and is waiting on: what one store read returns.

    ``memos`` grows by appending as an invocation stores steps; the views below follow it in
    O(new memos), not O(all memos), so a long run costs the same per step as a short one. The
    views are shared: read them, never change them."""

    run: Run
    memos: list[Memo] = field(default_factory=list)
    pending: dict[str, PendingOp] = field(default_factory=dict)
    _views: _MemoViews | None = field(default=None, init=False, repr=False, compare=False)

    def _current(self) -> _MemoViews:
        views = self._views
        if views is None or views.source is not self.memos or views.seen > len(self.memos):
            views = self._views = _MemoViews(self.memos)  # the list was replaced or shortened
        views.catch_up()
        return views

    def memo_map(self) -> dict[str, dict[str, JSON]]:
        """Step id -> memo value, in the order the memos were stored. Only this view reads the
        values: a store may hand out memos whose large values are fetched on first use, and a
        call whose state the SDK fetches itself (``use_api``) never asks for them."""
        return self._current().values()

    def stack(self) -> list[str]:
        """Step ids by ``seq`` (commit order): ``ctx.stack``."""
        return self._current().stack

    def has_memo(self, step_id: str) -> bool:
        return step_id in self._current().seqs

    def memo_count(self) -> int:
        """How many steps have a memo."""
        return len(self._current().seqs)


class _MemoViews:
    """``RunState``'s derived views of a memo list, extended as the list grows: the ids and
    their order at once, the values only when asked for."""

    def __init__(self, memos: list[Memo]) -> None:
        self.source = memos
        self.seen = 0
        self.stack: list[str] = []
        self.seqs: dict[str, str] = {}
        self._last_seq = ""
        self._values: dict[str, dict[str, JSON]] = {}
        self._values_seen = 0

    def catch_up(self) -> None:
        if self.seen == len(self.source):
            return
        for memo in self.source[self.seen :]:
            self.seqs[memo.step_id] = memo.seq
            if memo.seq >= self._last_seq:
                self.stack.append(memo.step_id)  # the usual case: stored after the others
                self._last_seq = memo.seq
            else:
                # Out of order (memos loaded unsorted): a new list, so callers holding the old
                # one (an encoder's cache) see it changed.
                self.stack = sorted([*self.stack, memo.step_id], key=self.seqs.__getitem__)
        self.seen = len(self.source)

    def values(self) -> dict[str, dict[str, JSON]]:
        for memo in self.source[self._values_seen : self.seen]:
            self._values[memo.step_id] = memo.value
        self._values_seen = self.seen
        return self._values


# -- erasure and retention ---------------------------------------------------------------------


@dataclass(frozen=True)
class Erased:
    """How much one removal took away (``RunEraser``): what the audit log records, counts and
    never data."""

    runs: int = 0
    steps: int = 0  # memos and pending ops
    events: int = 0
    links: int = 0  # event -> run index entries
    payloads: int = 0  # objects in the payload bucket

    def __add__(self, other: Erased) -> Erased:
        return Erased(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


NOTHING = Erased()
