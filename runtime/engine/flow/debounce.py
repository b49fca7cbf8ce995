"""`debounce` {period, key, timeout}: one run, with the last event, once ``period`` has passed
without another event for the key, and never later than ``timeout`` after the window's first
event.

The window is a buffer holding the last event and the fire time; each event replaces the event
and moves the fire time, and puts a debounce message on the queue for that time. A message
that finds the fire time moved on is stale and does nothing (a later one exists); on AWS, fire
times beyond SQS's 15 minutes go through one Scheduler schedule per key, replaced by each event.
An event that finds its key's window already due starts that run itself and opens a new window.
"""

from __future__ import annotations

import functools
from typing import Any

from stepline.engine.flow.buffers import GRACE_MS, MAX_ATTEMPTS, BufferedStarts, event_doc
from stepline.engine.flow.keys import digest, rule_key
from stepline.engine.messages import Debounce
from stepline.engine.ports import FunctionRecord, StoredEvent, StoreError
from stepline.protocol.durations import parse_duration_ms


class Debouncer:
    def __init__(self, flow: BufferedStarts) -> None:
        self.flow = flow

    def add(self, fn: FunctionRecord, event: StoredEvent, context: dict[str, Any], now_ms: int) -> None:
        config = fn.config["debounce"]
        period = parse_duration_ms(config["period"])
        timeout = parse_duration_ms(config["timeout"]) if config.get("timeout") else None
        key = rule_key("debounce", fn.fn_id, config.get("key"), context)
        store, buffers = self.flow.flow_state, self.flow.buffers
        for _ in range(MAX_ATTEMPTS):
            state = store.get_flow_state(key, now_ms)
            if state is not None and (state.data.get("sealed") or state.data["fire_at"] <= now_ms):
                # That window is over (or its run is being made): its run goes first, then
                # this event opens the next window.
                buffers.finish(key, state, now_ms, functools.partial(self.flow.start_and_send, fn))
                continue
            first_at = state.data["first_at"] if state else now_ms
            fire_at = now_ms + period
            if timeout is not None:
                fire_at = min(fire_at, first_at + timeout)
            data = {"fn_id": fn.fn_id, "events": [event_doc(event)], "first_at": first_at, "fire_at": fire_at}
            # The message before the write: a crash in between leaves a stale message (ignored),
            # never a window without one. And on AWS the key's one schedule is then always the
            # last successful writer's: a writer that loses the race writes its schedule again.
            self.flow.waker.at(_message(fn.fn_id, key, fire_at), fire_at)
            if store.put_flow_state(
                key,
                data,
                expect_version=state.version if state else None,
                expires_at=fire_at + GRACE_MS,
                now_ms=now_ms,
            ):
                return
        raise StoreError(f"debounce {key}: too much contention")

    def fire(self, message: Debounce) -> None:
        """A debounce message: start the run if its window is due and still this one."""
        key, at = message.key, message.at
        now = self.flow.clock.now_ms()
        for _ in range(MAX_ATTEMPTS):
            state = self.flow.flow_state.get_flow_state(key, now)
            if state is None:
                return  # already run
            if not state.data.get("sealed") and state.data["fire_at"] > now:
                if state.data["fire_at"] == at:
                    # Early: the queue's clock ran ahead of the engine's (SQS delays are real
                    # time, a test's clock may not be). Wait for the window's time.
                    self.flow.waker.at(message, at)
                return  # else a later event moved the window on; its own message will come
            fn = self.flow.function(state.data["fn_id"])
            if fn is None:
                self.flow.flow_state.delete_flow_state(key, state.version)
                return
            if self.flow.buffers.finish(key, state, now, functools.partial(self.flow.start_and_send, fn)):
                return
        raise StoreError(f"debounce {key}: too much contention")


def _message(fn_id: str, key: str, at: int) -> Debounce:
    # ``step`` names the Scheduler timer (see messages.timer_name): one per key, so each event
    # replaces the previous window's schedule.
    return Debounce(fn_id=fn_id, key=key, at=at, step=digest(key)[:16])
