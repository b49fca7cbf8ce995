"""A run's steps as the REST API and the dashboard show them: built from the one ``load_run``
read (memos in stack order, then the ops the run still waits on).

What a step's memo records (``Memo.detail``) gives its kind, start, attempt and input, and the
attempts that failed before it (``failed_attempts``, stepline.engine.attempts); its end is the time
in its ``seq`` (a ULID made when it was committed). Memos written before step details
existed carry none of that, and show only what the value says.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ulid import ULID

from stepline.engine.records import Memo, PendingOp, RunState

# Opcode -> the kind of step an operator reads it as.
KINDS = {
    "StepRun": "run",
    "StepError": "run",
    "StepFailed": "run",
    "StepPlanned": "run",
    "Step": "run",
    "Sleep": "sleep",
    "WaitForEvent": "wait",
    "WaitForSignal": "signal",
    "InvokeFunction": "invoke",
    "AIGateway": "ai",
}
# A pending op's status while the run waits on it.
WAITING = {
    "Sleep": "Sleeping",
    "WaitForEvent": "Waiting",
    "WaitForSignal": "Waiting",
    "InvokeFunction": "Waiting",
    "AIGateway": "Waiting",
}


def _iso(ms: Any) -> str | None:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seq_ms(seq: str) -> int | None:
    try:
        return ULID.from_str(seq).milliseconds
    except (ValueError, TypeError):
        return None


def _input(detail: dict[str, Any]) -> dict[str, Any] | None:
    """What a waiting op was given, with times as RFC3339."""
    if not detail:
        return None
    out = dict(detail)
    out.pop("match_key", None)  # where the engine keeps a wait's waiter: nothing to show
    for key in ("wake_at", "expires_at"):
        if isinstance(out.get(key), int):
            out[key] = _iso(out[key])
    return out


def _duration(start: int | None, end: int | None) -> int | None:
    if isinstance(start, int) and isinstance(end, int) and end >= start:
        return end - start
    return None


def memo_step(memo: Memo) -> dict[str, Any]:
    detail = memo.detail or {}
    op = detail.get("op") or ""
    started = detail.get("started_at")
    ended = detail.get("ended_at") if isinstance(detail.get("ended_at"), int) else _seq_ms(memo.seq)
    attempt = detail.get("attempt")
    failed = "error" in memo.value
    out: dict[str, Any] = {
        "step_id": memo.step_id,
        "name": memo.name or memo.step_id,
        "kind": KINDS.get(op, "step"),
        "op": op or None,
        "status": "Failed" if failed else "Completed",
        "attempts": attempt + 1 if isinstance(attempt, int) else None,
        "queued_at": _iso(detail.get("queued_at")),
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_ms": _duration(started, ended),
        "input": _input(detail.get("input") or {}),
    }
    if failed:
        out["error"] = memo.value.get("error")
    else:
        out["output"] = memo.value.get("data")
        if op in ("WaitForEvent", "WaitForSignal") and memo.value.get("data") is None:
            out["timed_out"] = True
    if detail.get("copied_from"):
        out["copied_from"] = detail["copied_from"]
    failures = detail.get("failures")
    if isinstance(failures, list) and failures:
        out["failed_attempts"] = [_failed_attempt(f) for f in failures if isinstance(f, dict)]
    return out


def _failed_attempt(failure: dict[str, Any]) -> dict[str, Any]:
    """One failed attempt before the one that settled the step (numbered from 1, as ``attempts``)."""
    attempt = failure.get("attempt")
    started, ended = failure.get("started_at"), failure.get("ended_at")
    return {
        "attempt": attempt + 1 if isinstance(attempt, int) else None,
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_ms": _duration(started, ended),
        "error": failure.get("error"),
    }


def pending_step(op: PendingOp, run_ended: bool) -> dict[str, Any]:
    return {
        "step_id": op.step_id,
        "name": op.name or op.step_id,
        "kind": KINDS.get(op.op, "step"),
        "op": op.op,
        # An op left behind by a run that ended (cancelled, timed out) will never settle.
        "status": "Cancelled" if run_ended else WAITING.get(op.op, "Running"),
        "attempts": None,
        "queued_at": _iso(op.created_at) if op.op == "StepPlanned" else None,
        "started_at": _iso(op.created_at),
        "ended_at": None,
        "duration_ms": None,
        "input": _input(op.shown_detail()),
    }


def steps_json(state: RunState) -> list[dict[str, Any]]:
    """Settled steps in the order the function reached them, then the ones still open."""
    done = [memo_step(m) for m in sorted(state.memos, key=lambda m: m.seq)]
    ended = state.run.status.terminal
    settled = {m.step_id for m in state.memos}
    open_ = [
        pending_step(op, ended)
        for op in sorted(state.pending.values(), key=lambda p: (p.created_at, p.step_id))
        if op.step_id not in settled
    ]
    return done + open_
