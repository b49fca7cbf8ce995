"""The local driver: what SQS's event source mapping and EventBridge Scheduler do on AWS, done by
threads. Workers take messages off the queue and hand them to the engine's delivery (the
executor, and the dead-letter store for poison); one timer thread moves due timers onto the
queue; one sweeper thread re-arms stalled runs (stepline.engine.sweeper). Independent runs
execute concurrently, one per worker."""

from __future__ import annotations

import logging
import threading
import time

from stepline.engine.core import Engine
from stepline.engine.delivery import Outcome

log = logging.getLogger(__name__)

IDLE_POLL_S = 0.2
TIMER_POLL_S = 0.2


class LocalDriver:
    def __init__(self, engine: Engine, workers: int = 4) -> None:
        self.engine = engine
        self.queue = engine.backend.queue
        self.timers = engine.backend.timers
        self.workers = workers
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.busy = 0
        self._busy_lock = threading.Lock()

    def start(self) -> None:
        for i in range(self.workers):
            self._spawn(self._work, f"stepline-worker-{i}")
        self._spawn(self._fire_timers, "stepline-timers")
        self._spawn(self._sweep, "stepline-sweeper")

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout_s)

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _wait_for_work(self) -> None:
        wait = getattr(self.queue, "wait_for_message", None)
        if wait is not None:
            wait(IDLE_POLL_S)
        else:
            self._stop.wait(IDLE_POLL_S)

    def _work(self) -> None:
        # One delivery's worst case: locally nothing retries a throttled batch, so no six-fold.
        visibility = self.engine.settings.executor_timeout_s
        while not self._stop.is_set():
            try:
                received = self.queue.receive(1, visibility)
            except Exception:  # noqa: BLE001 - a store hiccup must not kill the worker
                log.exception("receiving from the work queue failed")
                self._stop.wait(1.0)
                continue
            if not received:
                self._wait_for_work()
                continue
            for message in received:
                with self._busy_lock:
                    self.busy += 1
                try:
                    if self.engine.delivery.deliver(message) is not Outcome.RETRY:
                        self.queue.ack(message.handle)
                except Exception:  # noqa: BLE001 - unacknowledged, it comes back as SQS's would
                    log.exception("acknowledging a message failed; it is delivered again")
                finally:
                    with self._busy_lock:
                        self.busy -= 1

    def _sweep(self) -> None:
        # What the AWS stack's sweep schedule does: every sweep_interval_s, re-arm stalled runs
        # and erase what is past the retention period.
        while not self._stop.wait(self.engine.settings.sweep_interval_s):
            try:
                while self.engine.sweeper.sweep().more and not self._stop.is_set():
                    pass  # a backlog: the next batch at once
                while self.engine.retention.expire().more and not self._stop.is_set():
                    pass
            except Exception:  # noqa: BLE001 - the next interval tries again
                log.exception("sweeping stalled runs failed")

    def _fire_timers(self) -> None:
        while not self._stop.is_set():
            try:
                self.timers.fire_due(self.engine.clock.now_ms())
            except Exception:  # noqa: BLE001
                log.exception("firing timers failed")
            time.sleep(TIMER_POLL_S)
