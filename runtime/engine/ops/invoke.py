"""`InvokeFunction`: start another function's run directly (no trigger matching) with an
`inngest/function.invoked` event, and memoize its result on the caller when it ends
(docs/protocol.md §9.1). The child finds its way back through `data._inngest.correlation_id`.

Order matters for crashes: the timeout, the event and the child run come before the pending op.
A crash before the op is recorded is repaired by the redelivered message, which reports the op
afresh and finds the same event and child (derived ids); the other order would leave an op
whose child was never started, ignored as a re-report (docs/protocol.md §7.6) until its timeout.
"""

from __future__ import annotations

from typing import Any

from stepline.engine import messages
from stepline.engine.ids import derived_ulid
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState, StoredEvent
from stepline.protocol.calls import Opcode, memo_error
from stepline.protocol.durations import parse_duration_ms
from stepline.protocol.invocations import INVOKED, correlation_id

# Without a timeout an invoke waits as long as a run can live (Go uses a year too).
DEFAULT_INVOKE_TIMEOUT_MS = 366 * 24 * 60 * 60 * 1000
# The caller's step error when the child is still running at the timeout, word for word as
# Inngest writes it: the SDKs' users and their tests match on both (docs/protocol.md §9.1).
TIMEOUT_ERROR = {
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}


def start_invoke(tools: OpTools, state: RunState, op: Opcode) -> dict[str, Any] | None:
    """Start the invoke. When there is nothing to invoke, returns the error memo that settles
    the step at once instead, for the caller to commit with its other results (so its next call
    already sends it) and run discovery straight away."""
    run = state.run
    opts = op.options
    fn_id = opts.get("function_id")
    target = tools.apps.get_function(fn_id) if isinstance(fn_id, str) else None
    if target is None:
        message = f"invoked function {fn_id!r} is not registered"
        return memo_error({"name": "FunctionNotFound", "message": message})
    now = tools.clock.now_ms()
    timeout = opts.get("timeout")
    expire = now + (parse_duration_ms(timeout) if timeout else DEFAULT_INVOKE_TIMEOUT_MS)
    payload = opts.get("payload") or {}
    correlation = correlation_id(run.run_id, op.id)
    # Deterministic id: a re-dispatch after a crash finds the same event and the same child run.
    internal_id = derived_ulid(run.created_at, correlation)
    data = dict(payload.get("data") or {})
    data["_inngest"] = {
        "source_app_id": run.app_id,
        "source_fn_id": run.fn_id,
        "source_fn_v": 1,
        "fn_id": target.fn_id,
        "correlation_id": correlation,
        "expire": expire,
        "gid": run.run_id,
        "name": op.display,
    }
    event = StoredEvent(
        internal_id=internal_id,
        id=payload.get("id") or internal_id,
        name=INVOKED,
        data=data,
        ts=now,
        received_at=now,
        v=payload.get("v"),
    )
    tools.waker.at(messages.invoke_timeout(run.run_id, op.id), expire)
    [stored] = tools.events.save_events([event], now)
    _, start = tools.starter.start_for_event(target, stored)
    if start is not None:
        tools.queue.send(start)
    detail = {"function_id": target.fn_id, "correlation_id": correlation, "expires_at": expire}
    pending = PendingOp(op.id, op.op, now, op.display, detail)
    if tools.runs.add_pending(run.run_id, pending):
        state.pending[op.id] = pending
    return None
