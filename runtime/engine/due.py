"""When a run should next move on: the value of ``Run.wake_at``.

Each op a run waits on has a time by which it settles if nothing is wrong: a sleep its wake
time, a wait or an invoke its timeout (whatever happens first, the timer fires then), a planned
step the time its call message was queued. A run's next due time is the earliest of those and
of the messages its last executor invocation queued for it. The executor writes it when it
releases the run; the sweeper compares it with the clock to find runs that fell through.
"""

from __future__ import annotations

from collections.abc import Iterable

from stepline.engine.ops.invoke import DEFAULT_INVOKE_TIMEOUT_MS
from stepline.engine.ports import PendingOp
from stepline.protocol.opcodes import Op

# The PendingOp.detail field that holds each waiting op's due time.
_DUE_FIELD = {
    Op.SLEEP: "wake_at",
    Op.WAIT_FOR_EVENT: "expires_at",
    Op.WAIT_FOR_SIGNAL: "expires_at",
    Op.INVOKE_FUNCTION: "expires_at",
}


def op_due_ms(op: PendingOp) -> int:
    """The latest time ``op`` should settle by; for a planned step, when it was queued."""
    field = _DUE_FIELD.get(op.op)
    value = (op.detail or {}).get(field) if field else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if op.op == Op.INVOKE_FUNCTION:
        # Recorded before invokes kept their expiry: the longest an invoke may wait.
        return op.created_at + DEFAULT_INVOKE_TIMEOUT_MS
    return op.created_at


def next_wake_ms(pending: Iterable[PendingOp], queued_at_ms: int | None, now_ms: int) -> int:
    """The run's next due time: the earliest of its pending ops' and of ``queued_at_ms`` (a
    message queued for it). A run with neither should have moved on already: ``now_ms``."""
    times = [op_due_ms(op) for op in pending]
    if queued_at_ms is not None:
        times.append(queued_at_ms)
    return min(times) if times else now_ms
