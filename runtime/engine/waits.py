"""Runs waiting on events: `step.wait_for_event` and `cancel_on` rules, both stored as waiters by
event name, and by the equality their expression states when it states one
(``stepline.engine.waiter_index``), so an incoming event reads only the waiters it can match.

Matching one event is bounded work: at most ``MATCH_BUDGET`` waiters are read inside the request
that brought it (the Event API, or whatever message sent it); the rest is handed to the work
queue as a ``match_waiters`` message, which goes on from where it stopped, as often as needed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from stepline.engine import messages
from stepline.engine.expressions import matches
from stepline.engine.ports import (
    EventStore,
    FunctionRecord,
    Run,
    RunState,
    SignalStore,
    StoredEvent,
    Waiter,
    WaiterKind,
    WaiterStore,
    WorkQueue,
)
from stepline.engine.resume import Resumer
from stepline.engine.waiter_index import event_keys, match_of
from stepline.protocol.calls import memo_data
from stepline.protocol.durations import parse_duration_ms
from stepline.protocol.opcodes import Op

log = logging.getLogger(__name__)

# A cancel rule without a timeout lasts as long as a run can: a year.
CANCEL_RULE_DEFAULT_MS = 366 * 24 * 60 * 60 * 1000
# Waiters read for one event inside one request or message; the rest goes on in another message.
MATCH_BUDGET = 100


def cancel_step_id(index: int) -> str:
    return f"cancel-{index}"


def new_waiter(
    event_name: str, run: Run, step_id: str, kind: WaiterKind, expression: str | None, expires_at: int, now_ms: int
) -> Waiter:
    """A waiter for the run, keyed by the equality its expression states, if any."""
    trigger = run.events[0] if run.events else {}
    match = match_of(event_name, expression, trigger)
    return Waiter(
        event_name=event_name,
        run_id=run.run_id,
        step_id=step_id,
        kind=kind,
        expires_at=expires_at,
        created_at=now_ms,
        expression=expression,
        trigger=trigger,
        match_field=match[0] if match else None,
        match_key=match[1] if match else None,
    )


def cancel_rule_waiter(run: Run, index: int, rule: dict[str, Any], now_ms: int) -> Waiter:
    timeout = rule.get("timeout")
    expires = now_ms + (parse_duration_ms(timeout) if timeout else CANCEL_RULE_DEFAULT_MS)
    return new_waiter(rule["event"], run, cancel_step_id(index), WaiterKind.CANCEL, rule.get("if"), expires, now_ms)


def add_cancel_rules(waiters: WaiterStore, run: Run, fn: FunctionRecord, now_ms: int) -> None:
    """One waiter per `cancel` rule of the function, made when the run is created."""
    for index, rule in enumerate(fn.config.get("cancel") or []):
        waiters.add_waiter(cancel_rule_waiter(run, index, rule, now_ms))


class Waits:
    def __init__(
        self,
        waiters: WaiterStore,
        events: EventStore,
        queue: WorkQueue,
        resumer: Resumer,
        cancel_run: Callable[[str], Any],
        signals: SignalStore,
    ) -> None:
        self.waiters = waiters
        self.signals = signals  # a run that ends stops waiting for its signals too
        self.events = events  # a match_waiters message names its event: read it back
        self.queue = queue
        self.resumer = resumer
        self.cancel_run = cancel_run

    # -- events arriving -----------------------------------------------------------------------
    def on_events(self, events: list[StoredEvent], now_ms: int) -> None:
        """Resume or cancel the runs whose waiters these events match: for each, the keyed
        buckets its own values give, then the unkeyed one; past the budget, a message goes on
        with it. The fields in use are read once per event name."""
        fields: dict[str, list[str]] = {}
        for event in events:
            if event.name not in fields:
                fields[event.name] = self.waiters.waiter_fields(event.name)
            buckets: list[str | None] = [*event_keys(event.name, fields[event.name], event.wire()), None]
            self._match(event, now_ms, buckets, None)

    def go_on(self, message: messages.MatchWaiters) -> None:
        """A ``match_waiters`` message: the rest of an event's matching."""
        event = self.events.get_event(message.event)
        if event is None:
            log.warning("match_waiters: event %s is gone; nothing to match", message.event)
            return
        now = message.now or event.received_at
        self._match(event, now, list(message.buckets), message.after)

    def _match(self, event: StoredEvent, now_ms: int, buckets: list[str | None], after: str | None) -> None:
        incoming = event.wire()
        budget = MATCH_BUDGET
        while buckets:
            if budget <= 0:
                self.queue.send(messages.match_waiters(event.internal_id, buckets, after, now_ms))
                return
            page = self.waiters.waiters_for_event(event.name, now_ms, buckets[0], limit=budget, after=after)
            budget -= max(len(page.waiters), 1)
            for waiter in page.waiters:
                self._offer(event, incoming, waiter)
            after = page.after
            if after is None:
                buckets.pop(0)

    def _offer(self, event: StoredEvent, incoming: dict[str, Any], waiter: Waiter) -> None:
        if waiter.created_at > event.received_at:
            return  # a wait only sees events that arrive after it began
        context = {"event": waiter.trigger, "async": incoming}
        if not matches(waiter.expression, context):
            return
        if waiter.kind == WaiterKind.WAIT:
            # The memo write decides between racing events and the timeout (see resume). The
            # wait's span links to the span that sent the event, when its sender sent one.
            with self.resumer.telemetry.sent_by(event.trace):
                self.resumer.resume(waiter.run_id, waiter.step_id, memo_data(incoming))
        else:
            log.info("event %s cancels run %s", event.internal_id, waiter.run_id)
            self.cancel_run(waiter.run_id)
        self.waiters.remove_waiter(waiter.event_name, waiter.run_id, waiter.step_id, waiter.match_key)

    # -- clean-up when a run ends ---------------------------------------------------------------
    def remove_all(self, state: RunState, fn_config: dict[str, Any] | None) -> None:
        remove_waiters(self.waiters, self.signals, state, fn_config)


def remove_waiters(
    waiters: WaiterStore, signals: SignalStore, state: RunState, fn_config: dict[str, Any] | None
) -> None:
    """Drop the run's waiters so events stop finding a run that has ended (a wait's op names its
    waiter's bucket; a cancel rule's is made again as it was at first), and its signal waits so
    a send finds no run that has ended."""
    run = state.run
    for op in state.pending.values():
        event = op.detail.get("event")
        if op.op == Op.WAIT_FOR_EVENT and isinstance(event, str) and event:
            waiters.remove_waiter(event, run.run_id, op.step_id, pending_match_key(op.detail))
        signal = op.detail.get("signal")
        if op.op == Op.WAIT_FOR_SIGNAL and isinstance(signal, str):
            signals.remove_signal_wait(signal, run.run_id, op.step_id)
    for index, rule in enumerate((fn_config or {}).get("cancel") or []):
        waiter = cancel_rule_waiter(run, index, rule, 0)
        waiters.remove_waiter(waiter.event_name, run.run_id, waiter.step_id, waiter.match_key)


def pending_match_key(detail: dict[str, Any]) -> str | None:
    """The bucket of a wait's waiter, as its pending op recorded it (None: unkeyed)."""
    key = detail.get("match_key")
    return key if isinstance(key, str) and key else None
