"""`Sleep`: wake the run at a fixed time, at any distance (see scheduling.Waker).

The wake is armed before the op is recorded. A crash in between leaves a wake and no op: the
redelivered message runs the SDK again, the sleep is reported afresh and armed again, and the
duplicate wake finds the step memoized (the memo's write decides). The other order would leave
an op that nothing wakes, since a re-reported op that is already pending is ignored (docs/protocol.md
§7.6).
"""

from __future__ import annotations

from stepline.engine import messages
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import PendingOp, RunState
from stepline.protocol.calls import Opcode
from stepline.protocol.durations import parse_sleep_until_ms


def start_sleep(tools: OpTools, state: RunState, op: Opcode) -> None:
    now = tools.clock.now_ms()
    # The duration is in `name` for both SDKs (opts.duration per the spec); Python sends an
    # absolute time recomputed on every replay, so the first report fixes the wake time.
    wake_at = parse_sleep_until_ms(str(op.sleep_value), now)
    tools.waker.at(messages.Wake(run_id=state.run.run_id, step=op.id), wake_at)
    pending = PendingOp(op.id, op.op, now, op.display, {"wake_at": wake_at})
    if tools.runs.add_pending(state.run.run_id, pending):
        state.pending[op.id] = pending
