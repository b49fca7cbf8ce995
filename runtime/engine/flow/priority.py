"""`priority` {run}: a CEL expression giving seconds (-600..600) by which a run's queued work
jumps ahead of (or falls behind) other work waiting for the same concurrency slots."""

from __future__ import annotations

from typing import Any

from stepline.engine.expressions import EvaluationError, ExpressionError, evaluate

MAX_FACTOR_S = 600


def factor_ms(config: dict[str, Any], event: dict[str, Any]) -> int:
    """The run's priority in milliseconds; 0 without a priority, or when the expression fails
    or gives something other than a number (as Inngest: the run is queued normally)."""
    expression = ((config.get("priority") or {}).get("run")) if config else None
    if not expression:
        return 0
    try:
        value = evaluate(expression, {"event": event})
    except (ExpressionError, EvaluationError):  # a field missing, types that do not compare
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return int(max(-MAX_FACTOR_S, min(MAX_FACTOR_S, int(value)))) * 1000
