"""Which fault, when: one seeded random source shared by every injector, and a tally.

Rates are probabilities per opportunity (per app call, per store write, per message sent). A
fixed seed fixes the sequence of decisions; thread scheduling still decides which call meets
which decision, so a chaos run is reproducible in its mix of faults, not in its interleaving.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class FaultRates:
    # The user's app (per call through the proxy).
    app_500: float = 0.0
    app_hang: float = 0.0  # answer after the executor's step timeout
    app_close: float = 0.0  # close the connection without an answer
    app_malformed: float = 0.0  # 200 with a body that is not JSON
    app_truncated: float = 0.0  # Content-Length promises more than is sent
    app_oversized: float = 0.0  # a body far over what the executor accepts
    # After the app ran the call (its side effects happened), fault the answer instead.
    app_after_work: float = 0.5  # share of the app faults above injected after forwarding
    # Store and timer writes (per write).
    write_fails: float = 0.0  # refused before it applies (throttled, internal error)
    write_lost: float = 0.0  # applied, but the caller sees an error
    crash: float = 0.0  # the executor stops here: before or after the write, at random
    # Queue (per message sent).
    duplicate: float = 0.0
    late: float = 0.0  # delivered 1-3 s later than asked

    @classmethod
    def none(cls) -> "FaultRates":
        return cls(app_after_work=0.0)

    @classmethod
    def chaos(cls, scale: float = 1.0) -> "FaultRates":
        """The mix the chaos suite runs under; ``scale`` multiplies every rate."""
        return cls(
            app_500=0.03 * scale,
            app_hang=0.01 * scale,
            app_close=0.02 * scale,
            app_malformed=0.01 * scale,
            app_truncated=0.01 * scale,
            app_oversized=0.005 * scale,
            write_fails=0.01 * scale,
            write_lost=0.005 * scale,
            crash=0.005 * scale,
            duplicate=0.03 * scale,
            late=0.02 * scale,
        )


class CrashPoints:
    """Deterministic crashes: the run started by the event with data key K stops at its N-th
    executor write, before or after the write applies (``points[K] = (N, "before"|"after")``).
    Writes are counted per run, so every point of every run can be tried at once. A run whose
    key has no point has its writes counted only (``counts``): that is how a test learns N."""

    def __init__(self, points: dict[str, tuple[int, str]], key_of_run) -> None:
        self.points = points
        self.key_of_run = key_of_run  # run id -> its trigger event's data key
        self.counts: Counter[str] = Counter()
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def at_write(self, run_id: str) -> str | None:
        key = self._keys.get(run_id)
        if key is None:
            key = self._keys[run_id] = str(self.key_of_run(run_id))
        with self._lock:
            self.counts[key] += 1
            n = self.counts[key]
        point = self.points.get(key)
        return point[1] if point and point[0] == n else None


@dataclass
class FaultPlan:
    seed: int
    rates: FaultRates = field(default_factory=FaultRates.none)
    enabled: bool = True
    crash_points: CrashPoints | None = None

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        # (fault, where) of every injection, for explaining a chaos run's failures.
        self.events: list[tuple[str, str]] = []

    def roll(self, rate: float) -> bool:
        if not self.enabled or rate <= 0:
            return False
        with self._lock:
            return self._random.random() < rate

    def choose(self, options: list[tuple[str, float]]) -> str | None:
        """One of the named faults by its rate, or None (no fault) for the remainder."""
        if not self.enabled:
            return None
        with self._lock:
            x = self._random.random()
        for name, rate in options:
            if x < rate:
                return name
            x -= rate
        return None

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._random.uniform(low, high)

    def note(self, fault: str, where: str = "") -> None:
        with self._lock:
            self.injected[fault] += 1
            self.events.append((fault, where))

    def history(self, text: str) -> list[tuple[str, str]]:
        """The injections whose place mentions ``text`` (a run id)."""
        with self._lock:
            return [e for e in self.events if text in e[1]]
