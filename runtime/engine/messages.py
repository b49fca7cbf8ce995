"""Work-queue message bodies. Every message is idempotent: handling one twice, late or after
the run moved on is harmless, because the executor checks it against the run's stored state."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self

from stepline.protocol.opcodes import DISCOVERY_STEP_ID


class Kind(StrEnum):
    CALL = "call"  # call the SDK for a run: discovery (DISCOVERY_STEP_ID) or a targeted step
    WAKE = "wake"  # a sleep is over: memoize it, then run discovery
    WAIT_TIMEOUT = "wait_timeout"  # a wait_for_event expired: memoize null unless an event won
    INVOKE_TIMEOUT = "invoke_timeout"  # an invoked child did not finish in time
    AI_CALL = "ai_call"  # make a step.ai.infer model request (stepline.engine.ops.ai)
    RUN_TIMEOUT = "run_timeout"  # timeouts.finish: cancel the run if it is still going
    CRON = "cron"  # a cron trigger fired: start the function's run for that minute
    DEBOUNCE = "debounce"  # a debounce window may be over: start its run with the last event
    BATCH = "batch"  # a batch's timeout passed: start its run with the events it holds
    START = "start"  # a large Event API request's stored events: start their runs, resume waiters
    SWEEP = "sweep"  # find stalled runs and re-arm them (stepline.engine.sweeper); no run of its own
    MATCH_WAITERS = "match_waiters"  # the rest of one event's waiters, past one request's budget
    ERASE = "erase"  # erase a run once more, after a call in flight when it was erased (engine.erasure)
    EXPIRE = "expire"  # erase ended runs and events past their retention (stepline.engine.retention)


# The kinds by their old names (handlers are registered and bodies compared by these).
CALL = Kind.CALL
WAKE = Kind.WAKE
WAIT_TIMEOUT = Kind.WAIT_TIMEOUT
INVOKE_TIMEOUT = Kind.INVOKE_TIMEOUT
AI_CALL = Kind.AI_CALL
RUN_TIMEOUT = Kind.RUN_TIMEOUT
CRON = Kind.CRON
DEBOUNCE = Kind.DEBOUNCE
BATCH = Kind.BATCH
START = Kind.START
SWEEP = Kind.SWEEP
MATCH_WAITERS = Kind.MATCH_WAITERS
ERASE = Kind.ERASE
EXPIRE = Kind.EXPIRE

# What a queue adapter hands over for a body that is not a JSON object: the text as received,
# under this one key, so the delivery can dead-letter it instead of a worker crashing on it.
INVALID_BODY = "invalid_body"

# The fields each kind cannot do without, and their types. A message of another kind, or
# without one of these, can never succeed: it is dead-lettered at its first delivery.
_RUN_STEP: dict[str, type] = {"run_id": str, "step": str}
REQUIRED: dict[str, dict[str, type]] = {
    CALL: {"run_id": str},
    WAKE: _RUN_STEP,
    WAIT_TIMEOUT: _RUN_STEP,
    INVOKE_TIMEOUT: _RUN_STEP,
    AI_CALL: _RUN_STEP,
    RUN_TIMEOUT: {"run_id": str},
    CRON: {"fn_id": str, "cron": str},
    DEBOUNCE: {"key": str, "at": int},
    BATCH: {"key": str, "at": int},
    START: {"event_ids": list},
    SWEEP: {},
    MATCH_WAITERS: {"event": str, "buckets": list},
    ERASE: {"run_id": str},
    EXPIRE: {},
}
# Optional fields that must have this type when present.
_TYPED = {
    "step": str,
    "attempt": int,
    "busy": int,
    "not_before": int,
    "at": int,
    "failures": list,
    "scheduled_time": str,
}


# -- the messages, typed ---------------------------------------------------------------------
# Each reads a body ``problem`` has passed (``from_body``) and writes the body the queue, the
# timers and the dead-letter store carry (``to_body``). Bodies keep the field names they have
# always had, so messages already on a queue or in a timer are read the same after an upgrade.


@dataclass(frozen=True, kw_only=True)
class Call:
    """Call the app for a run: discovery, or one step at an attempt.

    ``busy`` counts the times this copy found the run taken (for its backoff); ``failures`` are
    the step's failed attempts so far, carried to the attempt that settles it, which keeps them
    in its memo for operators (stepline.engine.attempts); ``claim`` is the claim a step's retry
    carries through its backoff (stepline.engine.leases); ``join`` marks a parallel group's
    join, queued because the run was busy when a branch finished: it calls the app only if the
    group has nothing left out by then (docs/protocol.md §7.5). A call waiting in a concurrency
    line also carries its place there, which stepline.engine.flow.concurrency reads from the body."""

    kind: ClassVar[Kind] = Kind.CALL
    run_id: str
    step: str = DISCOVERY_STEP_ID
    attempt: int = 0
    busy: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    claim: str | None = None
    join: bool = False

    @property
    def discovery(self) -> bool:
        return self.step == DISCOVERY_STEP_ID

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": CALL.value, "run_id": self.run_id, "step": self.step, "attempt": self.attempt}
        if self.busy:
            body["busy"] = self.busy
        if self.failures:
            body["failures"] = self.failures
        if self.claim:
            body["claim"] = self.claim
        if self.join:
            body["join"] = True
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        failures, claim = body.get("failures"), body.get("claim")
        return cls(
            run_id=body["run_id"],
            step=body.get("step") or DISCOVERY_STEP_ID,
            attempt=int(body.get("attempt") or 0),
            busy=int(body.get("busy") or 0),
            failures=[f for f in failures if isinstance(f, dict)] if isinstance(failures, list) else [],
            claim=claim if isinstance(claim, str) and claim else None,
            join=body.get("join") is True,
        )

    def when_busy(self) -> Call:
        """The copy to try again after finding the run (or the step) taken: a fresh call, out of
        any concurrency line and due at once, counting one more time it found it busy."""
        return dataclasses.replace(self, busy=self.busy + 1)


@dataclass(frozen=True, kw_only=True)
class Wake:
    """A sleep is over: its step's result is null."""

    kind: ClassVar[Kind] = Kind.WAKE
    run_id: str
    step: str

    def to_body(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "run_id": self.run_id, "step": self.step}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        return cls(run_id=body["run_id"], step=body["step"])


