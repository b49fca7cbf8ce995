"""`WaitForEvent`: park the run until a matching event arrives or the timeout passes.

Order matters for crashes: timer first, then the waiter, then the pending op. A crash before the
pending op is written leaves nothing the next discovery would skip (it re-reports the op and we
start over); an event arriving in between commits the memo, and the pending op is then refused.
"""

from __future__ import annotations

from stepline.engine import messages
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState, Waiter, WaiterKind
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
    tools.waker.at(messages.wait_timeout(run.run_id, op.id, event_name), expires_at)
    tools.waiters.add_waiter(
        Waiter(
            event_name=event_name,
            run_id=run.run_id,
            step_id=op.id,
            kind=WaiterKind.WAIT,
            expires_at=expires_at,
            created_at=now,
            expression=opts.get("if") or None,
            trigger=run.events[0] if run.events else {},
        )
    )
    pending = PendingOp(op.id, op.op, now, op.display, {"event": event_name, "expires_at": expires_at})
    if tools.runs.add_pending(run.run_id, pending):
        state.pending[op.id] = pending
