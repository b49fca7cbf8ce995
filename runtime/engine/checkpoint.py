"""Checkpoints: step results an app reports in the middle of a call (docs/protocol.md §17).

A checkpointing SDK runs steps inline and reports each result as it goes, through
``POST /v1/checkpoint/{run_id}/async`` (the TypeScript SDK) or on the call's own connection
(Stepline's SDK, ``stepline.engine.checkpoint_stream``). Either way each result becomes a memo
under the one rule every memo follows: a single conditional write, the first wins, a repeat is
acknowledged and writes nothing.

Who may checkpoint: only the call that holds the run. Every call request carries the
executor's lease token as ``ctx.qi_id``; a checkpoint whose token is not the run's live lease
holder (the run ended or was cancelled, or the executor that made the call lost the run to
another) is stale and refused with 409, and the TypeScript SDK then stops. Without that rule
two calls of one run could interleave steps computed from different histories.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from stepline.engine.ids import IdGenerator
from stepline.engine.payload_policy import output_too_large
from stepline.engine.ports import Clock, Memo, Run, RunStore
from stepline.protocol.calls import CallResult, Opcode, memo_data
from stepline.protocol.checkpoint_requests import CheckpointRequest
from stepline.protocol.errors import ProtocolError
from stepline.telemetry import NOOP, Telemetry

# The error a TypeScript SDK answers with after a 409 (a 400 with no-retry): the call was
# stale, which says nothing about the run itself (docs/protocol.md §17.1).
STALE_DISPATCH = "StaleDispatchError"
# A run read for one checkpoint serves the checks of the next ones for this long, while the
# call's lease on it is live: a step then costs its memo write alone, and a cancel is seen
# within this time (a lease cannot pass to another call before it expires).
RUN_RECHECK_MS = 500
# Runs kept for that (one per call checkpointing at once through this process, at most).
_RUNS_KEPT = 1024


class StaleCall(Exception):
    """The checkpoint came from a call that no longer holds the run: answer 409."""


@dataclass(frozen=True)
class Recorded:
    """What a checkpoint did: memos written, and repeats acknowledged without a write."""

    written: int
    repeated: int


def stale_reason(run: Run, token: str, now_ms: int) -> str | None:
    """Why a call carrying ``token`` may no longer move ``run``; None while it may."""
    if run.status.terminal:
        return f"run {run.run_id} has ended ({run.status.value})"
    if not token or run.lease_owner != token:
        return f"run {run.run_id} is held by another call"
    if run.lease_until is None or run.lease_until < now_ms:
        return f"the call's hold on run {run.run_id} has expired"
    return None


def checkpoint_memo(op: Opcode, seq: str, started_at: int) -> Memo:
    """The memo a checkpointed ``StepRun`` becomes: the same value a per-step call would store."""
    detail: dict[str, Any] = {"op": op.op, "started_at": started_at, "attempt": 0, "checkpointed": True}
    return Memo(step_id=op.id, value=memo_data(op.data), seq=seq, name=op.display, detail=detail)


def is_stale_reply(result: CallResult) -> bool:
    """A TypeScript SDK's answer after its checkpoint got a 409 (a non-retriable 400 naming
    ``StaleDispatchError``): the executor must let the run go, not fail it."""
    return result.kind == "error" and isinstance(result.error, dict) and result.error.get("name") == STALE_DISPATCH


class Checkpoints:
    """The engine side of ``POST /v1/checkpoint/{run_id}/async``."""

    def __init__(self, store: RunStore, clock: Clock, ids: IdGenerator, *, telemetry: Telemetry = NOOP) -> None:
        self.store = store
        self.clock = clock
        self.ids = ids
        self.telemetry = telemetry  # a span per step stored
        # Run id -> (read at, run as read); the API's threads share it, under the lock.
        self._runs: dict[str, tuple[int, Run]] = {}
        self._lock = threading.Lock()

    def record(self, run_id: str, request: CheckpointRequest) -> Recorded:
        """Write each reported step as a memo, in order. Raises ``ProtocolError`` for a body
        that cannot be taken (413 for a step output over the limit: nothing is written) and
        ``StaleCall`` when the call no longer holds the run."""
        if request.run_id != run_id:
            raise ProtocolError(f"run_id: {request.run_id!r} does not match the run in the path ({run_id!r})")
        for index, op in enumerate(request.steps):
            too_large = output_too_large(op.data)
            if too_large:
                raise ProtocolError(f"steps[{index}].data: {too_large}", status=413)
        now = self.clock.now_ms()
        run = self._run(run_id, request.qi_id, now)
        if run is None:
            raise ProtocolError(f"run {run_id!r} not found", status=404)
        if run.fn_id != request.fn_id:
            raise ProtocolError(f"fn_id: {request.fn_id!r} is not the function of run {run_id} ({run.fn_id!r})")
        reason = stale_reason(run, request.qi_id, now)
        if reason is not None:
            raise StaleCall(reason)
        started = request.request_started_at or now
        written = repeated = 0
        for op in request.steps:
            memo = checkpoint_memo(op, self.ids.new(), started)
            if self.store.commit_memo(run_id, memo):
                written += 1
                self.telemetry.memo_committed(run, memo, started)
            else:
                repeated += 1
        return Recorded(written, repeated)

    def _run(self, run_id: str, token: str, now_ms: int) -> Run | None:
        """The run as last read, when read recently and held by ``token`` well past now; else
        read now."""
        with self._lock:
            cached = self._runs.get(run_id)
        if cached is not None:
            read_at, known = cached
            held = known.lease_owner == token and (known.lease_until or 0) > now_ms + RUN_RECHECK_MS
            if now_ms - read_at < RUN_RECHECK_MS and held and not known.status.terminal:
                return known
        run = self.store.get_run(run_id)
        if run is not None:
            with self._lock:
                if run_id not in self._runs and len(self._runs) >= _RUNS_KEPT:
                    self._runs.pop(next(iter(self._runs)))  # the oldest entry
                self._runs[run_id] = (now_ms, run)
        return run