@dataclass(frozen=True, kw_only=True)
class InvokeTimeout(Wake):
    """An invoked child did not finish in time: the invoking step fails."""

    kind: ClassVar[Kind] = Kind.INVOKE_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class WaitTimeout:
    """A wait for ``event`` expired: its step's result is null, unless an event won it first.
    ``match_key`` is the waiter's bucket (stepline.engine.waiter_index), None when unkeyed."""

    kind: ClassVar[Kind] = Kind.WAIT_TIMEOUT
    run_id: str
    step: str
    event: str = ""
    match_key: str | None = None

    def to_body(self) -> dict[str, Any]:
        body = {"kind": self.kind.value, "run_id": self.run_id, "step": self.step, "event": self.event}
        if self.match_key is not None:
            body["match_key"] = self.match_key
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        event, key = body.get("event"), body.get("match_key")
        return cls(
            run_id=body["run_id"],
            step=body["step"],
            event=event if isinstance(event, str) else "",
            match_key=key if isinstance(key, str) else None,
        )


@dataclass(frozen=True, kw_only=True)
class RunTimeout:
    """The run's ``timeouts.finish`` passed: it is cancelled if it is still going."""

    kind: ClassVar[Kind] = Kind.RUN_TIMEOUT
    run_id: str

    def to_body(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "run_id": self.run_id}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        return cls(run_id=body["run_id"])


@dataclass(frozen=True, kw_only=True)
class MatchWaiters:
    """Go on matching the stored event ``event`` (internal id) against its waiters: the buckets
    left (keys; None for the unkeyed one), from ``after`` in the first."""

    kind: ClassVar[Kind] = Kind.MATCH_WAITERS
    event: str
    buckets: list[str | None]
    after: str | None
    now: int

    def to_body(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "event": self.event,
            "buckets": self.buckets,
            "after": self.after,
            "now": self.now,
        }


