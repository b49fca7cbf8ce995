"""``step.wait_for_signal``: pause until ``POST /v1/signals`` names this run's signal, or the
timeout passes (docs/steps/signals.md). The op is TypeScript's ``step.waitForSignal``'s, so the
server treats both alike."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Literal

from stepline.protocol.opcodes import Op
from stepline.sdk.config import duration_str
from stepline.sdk.errors import SdkError
from stepline.sdk.steps.core import Execution

OnConflict = Literal["fail", "replace"]


@dataclass(frozen=True)
class Signal:
    """A signal as the waiting run receives it: its name and the data it was sent with."""

    signal: str
    data: Any


def wait_for_signal(
    ex: Execution,
    step_id: str,
    signal: str,
    timeout: str | datetime.timedelta,
    on_conflict: OnConflict = "fail",
) -> Signal | None:
    """The signal, or None on timeout. A signal names one run: when another run already waits for
    it, ``"fail"`` fails this step with a ``StepError`` (``SignalConflict``), ``"replace"`` takes
    the signal over (the other run then waits on until its own timeout)."""
    if not isinstance(signal, str) or not signal:
        raise SdkError(f"wait_for_signal {step_id!r}: signal must be a non-empty string")
    if on_conflict not in ("fail", "replace"):
        raise SdkError(f"wait_for_signal {step_id!r}: on_conflict must be 'fail' or 'replace'")
    if timeout is None:
        raise SdkError(f"wait_for_signal {step_id!r}: a timeout is required")
    timeout_text = duration_str(timeout, f"wait_for_signal {step_id!r} timeout")
    ref = ex.ref(step_id)
    if ref.memo is not None:
        raw = ref.value()
        if not isinstance(raw, dict):
            return None
        return Signal(signal=str(raw.get("signal") or signal), data=raw.get("data"))
    opts = {"signal": signal, "timeout": timeout_text, "conflict": on_conflict}
    ex.report(ref, ex.op(ref, Op.WAIT_FOR_SIGNAL, name=signal, opts=opts))
