"""``step.sleep`` and ``step.sleep_until``.

A sleep sends its duration as a relative string (``"24h"``), so the server's clock alone fixes
the wake time: replays cannot move it, and a server running on a manual clock (tests) wakes
the run exactly when its clock passes the duration. ``sleep_until`` sends an ISO instant.
"""

from __future__ import annotations

import datetime

from stepline.protocol.durations import format_duration, parse_instant_ms
from stepline.protocol.opcodes import Op
from stepline.sdk.config import duration_ms
from stepline.sdk.errors import SdkError, iso_utc
from stepline.sdk.steps.core import Execution


def sleep(ex: Execution, step_id: str, duration: str | datetime.timedelta) -> None:
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        raise SdkError(
            f"sleep {step_id!r}: give the duration as a string ('24h', '30m') or a timedelta, not a bare number"
        )
    ms = duration_ms(duration, f"sleep {step_id!r}")
    ref = ex.ref(step_id)
    if ref.memo is not None:
        ref.value()
        return None
    # The user's own spelling when it is a string ("24h" stays "24h"); a timedelta in the
    # largest unit that divides it.
    text = duration.strip() if isinstance(duration, str) else format_duration(ms)
    ex.report(ref, ex.op(ref, Op.SLEEP, name=text))


def sleep_until(ex: Execution, step_id: str, until: datetime.datetime | str) -> None:
    if isinstance(until, str):
        if parse_instant_ms(until) is None:
            raise SdkError(f"sleep_until {step_id!r}: {until!r} is not an ISO 8601 instant")
        until = datetime.datetime.fromisoformat(until.strip().replace("Z", "+00:00"))
    if not isinstance(until, datetime.datetime):
        raise SdkError(f"sleep_until {step_id!r}: expected a datetime or an ISO 8601 string")
    ref = ex.ref(step_id)
    if ref.memo is not None:
        ref.value()
        return None
    ex.report(ref, ex.op(ref, Op.SLEEP, name=iso_utc(until)))
