"""`singleton` {key, mode}: at most one live run per key. A new run is skipped while another
holds the key (``skip``), or the holder is cancelled and the new run takes its place
(``cancel``).

The key is a claim holding the live run's id. It is released when the run ends through the
executor; a run that ended any other way (cancelled) is found ended by the next claimant, which
takes the key over, so a claim never outlives its run in effect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stepline.engine.flow.keys import rule_key
from stepline.engine.ports import FunctionRecord, KeyClaims, RunStore

log = logging.getLogger(__name__)

# A claim outlives any run (runs may sleep for a year); it is released or taken over long before.
CLAIM_MS = 400 * 24 * 3600 * 1000
_MAX_TAKEOVERS = 8


def key_for(fn: FunctionRecord, context: dict[str, Any]) -> str | None:
    config = fn.config.get("singleton")
    if not config:
        return None
    return rule_key("singleton", fn.fn_id, config.get("key"), context)


def claim(
    keys: KeyClaims,
    runs: RunStore,
    fn: FunctionRecord,
    context: dict[str, Any],
    run_id: str,
    now_ms: int,
    cancel: Callable[[str, str], Any],
) -> bool:
    """True when the run may start: it holds the key now."""
    key = key_for(fn, context)
    if key is None:
        return True
    mode = fn.config["singleton"].get("mode", "skip")
    holder = keys.claim_key(key, run_id, now_ms + CLAIM_MS, now_ms)
    for _ in range(_MAX_TAKEOVERS):
        if holder == run_id:
            return True
        current = runs.get_run(holder)
        if current is not None and not current.status.terminal:
            if mode != "cancel":
                log.info("singleton %s: run %s skipped, %s is live", fn.fn_id, run_id, holder)
                return False
            cancel(holder, f"singleton: replaced by run {run_id}")
        holder = keys.claim_key(key, run_id, now_ms + CLAIM_MS, now_ms, replacing=holder)
    return holder == run_id


def release(keys: KeyClaims, fn_config: dict[str, Any] | None, run_id: str, event: dict[str, Any]) -> None:
    """The run ended: free its key for the next run."""
    config = (fn_config or {}).get("singleton")
    if not config:
        return
    fn_id = (fn_config or {}).get("id", "")
    keys.release_key(rule_key("singleton", fn_id, config.get("key"), {"event": event}), run_id)
