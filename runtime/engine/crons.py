"""Cron triggers: one schedule per (function, cron) made at sync, and a run per fire time.

On AWS each is an EventBridge Scheduler cron schedule; in `stepline dev` a row the timer thread
fires. Either way the message lands here. The run's event id and ``ts`` are derived from the
function and the time the fire was due (never from when it arrived: Scheduler fires anywhere
within the minute and retries late), so two crons of one function firing together, or a fire
delivered twice or late, start one run, and a backlog of fires never merges two minutes.
"""

from __future__ import annotations

import hashlib
import logging
import random
from datetime import datetime
from typing import Any

from stepline.engine import messages
from stepline.engine.ids import derived_ulid
from stepline.engine.ports import (
    AppStore,
    Clock,
    CronSchedule,
    EventStore,
    FunctionRecord,
    StoredEvent,
    Timers,
    WorkQueue,
)
from stepline.engine.runs import RunStarter
from stepline.engine.scheduling import Waker
from stepline.protocol.cron import parse_cron
from stepline.protocol.durations import parse_duration_ms

log = logging.getLogger(__name__)

SCHEDULED = "inngest/scheduled.timer"
MINUTE_MS = 60_000


def _digest(text: str, n: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:n]


def app_prefix(app_id: str) -> str:
    return f"cron-{_digest(app_id, 10)}-"


def due_ms(body: dict[str, Any]) -> int | None:
    """When a cron fire was due: ``at`` (epoch ms, put by the local timer driver) or
    ``scheduled_time`` (ISO 8601 in UTC, what EventBridge Scheduler puts for its placeholder)."""
    at = body.get("at")
    if isinstance(at, int) and not isinstance(at, bool):
        return at
    text = body.get("scheduled_time")
    if isinstance(text, str):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is not None:
            return int(when.timestamp() * 1000)
    return None


def schedule_name(app_id: str, fn_id: str, cron: str) -> str:
    return app_prefix(app_id) + _digest(f"{fn_id}\x1f{cron}", 20)


class Crons:
    def __init__(
        self,
        events: EventStore,
        apps: AppStore,
        queue: WorkQueue,
        timers: Timers,
        waker: Waker,
        clock: Clock,
        starter: RunStarter,
    ) -> None:
        self.events = events
        self.apps = apps
        self.queue = queue
        self.timers = timers  # the cron schedules themselves
        self.waker = waker  # a fire's jittered start
        self.clock = clock
        self.starter = starter

    def sync_app(self, app_id: str, functions: list[FunctionRecord]) -> None:
        """Make the app's cron schedules exactly those its functions declare."""
        wanted: dict[str, CronSchedule] = {}
        for fn in functions:
            for trigger in fn.config.get("triggers") or []:
                cron = trigger.get("cron")
                if not cron:
                    continue
                spec = parse_cron(cron)
                name = schedule_name(app_id, fn.fn_id, cron)
                wanted[name] = CronSchedule(name, spec.expression, spec.timezone, messages.cron(fn.fn_id, cron))
        prefix = app_prefix(app_id)
        existing = {n for n in self.timers.list_crons() if n.startswith(prefix)}
        for name in existing - set(wanted):
            self.timers.cancel(name)
        for name, schedule in wanted.items():
            if name not in existing:
                self.timers.schedule_cron(schedule)

    def fire(self, body: dict[str, Any]) -> None:
        fn = self.apps.get_function(body.get("fn_id", ""))
        cron = body.get("cron")
        trigger = next((t for t in (fn.config.get("triggers") or []) if t.get("cron") == cron), None) if fn else None
        if fn is None or trigger is None or not isinstance(cron, str):
            log.info("cron %r of %r no longer exists; ignoring its fire", cron, body.get("fn_id"))
            return
        at = due_ms(body)
        if at is None:
            # Only a fire from before due times were carried: the minute it arrived in.
            log.warning("cron %r of %r fired without its due time; taking the current minute", cron, fn.fn_id)
            at = self.clock.now_ms() // MINUTE_MS * MINUTE_MS
        jitter = trigger.get("jitter")
        if jitter and not body.get("jittered"):
            delay = random.randint(0, parse_duration_ms(jitter))
            self.waker.at({**body, "at": at, "jittered": True}, at + delay)
            return
        self.start(fn, cron, int(at))

    def start(self, fn: FunctionRecord, cron: str, at_ms: int) -> str:
        internal_id = derived_ulid(at_ms, fn.fn_id, SCHEDULED)
        event = StoredEvent(
            internal_id=internal_id,
            id=internal_id,
            name=SCHEDULED,
            data={"cron": cron},
            ts=at_ms,
            received_at=self.clock.now_ms(),
        )
        [stored] = self.events.save_events([event], self.clock.now_ms())
        run_id, message = self.starter.start_for_event(fn, stored)
        if message is not None:
            self.queue.send(message)
        return run_id
