"""`WaitForEvent`: park the run until a matching event arrives or the timeout passes.

Order matters for crashes: timer first, then the waiter, then the pending op. A crash before the
pending op is written leaves nothing the next discovery would skip (it re-reports the op and we
start over); an event arriving in between commits the memo, and the pending op is then refused.
With a look-back (``stepline.engine.lookback``) the stored events are read back after the waiter
is written and before the pending op: one already there settles the step at once.
"""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.lookback import earliest_match
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState, WaiterKind
from stepline.engine.waits import new_waiter
from stepline.protocol.calls import Opcode, memo_data, wait_lookback_ms
from stepline.protocol.durations import parse_duration_ms


def start_wait(tools: OpTools, state: RunState, op: Opcode) -> dict[str, Any] | None:
    """Start the wait. Returns the step's memo when a look-back finds its event already stored
    (the step settles at once), else None."""
    run = state.run
    now = tools.clock.now_ms()
    opts = op.options
    timeout = opts.get("timeout")
    # An empty timeout means "already expired" (TS sends it for negative durations).
    expires_at = now + parse_duration_ms(timeout) if timeout else now
    event_name = op.wait_event
    expression = opts.get("if") or None
    lookback = wait_lookback_ms(op)
    # With a look-back the waiter counts as begun that much earlier (stepline.engine.lookback).
    waiter = new_waiter(event_name, run, op.id, WaiterKind.WAIT, expression, expires_at, now - lookback)
    timeout = messages.WaitTimeout(run_id=run.run_id, step=op.id, event=event_name, match_key=waiter.match_key)
    tools.waker.at(timeout, expires_at)
    tools.waiters.add_waiter(waiter)
    if lookback:
        earlier = earliest_match(tools.events, waiter, now)
        if earlier is not None:
            tools.waiters.remove_waiter(event_name, run.run_id, op.id, waiter.match_key)
            return memo_data(earlier.wire())
    # The op keeps the wait's `if` (operators see what it waits for) and the waiter's bucket, so
    # whatever ends the wait (the run ending, a re-armed timeout) removes it from there.
    detail: dict[str, Any] = {"event": event_name, "expires_at": expires_at}
    if expression:
        detail["if"] = expression
    if waiter.match_key:
        detail["match_key"] = waiter.match_key
    if lookback:
        detail["lookback"] = op.options["lookback"]
    pending = PendingOp(op.id, op.op, now, op.display, detail)
    if tools.runs.add_pending(run.run_id, pending):
        state.pending[op.id] = pending
    return None
