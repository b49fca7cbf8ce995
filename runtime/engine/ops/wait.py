"""`WaitForEvent`: park the run until a matching event arrives or the timeout passes.

Order matters for crashes: timer first, then the waiter, then the pending op. A crash before the
pending op is written leaves nothing the next discovery would skip (it re-reports the op and we
start over); an event arriving in between commits the memo, and the pending op is then refused.
"""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState, WaiterKind
from stepline.engine.waits import new_waiter
from stepline.protocol.calls import Opcode
from stepline.protocol.durations import parse_duration_ms


def start_wait(tools: OpTools, state: RunState, op: Opcode) -> None:
    run = state.run
    now = tools.clock.now_ms()
    opts = op.options
    timeout = opts.get("timeout")
    # An empty timeout means "already expired" (TS sends it for negative durations).
    expires_at = now + parse_duration_ms(timeout) if timeout else now
    event_name = op.wait_event
    expression = opts.get("if") or None
    waiter = new_waiter(event_name, run, op.id, WaiterKind.WAIT, expression, expires_at, now)
    tools.waker.at(messages.wait_timeout(run.run_id, op.id, event_name, waiter.match_key), expires_at)
    tools.waiters.add_waiter(waiter)
    # The op keeps the wait's `if` (operators see what it waits for) and the waiter's bucket, so
    # whatever ends the wait (the run ending, a re-armed timeout) removes it from there.
    detail: dict[str, Any] = {"event": event_name, "expires_at": expires_at}
    if expression:
        detail["if"] = expression
    if waiter.match_key:
        detail["match_key"] = waiter.match_key
    pending = PendingOp(op.id, op.op, now, op.display, detail)
    if tools.runs.add_pending(run.run_id, pending):
        state.pending[op.id] = pending
