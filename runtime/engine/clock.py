"""Clocks: the system one, and a manual one that tests (and `--backend moto` pumps) move by hand."""

from __future__ import annotations

import threading
import time


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that only moves when told to, so a year-long sleep is tested in milliseconds.

    Thread-safe: worker threads read it while the test advances it.
    """

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now = start_ms
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        with self._lock:
            return self._now

    def advance(self, ms: int) -> int:
        with self._lock:
            self._now += ms
            return self._now

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._now = now_ms
