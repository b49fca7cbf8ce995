"""`WaitForSignal`: park the run until ``POST /v1/signals`` names its signal, or the timeout
passes (docs/steps/signals.md).

Order matters for crashes: the signal's wait first (it decides a conflict, and nothing is armed
for a step that fails), then the timeout (a plain wake: null unless a signal won the step), then
the pending op. A crash before the pending op leaves a wait and maybe a wake that the re-reported
op finds again (the same run's step keeps its wait); a signal arriving in between writes the memo,
and the pending op is then refused.
"""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState, SignalWait
from stepline.engine.signals import conflict_error
from stepline.protocol.calls import Opcode, memo_error
from stepline.protocol.durations import parse_duration_ms
from stepline.protocol.signals import OnConflict, op_conflict, op_signal


def start_signal_wait(tools: OpTools, state: RunState, op: Opcode) -> dict[str, Any] | None:
    """Start the wait. Returns the step's memo when it settles at once (a conflict), else None."""
    run = state.run
    now = tools.clock.now_ms()
    timeout = op.options.get("timeout")
    # An empty timeout means "already expired", as for WaitForEvent.
    expires_at = now + parse_duration_ms(timeout) if timeout else now
    signal, conflict = op_signal(op), op_conflict(op)
    wait = SignalWait(signal, run.run_id, op.id, expires_at, now)
    held = tools.signals.put_signal_wait(wait, now, replace=conflict == OnConflict.REPLACE)
    if not held.same_wait(wait) and _ended(tools, held.run_id):
        # The holder ended without letting go (it died between its end and the release of what
        # it held): a signal of a run that will never take it is no conflict.
        held = tools.signals.put_signal_wait(wait, now, replace=True)
    if not held.same_wait(wait):
        return memo_error(conflict_error(signal, held.run_id))
    tools.waker.at(messages.wake(run.run_id, op.id), held.expires_at)
    # The op names its signal: whatever ends the run removes the wait (stepline.engine.waits),
    # and operators see what the run waits for.
    detail: dict[str, Any] = {"signal": signal, "expires_at": held.expires_at, "conflict": conflict.value}
    pending = PendingOp(op.id, op.op, now, op.display, detail)
    if tools.runs.add_pending(run.run_id, pending):
        state.pending[op.id] = pending
    return None


def _ended(tools: OpTools, run_id: str) -> bool:
    run = tools.runs.get_run(run_id)
    return run is None or run.status.terminal
