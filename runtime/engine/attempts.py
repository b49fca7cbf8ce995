"""A step's failed attempts, kept for operators: each one's start, end and error.

A failed attempt leaves no memo (the step is retried), so its record rides on the retry's queue
message (``messages.Call.failures``) from attempt to attempt, and the attempt that settles
the step writes the list into its memo's detail. The SDK never sees it. Errors are cut to their
name and a bounded message: the list travels in every retry message of the step.
"""

from __future__ import annotations

from typing import Any

MAX_MESSAGE_CHARS = 500


def failed_attempt(attempt: int, started_at: int, ended_at: int, error: dict[str, Any] | None) -> dict[str, Any]:
    error = error or {}
    message = str(error.get("message") or "")
    return {
        "attempt": attempt,
        "started_at": started_at,
        "ended_at": ended_at,
        "error": {"name": str(error.get("name") or "Error"), "message": message[:MAX_MESSAGE_CHARS]},
    }
