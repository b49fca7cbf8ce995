"""Erasing data on request (data protection): one run, every run of one event, or the events a
CEL filter matches within a time window, each with everything stored for it.

What goes with a run: its steps and pending ops, its waiters, the links its events hold, its
large values in the payload store, and the events its end emitted (``inngest/function.*``, which
carry its events and output) together with the runs those started (an ``on_failure`` handler's,
say), to a bounded depth. A live run is cancelled first, so whatever waits on it (an invoking
parent) is answered and its in-flight messages find it gone; a step call in flight at that
moment may still write its result afterwards, so an ``erase`` message erases the run once more
after the longest a call can take.

What goes with an event: every run it started, then the event itself with its dedupe claim and
payloads. An event still held in a debounce or batch buffer goes with the run the buffer starts:
erase again once that run exists.

Every erasure is audited in the log (``stepline.erasure``): what was asked (a filter by its
SHA-256, never its text, which may name the very person whose data goes), and each run and event
erased by id with counts. Erased data stays in DynamoDB's point-in-time recovery for its window.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stepline.engine import messages
from stepline.engine.cancellation import LIVE, Cancellation
from stepline.engine.ending import lifecycle_event_ids
from stepline.engine.expressions import matches
from stepline.engine.ports import Clock, EventStore, RunEraser, RunStore, WorkQueue
from stepline.engine.records import NOTHING, Erased
from stepline.settings import Settings

audit = logging.getLogger("stepline.erasure")

# How deep erasing a run follows its end events into the runs they started, and those runs' own
# end events: far enough for an on_failure handler and its announcement.
MAX_DEPTH = 3
# Events one filtered erasure request looks at before it answers with a cursor (an API call must
# end within API Gateway's 30 s).
SCAN_PER_REQUEST = 200
_PAGE = 50


@dataclass
class ErasureReport:
    """What one erasure request removed; ``cursor`` continues a filtered erasure (``more``)."""

    erased: Erased = NOTHING
    run_ids: list[str] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    scanned: int = 0
    more: bool = False
    cursor: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "erased": self.erased.as_json(),
            "run_ids": self.run_ids,
            "event_ids": self.event_ids,
            "scanned": self.scanned,
            "more": self.more,
            "cursor": self.cursor,
        }


class Erasure:
    def __init__(
        self,
        runs: RunStore,
        events: EventStore,
        eraser: RunEraser,
        queue: WorkQueue,
        clock: Clock,
        cancellation: Cancellation,
        settings: Settings,
        remove_waiters: Callable[[str], None],
    ) -> None:
        self.runs = runs
        self.events = events
        self.eraser = eraser
        self.queue = queue
        self.clock = clock
        self.cancellation = cancellation
        self.settings = settings
        # Removes a run's waiters (the engine's Waits know their event names).
        self.remove_waiters = remove_waiters

    # -- requests ------------------------------------------------------------------------------
    def erase_run(self, run_id: str, *, reason: str = "requested") -> ErasureReport:
        report = ErasureReport()
        audit.info("erasure: run %s (%s)", run_id, reason)
        self._run(run_id, report, depth=0)
        self._done(report)
        return report

    def erase_event(self, internal_id: str, *, reason: str = "requested") -> ErasureReport:
        report = ErasureReport()
        audit.info("erasure: event %s and its runs (%s)", internal_id, reason)
        self._event(internal_id, report, depth=0)
        self._done(report)
        return report

    def erase_matching(
        self,
        expression: str,
        *,
        received_after: int,
        received_before: int,
        name: str | None = None,
        cursor: str | None = None,
        scan: int = SCAN_PER_REQUEST,
    ) -> ErasureReport:
        """Every event received inside the window (bounds exclusive), of ``name`` when given,
        whose data ``expression`` (CEL over ``event``) matches, with its runs. Looks at up to
        ``scan`` events; ``more`` and ``cursor`` say where the next call goes on."""
        report = ErasureReport()
        digest = hashlib.sha256(expression.encode()).hexdigest()
        audit.info(
            "erasure: events received after %s and before %s%s matching a filter (sha256 %s, %d chars)",
            received_after,
            received_before,
            f" named {name!r}" if name else "",
            digest,
            len(expression),
        )
        while report.scanned < scan:
            events, cursor = self.events.list_events(
                limit=min(_PAGE, scan - report.scanned),
                cursor=cursor,
                name=name,
                received_after=received_after,
                received_before=received_before,
            )
            report.scanned += len(events)
            for event in events:
                if matches(expression, {"event": event.wire()}):
                    self._event(event.internal_id, report, depth=0)
            if cursor is None:
                break
        report.more, report.cursor = cursor is not None, cursor
        self._done(report)
        return report

    def handle(self, message: messages.Erase) -> None:
        """The ``erase`` message: erase a run once more, after a call that was in flight when it
        was erased could have written its result."""
        self._run(message.run_id, ErasureReport(), depth=0, again=True)

    # -- one run, one event ----------------------------------------------------------------------
    def _run(self, run_id: str, report: ErasureReport, *, depth: int, again: bool = False) -> None:
        if run_id in report.run_ids:
            return
        report.run_ids.append(run_id)
        run = self.runs.get_run(run_id)
        if run is not None and run.status in LIVE:
            self.cancellation.cancel(run_id, "the run was erased")
            # Its call in flight (if any) ends within the step timeout; then erase what it wrote.
            delay = min(int(self.settings.step_timeout_s) + 60, self.queue.max_delay_seconds)
            self.queue.send(messages.erase(run_id), delay_seconds=delay)
        if run is not None:
            self.remove_waiters(run_id)
            if depth < MAX_DEPTH:
                for event_id in lifecycle_event_ids(run):
                    if self.events.get_event(event_id) is not None:
                        self._event(event_id, report, depth=depth + 1)
        erased = self.eraser.erase_run(run_id)
        report.erased += erased
        if erased != NOTHING or not again:
            audit.info("erased run %s%s: %s", run_id, " (again, after its last call)" if again else "", _counts(erased))

    def _event(self, internal_id: str, report: ErasureReport, *, depth: int) -> None:
        if internal_id in report.event_ids:
            return
        report.event_ids.append(internal_id)
        for run in self.runs.runs_for_event(internal_id):
            self._run(run.run_id, report, depth=depth)
        erased = self.eraser.erase_event(internal_id)
        report.erased += erased
        audit.info("erased event %s: %s", internal_id, _counts(erased))

    @staticmethod
    def _done(report: ErasureReport) -> None:
        audit.info(
            "erasure done: %d runs, %d events, %s%s",
            len(report.run_ids),
            len(report.event_ids),
            _counts(report.erased),
            " (more to do: call again with the cursor)" if report.more else "",
        )


def _counts(erased: Erased) -> str:
    return ", ".join(f"{name} {count}" for name, count in erased.as_json().items())
