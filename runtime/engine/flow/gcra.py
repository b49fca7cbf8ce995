"""The generic cell rate algorithm on a versioned flow state: the theoretical arrival time
(``tat``) of the next request, moved on by one emission interval per request admitted.

Throttle and rate limit differ only in what happens to a request that arrives early: a throttled
run start is reserved for the time it may happen (delayed, never dropped); a rate-limited event
starts nothing.
"""

from __future__ import annotations

import math

from stepline.engine.ports import FlowStateStore, StoreError

# Compare-and-set attempts before giving up: each lost attempt means another request was
# admitted in between, so this bounds the contention one key can see within one call.
MAX_ATTEMPTS = 64


def admit(
    store: FlowStateStore,
    key: str,
    now_ms: int,
    emission_ms: float,
    tolerance_ms: float,
    *,
    wait: bool,
) -> int | None:
    """Admit one request under ``key``: up to ``tolerance_ms / emission_ms`` at once, then one
    per ``emission_ms``. Returns when it may proceed (``now_ms``, or later when ``wait``), or
    None when it would have to wait and ``wait`` is False."""
    for _ in range(MAX_ATTEMPTS):
        state = store.get_flow_state(key, now_ms)
        tat = max(int(state.data.get("tat", now_ms)), now_ms) if state else now_ms
        new_tat = math.ceil(tat + emission_ms)
        allow_at = math.ceil(new_tat - tolerance_ms)
        if allow_at > now_ms and not wait:
            return None
        # The state is only worth keeping while it is ahead of the clock: an absent state
        # reads as tat = now, which is what an old one would give anyway.
        if store.put_flow_state(
            key,
            {"tat": new_tat},
            expect_version=state.version if state else None,
            expires_at=new_tat,
            now_ms=now_ms,
        ):
            return max(now_ms, allow_at)
    raise StoreError(f"flow key {key}: too much contention to admit a request")
