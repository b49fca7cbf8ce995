"""`throttle` {limit, period, burst, key}: run starts beyond the limit are delayed, never
dropped. Inngest's GCRA: one start per ``period / limit``, and up to ``limit * burst`` at once
when the key has been idle. A throttled start is reserved at ingest for the time it may
happen, so starts keep their arrival order."""

from __future__ import annotations

from typing import Any

from stepline.engine.flow import gcra
from stepline.engine.flow.keys import rule_key
from stepline.engine.ports import FlowStateStore, FunctionRecord
from stepline.protocol.durations import parse_duration_ms


def start_at(store: FlowStateStore, fn: FunctionRecord, context: dict[str, Any], now_ms: int) -> int:
    """When a run of ``fn`` for this event may start (``now_ms`` when not throttled)."""
    config = fn.config.get("throttle")
    if not config:
        return now_ms
    period = parse_duration_ms(config["period"])
    limit = max(int(config.get("limit") or 1), 1)
    burst = max(int(config.get("burst") or 1), 1)
    key = rule_key("throttle", fn.fn_id, config.get("key"), context)
    at = gcra.admit(store, key, now_ms, period / limit, period * burst, wait=True)
    return now_ms if at is None else at
