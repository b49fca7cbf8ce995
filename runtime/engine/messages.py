"""Work-queue message bodies. Every message is idempotent: handling one twice, late or after
the run moved on is harmless, because the executor checks it against the run's stored state."""

from __future__ import annotations

from typing import Any

CALL = "call"  # call the SDK for a run: discovery (step="step") or a targeted step
WAKE = "wake"  # a sleep is over: memoize it, then run discovery
WAIT_TIMEOUT = "wait_timeout"  # a wait_for_event expired: memoize null unless an event won
INVOKE_TIMEOUT = "invoke_timeout"  # an invoked child did not finish in time
RUN_TIMEOUT = "run_timeout"  # timeouts.finish: cancel the run if it is still going
CRON = "cron"  # a cron trigger fired: start the function's run for that minute
DEBOUNCE = "debounce"  # a debounce window may be over: start its run with the last event
BATCH = "batch"  # a batch's timeout passed: start its run with the events it holds

DISCOVERY = "step"


def call(run_id: str, step: str = DISCOVERY, attempt: int = 0, busy: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": CALL, "run_id": run_id, "step": step, "attempt": attempt}
    if busy:
        body["busy"] = busy  # times this job found the run's lease taken (for its backoff)
    return body


def wake(run_id: str, step: str) -> dict[str, Any]:
    return {"kind": WAKE, "run_id": run_id, "step": step}


def wait_timeout(run_id: str, step: str, event: str) -> dict[str, Any]:
    return {"kind": WAIT_TIMEOUT, "run_id": run_id, "step": step, "event": event}


def invoke_timeout(run_id: str, step: str) -> dict[str, Any]:
    return {"kind": INVOKE_TIMEOUT, "run_id": run_id, "step": step}


def run_timeout(run_id: str) -> dict[str, Any]:
    return {"kind": RUN_TIMEOUT, "run_id": run_id}


def cron(fn_id: str, expression: str) -> dict[str, Any]:
    return {"kind": CRON, "fn_id": fn_id, "cron": expression}


def timer_name(body: dict[str, Any]) -> str:
    """A schedule name unique per (kind, run, step, attempt) within Scheduler's 64 characters."""
    step = body.get("step", DISCOVERY)
    kind = body["kind"].replace("_", "")[:8]
    return f"{kind}-{body.get('run_id', '')}-{step[:16]}-{body.get('attempt', 0)}"
