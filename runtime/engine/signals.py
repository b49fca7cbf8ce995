"""Signals: a run waits for a signal by name (``step.waitForSignal``), and one
``POST /v1/signals`` resumes it (docs/steps/signals.md). A signal names at most one run at a time
(``SignalStore``: one wait per signal), unlike an event, which any number of waiters match.

Exactly once. Resuming goes through the step's conditional memo write, as every resumption does
(``stepline.engine.resume``): of two sends racing for one wait, only the one whose value became
the step's result answers with the run; the other finds the wait settled and answers that no run
waits. The wait is removed after the memo is written, never before, so a sender that fails in
between leaves a wait that the next send finds settled (and removes), not a run that lost its
signal.
"""

from __future__ import annotations

import logging
from typing import Any

from stepline.engine.ports import Clock, RunStore, SignalStore
from stepline.engine.resume import Resumer
from stepline.protocol.calls import memo_data

log = logging.getLogger(__name__)

# The step error a wait's step fails with when another run waits for its signal (onConflict 'fail').
SIGNAL_CONFLICT = "SignalConflict"


def signal_result(signal: str, data: Any) -> dict[str, Any]:
    """What ``step.waitForSignal`` resolves to (the TypeScript SDK's ``{signal, data}``)."""
    return {"signal": signal, "data": data}


def conflict_error(signal: str, holder_run_id: str) -> dict[str, Any]:
    return {
        "name": SIGNAL_CONFLICT,
        "message": f"Signal conflict: run {holder_run_id} already waits for signal {signal!r} "
        "(onConflict 'replace' takes it over)",
    }


class Signals:
    def __init__(self, signals: SignalStore, runs: RunStore, resumer: Resumer, clock: Clock) -> None:
        self.signals = signals
        self.runs = runs  # is the waiting run still live?
        self.resumer = resumer
        self.clock = clock

    def send(self, signal: str, data: Any) -> str | None:
        """Resume the run waiting for ``signal`` with ``{"signal": ..., "data": ...}``. Its run id,
        or None when no run waits (none ever did, it timed out, another send won, or it ended)."""
        wait = self.signals.get_signal_wait(signal, self.clock.now_ms())
        if wait is None:
            return None
        run = self.runs.get_run(wait.run_id)
        if run is None or run.status.terminal:
            # Ended (cancelled, timed out as a whole) or erased with its wait still recorded.
            self.signals.remove_signal_wait(signal, wait.run_id, wait.step_id)
            return None
        won = self.resumer.resume(wait.run_id, wait.step_id, memo_data(signal_result(signal, data)))
        self.signals.remove_signal_wait(signal, wait.run_id, wait.step_id)
        if not won:
            log.info("signal %r: run %s had already moved on", signal, wait.run_id)
            return None
        return wait.run_id
