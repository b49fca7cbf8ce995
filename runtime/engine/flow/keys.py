"""Flow-control keys: a rule's CEL ``key`` evaluated against the triggering event, reduced to a
short, stable store key.

Every rule keeps its state under ``<rule>:<scope>:<digest>``, so keys have a bounded length
whatever the user's key values are, and two rules of one function never share state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stepline.engine.expressions import EvaluationError, ExpressionError, evaluate


def key_value(expression: str | None, context: dict[str, Any]) -> str:
    """The value a ``key`` expression gives for this event, as text: "" without an expression,
    strings as they are, anything else as JSON. An expression that fails on this event's shape
    gives "null", so such events share one key rather than failing ingest."""
    if not expression:
        return ""
    try:
        value = evaluate(expression, context)
    except (ExpressionError, EvaluationError):  # a field missing, types that do not compare
        value = None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


def digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def rule_key(rule: str, fn_id: str, expression: str | None, context: dict[str, Any]) -> str:
    """The store key of a per-function rule (throttle, rate limit, debounce, batch, idempotency,
    singleton) for this event."""
    return f"{rule}:{fn_id}:{digest(key_value(expression, context))}"


def event_context(event: dict[str, Any]) -> dict[str, Any]:
    """What flow-control expressions see: the event as the SDK sees it."""
    return {"event": event}
