"""`Sleep`: wake the run at a fixed time, at any distance (see scheduling.Waker)."""

from __future__ import annotations

from runtime.engine import messages
from runtime.engine.ops.tools import OpTools
from runtime.engine.ports import PendingOp, RunState
from runtime.protocol.calls import Opcode
from runtime.protocol.durations import parse_sleep_until_ms


def start_sleep(tools: OpTools, state: RunState, op: Opcode) -> None:
    now = tools.clock.now_ms()
    # The duration is in `name` for both SDKs (opts.duration per the spec); Python sends an
    # absolute time recomputed on every replay, so the first report fixes the wake time.
    wake_at = parse_sleep_until_ms(str(op.sleep_value), now)
    pending = PendingOp(op.id, op.op, now, op.display, {"wake_at": wake_at})
    if tools.store.add_pending(state.run.run_id, pending):
        state.pending[op.id] = pending
        tools.waker.at(messages.wake(state.run.run_id, op.id), wake_at)
