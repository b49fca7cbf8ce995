"""The event an invoked run starts with, and how it names its caller (docs/protocol.md §9.1).

``inngest/function.invoked`` starts the child of a ``step.invoke`` (and an operator's invoke);
the child's event carries ``data._inngest.correlation_id``, ``<caller run id>.<step id>``, which is
how the child's end finds the step to settle, and its trace the caller's."""

from __future__ import annotations

from typing import Any

INVOKED = "inngest/function.invoked"


def correlation_id(run_id: str, step_id: str) -> str:
    return f"{run_id}.{step_id}"


def parse_correlation(event: dict[str, Any]) -> tuple[str, str] | None:
    """(caller run id, step id) when ``event`` is an invocation, else None."""
    if event.get("name") != INVOKED:
        return None
    meta = (event.get("data") or {}).get("_inngest") or {}
    value = meta.get("correlation_id")
    if not isinstance(value, str) or "." not in value:
        return None
    run_id, step_id = value.split(".", 1)
    return run_id, step_id
