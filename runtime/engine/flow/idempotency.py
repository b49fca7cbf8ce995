"""`idempotency`: a CEL key; one run per key value within 24 hours. The first run to claim the
key holds it for the window; later events with the same value start nothing (they stay
stored). A retried start of the same run (same derived run id) finds itself the holder and goes
on, so a crash between the claim and the run is harmless."""

from __future__ import annotations

from typing import Any

from stepline.engine.flow.keys import rule_key
from stepline.engine.ports import FunctionRecord, KeyClaims
from stepline.engine.records import DAY_MS

WINDOW_MS = DAY_MS


def claim(keys: KeyClaims, fn: FunctionRecord, context: dict[str, Any], run_id: str, now_ms: int) -> bool:
    """True when this run may start (no idempotency key, or the key is this run's)."""
    expression = fn.config.get("idempotency")
    if not expression:
        return True
    key = rule_key("idempotency", fn.fn_id, expression, context)
    return keys.claim_key(key, run_id, now_ms + WINDOW_MS, now_ms) == run_id
