"""Expiry: ended runs and stored events erased once they are past the retention period
(``retention_days``; the stores give each its expiry, see ``stepline.engine.stores.RunEraser``).

Runs on the sweep (every ``sweep_interval_s``: the stack's sweep schedule, or ``stepline
dev``'s sweeper thread), at most ``MAX_PER_PASS`` runs and events at a time; when more are due
an ``expire`` message carries on at once. An expired run goes with its steps, links and payloads
(``RunEraser.erase_run``); its waiters and end events need nothing: the end removed the first,
and the second are events, expiring on their own clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from stepline.engine import messages
from stepline.engine.ports import Clock, RunEraser, WorkQueue
from stepline.engine.records import NOTHING, Erased

log = logging.getLogger("stepline.erasure")

MAX_PER_PASS = 200


@dataclass
class ExpiryReport:
    runs: int = 0
    events: int = 0
    erased: Erased = NOTHING
    more: bool = False


class Retention:
    def __init__(self, store: RunEraser, queue: WorkQueue, clock: Clock) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock

    @property
    def enabled(self) -> bool:
        return bool(self.store.retention_ms)

    def expire(self, most: int = MAX_PER_PASS) -> ExpiryReport:
        report = ExpiryReport()
        if not self.enabled:
            return report
        now = self.clock.now_ms()
        run_ids = self.store.expired_runs(now, limit=most)
        for run_id in run_ids:
            report.erased += self.store.erase_run(run_id)
        event_ids = self.store.expired_events(now, limit=most)
        for event_id in event_ids:
            report.erased += self.store.erase_event(event_id)
        report.runs, report.events = len(run_ids), len(event_ids)
        report.more = len(run_ids) >= most or len(event_ids) >= most
        if run_ids or event_ids:
            log.info(
                "expired past the retention: %d runs, %d events (%s)%s",
                report.runs,
                report.events,
                ", ".join(f"{k} {v}" for k, v in report.erased.as_json().items()),
                "; more to do" if report.more else "",
            )
        return report

    def handle(self, message: messages.Sweep | messages.Expire) -> None:
        """The ``expire`` message (and the tail of every sweep): one pass, and another message
        while more is due."""
        if self.expire().more:
            self.queue.send(messages.expire())
