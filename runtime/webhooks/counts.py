"""Refused deliveries, counted per source and reason (``GET /v1/webhooks`` shows them; each is
also logged, without its body). A count is versioned state like the sources, raised with
compare-and-set; under a flood of forged deliveries racing writers retry a few times and then
give up on the count (the log line stays), so counting never slows refusals down for long."""

from __future__ import annotations

import logging

from stepline.engine.ports import Clock
from stepline.engine.stores import FlowStateStore
from stepline.webhooks.model import Rejection
from stepline.webhooks.sources import FOREVER_MS

log = logging.getLogger(__name__)

COUNT_KEY = "webhooks/rejected/"
ATTEMPTS = 5


class RejectionCounts:
    def __init__(self, state: FlowStateStore, clock: Clock) -> None:
        self._state = state
        self._clock = clock

    def count(self, source: str, reason: Rejection) -> None:
        log.warning("webhook delivery to %r refused: %s", source, reason.value)
        key = COUNT_KEY + source
        for _ in range(ATTEMPTS):
            now = self._clock.now_ms()
            current = self._state.get_flow_state(key, now)
            counts = dict(current.data) if current is not None else {}
            counts[reason.value] = int(counts.get(reason.value, 0)) + 1
            version = current.version if current is not None else None
            if self._state.put_flow_state(key, counts, expect_version=version, expires_at=FOREVER_MS, now_ms=now):
                return
        log.warning("webhook rejections of %r: the count lost %d races and was not raised", source, ATTEMPTS)

    def of(self, source: str) -> dict[str, int]:
        current = self._state.get_flow_state(COUNT_KEY + source, self._clock.now_ms())
        counts = {reason.value: 0 for reason in Rejection}
        if current is not None:
            counts.update({k: int(v) for k, v in current.data.items()})
        return counts
