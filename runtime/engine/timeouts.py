"""Function `timeouts` (docs/protocol.md §4.1): `start` bounds how long a run may wait in the queue
before it first runs, `finish` how long it may take once started. A run over either limit is
cancelled."""

from __future__ import annotations

from collections.abc import Callable

from stepline.engine import messages
from stepline.engine.ports import FunctionRecord, RunState
from stepline.engine.scheduling import Waker
from stepline.protocol.durations import parse_duration_ms

# Cancels a run, naming why (``Cancellation.cancel``).
Cancel = Callable[[str, str], object]


def first_start_checks(cancel: Cancel, waker: Waker, state: RunState, fn: FunctionRecord, now_ms: int) -> bool:
    """Called by the executor with the run's lease held. On the run's first start (the lease
    acquisition just set ``started_at``), enforce ``timeouts.start`` and arm ``timeouts.finish``.
    False when the run was cancelled and must not be called."""
    run = state.run
    if run.started_at != now_ms:
        return True
    timeouts = fn.config.get("timeouts") or {}
    start = timeouts.get("start")
    if start and now_ms - run.created_at > parse_duration_ms(start):
        cancel(run.run_id, f"the run did not start within timeouts.start ({start})")
        return False
    finish = timeouts.get("finish")
    if finish:
        waker.at(messages.RunTimeout(run_id=run.run_id), now_ms + parse_duration_ms(finish))
    return True
