"""CEL as the engine uses it: whether an event matches a trigger, a wait or a cancel rule.

Compiling, limits and evaluation live in ``stepline.protocol.expressions``; this adds the
engine's rule that an expression which cannot be evaluated on an event is no match.
"""

from __future__ import annotations

from typing import Any

from stepline.protocol.expressions import EvaluationError, ExpressionError, compile_expression, evaluate

__all__ = ["EvaluationError", "ExpressionError", "compile_expression", "evaluate", "matches"]


def matches(source: str | None, context: dict[str, Any]) -> bool:
    """True when there is no expression or it evaluates to true.

    A reference to a missing field, an evaluation error, or an expression refused by the limits
    (one stored before they existed) means "no match", never an exception: one event with an
    unexpected shape must not break ingest for the others.
    """
    if not source:
        return True
    try:
        return evaluate(source, context) is True
    except (ExpressionError, EvaluationError):
        return False
