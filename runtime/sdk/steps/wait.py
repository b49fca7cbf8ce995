"""``step.wait_for_event``: pause until a matching event arrives, or the timeout passes."""

from __future__ import annotations

import datetime
from typing import Any

from stepline.protocol.durations import MAX_LOOKBACK_MS
from stepline.protocol.opcodes import Op
from stepline.sdk.config import duration_ms, duration_str
from stepline.sdk.errors import SdkError
from stepline.sdk.events import Event, EventData, event_name_of, from_wire_event, is_event_model
from stepline.sdk.steps.core import Execution


def wait_for_event(
    ex: Execution,
    step_id: str,
    event: str | type[EventData],
    timeout: str | datetime.timedelta,
    if_: str | None = None,
    lookback: str | datetime.timedelta | None = None,
) -> Event[Any] | None:
    """The matching event, or None on timeout. In ``if_``, ``event`` is this run's trigger and
    ``async`` the candidate, e.g. ``"async.data.order_id == event.data.order_id"``. With
    ``lookback`` (at most 24 h), an event that arrived up to that long before the wait began
    matches too (a Stepline extension: other servers ignore it)."""
    model = event if is_event_model(event) else None
    name = event_name_of(model) if model is not None else event
    if not isinstance(name, str) or not name:
        raise SdkError(f"wait_for_event {step_id!r}: event must be a name or an EventData model")
    if timeout is None:
        raise SdkError(f"wait_for_event {step_id!r}: a timeout is required")
    timeout_text = duration_str(timeout, f"wait_for_event {step_id!r} timeout")
    opts: dict[str, Any] = {"if": if_, "timeout": timeout_text}
    if lookback is not None:
        if duration_ms(lookback, f"wait_for_event {step_id!r} lookback") > MAX_LOOKBACK_MS:
            raise SdkError(f"wait_for_event {step_id!r}: lookback is at most 24h")
        opts["lookback"] = duration_str(lookback, f"wait_for_event {step_id!r} lookback")
    ref = ex.ref(step_id)
    if ref.memo is not None:
        raw = ref.value()
        if raw is None:
            return None
        return from_wire_event(raw, {name: model} if model is not None else None)
    ex.report(ref, ex.op(ref, Op.WAIT_FOR_EVENT, name=name, opts=opts))
