"""`rateLimit` {limit, period, key}: events beyond the limit start no run (they stay stored and
listed). Inngest's GCRA with a burst of a tenth of the limit: ``limit // 10 + 1`` runs at once
on an idle key, then one per ``period / limit``."""

from __future__ import annotations

from typing import Any

from stepline.engine.expressions import EvaluationError, ExpressionError, evaluate
from stepline.engine.flow import gcra
from stepline.engine.flow.keys import rule_key
from stepline.engine.ports import FlowStateStore, FunctionRecord
from stepline.protocol.durations import parse_duration_ms


def allows(store: FlowStateStore, fn: FunctionRecord, context: dict[str, Any], now_ms: int) -> bool:
    config = fn.config.get("rateLimit")
    if not config:
        return True
    expression = config.get("key")
    if expression and _is_false(expression, context):
        return True  # Inngest: a key that evaluates to false exempts the event
    period = parse_duration_ms(config["period"])
    limit = max(int(config.get("limit") or 1), 1)
    emission = period / limit
    key = rule_key("ratelimit", fn.fn_id, expression, context)
    return gcra.admit(store, key, now_ms, emission, emission * (limit // 10 + 1), wait=False) is not None


def _is_false(expression: str, context: dict[str, Any]) -> bool:
    try:
        return evaluate(expression, context) is False
    except (ExpressionError, EvaluationError):  # a key that cannot be evaluated is just a key
        return False
