"""Work-queue message bodies. Every message is idempotent: handling one twice, late or after
the run moved on is harmless, because the executor checks it against the run's stored state."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from stepline.protocol.opcodes import DISCOVERY_STEP_ID

CALL = "call"  # call the SDK for a run: discovery (DISCOVERY_STEP_ID) or a targeted step
WAKE = "wake"  # a sleep is over: memoize it, then run discovery
WAIT_TIMEOUT = "wait_timeout"  # a wait_for_event expired: memoize null unless an event won
INVOKE_TIMEOUT = "invoke_timeout"  # an invoked child did not finish in time
RUN_TIMEOUT = "run_timeout"  # timeouts.finish: cancel the run if it is still going
CRON = "cron"  # a cron trigger fired: start the function's run for that minute
DEBOUNCE = "debounce"  # a debounce window may be over: start its run with the last event
BATCH = "batch"  # a batch's timeout passed: start its run with the events it holds
START = "start"  # a large Event API request's stored events: start their runs, resume waiters
SWEEP = "sweep"  # find stalled runs and re-arm them (stepline.engine.sweeper); no run of its own
MATCH_WAITERS = "match_waiters"  # the rest of one event's waiters, past one request's budget
ERASE = "erase"  # erase a run once more, after a call in flight when it was erased (engine.erasure)
EXPIRE = "expire"  # erase ended runs and events past their retention (stepline.engine.retention)

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


def call(
    run_id: str, step: str = DISCOVERY_STEP_ID, attempt: int = 0, busy: int = 0, failures: list[Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": CALL, "run_id": run_id, "step": step, "attempt": attempt}
    if busy:
        body["busy"] = busy  # times this job found the run's lease taken (for its backoff)
    if failures:
        # The step's failed attempts so far, carried to the attempt that settles it, which keeps
        # them in its memo for operators (stepline.engine.attempts).
        body["failures"] = failures
    return body


def wake(run_id: str, step: str) -> dict[str, Any]:
    return {"kind": WAKE, "run_id": run_id, "step": step}


def wait_timeout(run_id: str, step: str, event: str, match_key: str | None = None) -> dict[str, Any]:
    body = {"kind": WAIT_TIMEOUT, "run_id": run_id, "step": step, "event": event}
    if match_key is not None:
        body["match_key"] = match_key  # the waiter's bucket (stepline.engine.waiter_index)
    return body


def invoke_timeout(run_id: str, step: str) -> dict[str, Any]:
    return {"kind": INVOKE_TIMEOUT, "run_id": run_id, "step": step}


def run_timeout(run_id: str) -> dict[str, Any]:
    return {"kind": RUN_TIMEOUT, "run_id": run_id}


def match_waiters(event: str, buckets: list[str | None], after: str | None, now_ms: int) -> dict[str, Any]:
    """Go on matching the stored event ``event`` (internal id) against its waiters: the
    buckets left (keys; null for the unkeyed one), from ``after`` in the first."""
    return {"kind": MATCH_WAITERS, "event": event, "buckets": buckets, "after": after, "now": now_ms}


def sweep() -> dict[str, Any]:
    return {"kind": SWEEP}


def erase(run_id: str) -> dict[str, Any]:
    return {"kind": ERASE, "run_id": run_id}


def expire() -> dict[str, Any]:
    return {"kind": EXPIRE}


def cron(fn_id: str, expression: str) -> dict[str, Any]:
    return {"kind": CRON, "fn_id": fn_id, "cron": expression}


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
