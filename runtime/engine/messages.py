"""Work-queue message bodies. Every message is idempotent: handling one twice, late or after
the run moved on is harmless, because the executor checks it against the run's stored state."""

from __future__ import annotations

from typing import Any

CALL = "call"  # call the SDK for a run: discovery (step="step") or a targeted step
WAKE = "wake"  # a sleep is over: memoize it, then run discovery

DISCOVERY = "step"


def call(run_id: str, step: str = DISCOVERY, attempt: int = 0) -> dict[str, Any]:
    return {"kind": CALL, "run_id": run_id, "step": step, "attempt": attempt}


def wake(run_id: str, step: str) -> dict[str, Any]:
    return {"kind": WAKE, "run_id": run_id, "step": step}


def timer_name(body: dict[str, Any]) -> str:
    """A schedule name that is unique per (run, step, attempt) and fits Scheduler's 64 chars."""
    step = body.get("step", DISCOVERY)
    return f"{body['kind']}-{body['run_id']}-{step[:16]}-{body.get('attempt', 0)}"