@dataclass(frozen=True, kw_only=True)
class CronFire:
    """A cron trigger of ``fn_id`` fired: start the function's run for that minute."""

    kind: ClassVar[Kind] = Kind.CRON
    fn_id: str
    cron: str

    def to_body(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "fn_id": self.fn_id, "cron": self.cron}


# Messages no more than their kind, or a run id.
def sweep() -> dict[str, Any]:
    return {"kind": SWEEP.value}


def erase(run_id: str) -> dict[str, Any]:
    return {"kind": ERASE.value, "run_id": run_id}


def expire() -> dict[str, Any]:
    return {"kind": EXPIRE.value}


# The bodies, as most senders want them.
def call(
    run_id: str, step: str = DISCOVERY_STEP_ID, attempt: int = 0, busy: int = 0, failures: list[Any] | None = None
) -> dict[str, Any]:
    return Call(run_id=run_id, step=step, attempt=attempt, busy=busy, failures=failures or []).to_body()


def wake(run_id: str, step: str) -> dict[str, Any]:
    return Wake(run_id=run_id, step=step).to_body()


def wait_timeout(run_id: str, step: str, event: str, match_key: str | None = None) -> dict[str, Any]:
    return WaitTimeout(run_id=run_id, step=step, event=event, match_key=match_key).to_body()


def invoke_timeout(run_id: str, step: str) -> dict[str, Any]:
    return InvokeTimeout(run_id=run_id, step=step).to_body()


def ai_call(run_id: str, step: str, attempt: int = 0, claim: str | None = None) -> dict[str, Any]:
    """Make a step.ai.infer model request (stepline.engine.ops.ai); ``claim``: the claim a retry
    keeps on its op through the backoff."""
    body: dict[str, Any] = {"kind": AI_CALL.value, "run_id": run_id, "step": step, "attempt": attempt}
    if claim:
        body["claim"] = claim
    return body


def run_timeout(run_id: str) -> dict[str, Any]:
    return RunTimeout(run_id=run_id).to_body()


def match_waiters(event: str, buckets: list[str | None], after: str | None, now_ms: int) -> dict[str, Any]:
    return MatchWaiters(event=event, buckets=buckets, after=after, now=now_ms).to_body()


def cron(fn_id: str, expression: str) -> dict[str, Any]:
    return CronFire(fn_id=fn_id, cron=expression).to_body()


def timer_name(body: dict[str, Any]) -> str:
    """A schedule name unique per (kind, run, step, attempt) within Scheduler's 64 characters."""
    step = body.get("step", DISCOVERY_STEP_ID)
    kind = body["kind"].replace("_", "")[:8]
    return f"{kind}-{body.get('run_id', '')}-{step[:16]}-{body.get('attempt', 0)}"


def parse_body(text: str) -> dict[str, Any]:
    """A received message's body: the JSON object, or ``{INVALID_BODY: text}`` for anything else."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {INVALID_BODY: text}


def kind_of(body: dict[str, Any]) -> str:
    """The message's kind for operators: "unknown" when it has none that is a string."""
    kind = body.get("kind")
    return kind if isinstance(kind, str) and kind else "unknown"


def problem(body: dict[str, Any], handled: Collection[str] = ()) -> str | None:
    """Why this body can never be handled (not JSON, unknown kind, a field missing or of the
    wrong type), or None when it is well formed. Kinds in ``handled`` (the executor's extra
    handlers) are known too; only those in ``REQUIRED`` have their fields checked."""
    if INVALID_BODY in body:
        return f"the body is not a JSON object: {str(body[INVALID_BODY])[:200]!r}"
    kind = body.get("kind")
    if kind not in REQUIRED:
        return None if isinstance(kind, str) and kind in handled else f"unknown message kind {kind!r}"
    for name in REQUIRED[kind]:
        if name not in body:
            return f"{name}: missing"
    for name, want in {**_TYPED, **REQUIRED[kind]}.items():
        value = body.get(name)
        if name in body and (not isinstance(value, want) or isinstance(value, bool) or value == ""):
            return f"{name}: expected a non-empty {want.__name__}, got {value!r}"
    return None
