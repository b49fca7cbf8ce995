"""Runs waiting on events: `step.wait_for_event` and `cancel_on` rules, both stored as waiters
indexed by event name, so an incoming event finds the runs it concerns with one lookup."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stepline.engine.expressions import matches
from stepline.engine.ports import FunctionRecord, Run, RunState, StoredEvent, Waiter, WaiterKind, WaiterStore
from stepline.engine.resume import Resumer
from stepline.protocol.calls import memo_data
from stepline.protocol.durations import parse_duration_ms

log = logging.getLogger(__name__)

# A cancel rule without a timeout lasts as long as a run can: a year.
CANCEL_RULE_DEFAULT_MS = 366 * 24 * 60 * 60 * 1000


def cancel_step_id(index: int) -> str:
    return f"cancel-{index}"


def add_cancel_rules(waiters: WaiterStore, run: Run, fn: FunctionRecord, now_ms: int) -> None:
    """One waiter per `cancel` rule of the function, made when the run is created."""
    for index, rule in enumerate(fn.config.get("cancel") or []):
        timeout = rule.get("timeout")
        expires = now_ms + (parse_duration_ms(timeout) if timeout else CANCEL_RULE_DEFAULT_MS)
        waiters.add_waiter(
            Waiter(
                event_name=rule["event"],
                run_id=run.run_id,
                step_id=cancel_step_id(index),
                kind=WaiterKind.CANCEL,
                expires_at=expires,
                created_at=now_ms,
                expression=rule.get("if"),
                trigger=run.events[0] if run.events else {},
            )
        )


class Waits:
    def __init__(self, waiters: WaiterStore, resumer: Resumer, cancel_run: Callable[[str], Any]) -> None:
        self.waiters = waiters
        self.resumer = resumer
        self.cancel_run = cancel_run

    # -- events arriving -----------------------------------------------------------------------
    def on_events(self, events: list[StoredEvent], now_ms: int) -> None:
        """``on_event`` for each of a request's events, reading each name's waiters once (a
        waiter an earlier event ended is harmless to meet again: resuming and removing are
        idempotent)."""
        by_name: dict[str, list[Waiter]] = {}
        for event in events:
            if event.name not in by_name:
                by_name[event.name] = self.waiters.waiters_for_event(event.name, now_ms)
            self._meet(event, by_name[event.name])

    def on_event(self, event: StoredEvent, now_ms: int) -> None:
        self._meet(event, self.waiters.waiters_for_event(event.name, now_ms))

    def _meet(self, event: StoredEvent, waiters: list[Waiter]) -> None:
        incoming = event.wire()
        for waiter in waiters:
            if waiter.created_at > event.received_at:
                continue  # a wait only sees events that arrive after it began
            context = {"event": waiter.trigger, "async": incoming}
            if not matches(waiter.expression, context):
                continue
            if waiter.kind == WaiterKind.WAIT:
                # The memo write decides between racing events and the timeout (see resume).
                self.resumer.resume(waiter.run_id, waiter.step_id, memo_data(incoming))
            else:
                log.info("event %s cancels run %s", event.internal_id, waiter.run_id)
                self.cancel_run(waiter.run_id)
            self.waiters.remove_waiter(waiter.event_name, waiter.run_id, waiter.step_id)

    # -- clean-up when a run ends ---------------------------------------------------------------
    def remove_all(self, state: RunState, fn_config: dict[str, Any] | None) -> None:
        """Drop the run's waiters so events stop finding a run that has ended."""
        run_id = state.run.run_id
        for op in state.pending.values():
            if op.op == "WaitForEvent" and op.detail.get("event"):
                self.waiters.remove_waiter(op.detail["event"], run_id, op.step_id)
        for index, rule in enumerate((fn_config or {}).get("cancel") or []):
            self.waiters.remove_waiter(rule["event"], run_id, cancel_step_id(index))
