"""Identifiers: ULIDs drawn from the engine's clock, and deterministic ones where a retry must
produce the same id (a run started twice for one event must collide, not duplicate)."""

from __future__ import annotations

import hashlib
import os
import threading

from ulid import ULID

from stepline.engine.ports import Clock


class IdGenerator:
    """Monotonic ULIDs: ids made in one process sort in creation order even within a millisecond
    (memo ``seq`` relies on that for the step stack order)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._last = b""

    def new(self) -> str:
        with self._lock:
            ms = self._clock.now_ms()
            candidate = ms.to_bytes(6, "big") + os.urandom(10)
            if candidate <= self._last:
                # Same millisecond (or a clock step back): increment the previous value.
                candidate = (int.from_bytes(self._last, "big") + 1).to_bytes(16, "big")
            self._last = candidate
            return str(ULID.from_bytes(candidate))


def derived_ulid(ms: int, *parts: str) -> str:
    """A ULID whose time is ``ms`` and whose randomness is a hash of ``parts``: the same inputs
    always give the same id."""
    entropy = hashlib.sha256("\x1f".join(parts).encode()).digest()[:10]
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + entropy))


def seeded_ulid(ms: int, entropy: bytes, index: int) -> str:
    """The Inngest event-id-seed rule (docs/protocol.md §11): ``index`` added to the last 4 bytes of the
    entropy, big-endian, so that a retried send returns the same ids."""
    head, tail = entropy[:6], int.from_bytes(entropy[6:10], "big")
    tail = (tail + index) % (1 << 32)
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + head + tail.to_bytes(4, "big")))
