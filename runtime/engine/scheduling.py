"""Putting a message on the queue at a future time, with second precision at any distance.

Up to the queue's own delay cap (15 minutes on SQS) the message goes straight on the queue with a
delay. Beyond it, a timer fires the message early, carrying ``not_before``; whoever receives a
message whose ``not_before`` is still ahead puts it back with the remaining delay. So a wake-up a
year away costs one schedule plus one delayed send, and lands within a second of its time even
though EventBridge Scheduler itself only promises a one-minute window.
"""

from __future__ import annotations

import math

from stepline.engine.messages import Message, timer_name, with_not_before
from stepline.engine.ports import Clock, Timers, WorkQueue

# Fire timers this long before the cap runs out, to absorb Scheduler's delivery window.
SCHEDULER_SLACK_MS = 2 * 60 * 1000


class Waker:
    def __init__(self, queue: WorkQueue, timers: Timers, clock: Clock) -> None:
        self.queue = queue
        self.timers = timers
        self.clock = clock

    def at(self, message: Message, at_ms: int) -> None:
        delay_ms = at_ms - self.clock.now_ms()
        cap_ms = self.queue.max_delay_seconds * 1000
        message = with_not_before(message, None)
        if delay_ms <= 0:
            self.queue.send(message.to_body())
        elif delay_ms <= cap_ms:
            self.queue.send(message.to_body(), math.ceil(delay_ms / 1000))
        else:
            fire_at = at_ms - cap_ms + SCHEDULER_SLACK_MS
            self.timers.schedule(timer_name(message), fire_at, with_not_before(message, at_ms).to_body())

    def after(self, message: Message, delay_ms: int) -> None:
        self.at(message, self.clock.now_ms() + delay_ms)

    def early(self, message: Message) -> bool:
        """Re-queue a message that arrived before its ``not_before``; True if it did."""
        if message.not_before is None or message.not_before <= self.clock.now_ms():
            return False
        self.at(message, message.not_before)
        return True
