"""The credentials the runtime checks and signs with, as one snapshot that can be re-read.

Three kinds, each with its own job (docs/security.md):
* the signing key (and a fallback while rotating): Stepline signs calls to apps with it, and
  apps authenticate with its hash on the routes the SDKs use;
* the event keys: senders put one in the Event API's path;
* the operator key: people and tools that steer runs (cancel, replay, erase, the dashboard)
  authenticate with its hash. It is never given to apps.

``StaticKeys`` holds what the settings say (``stepline dev``, tests). ``RefreshingKeys`` re-reads
them through a loader (Secrets Manager, deployed) once they are older than ``max_age_ms`` by the
engine's clock, so a rotated or revoked key stops working within that time, without a deploy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from stepline.engine.ports import Clock
from stepline.protocol.signing import hash_event_key
from stepline.settings import Settings

log = logging.getLogger(__name__)

# After a failed re-read, the keys in hand are kept and the next read is tried this much later,
# so a Secrets Manager outage costs one slow request every half minute, not every request.
RETRY_AFTER_FAILURE_MS = 30_000


@dataclass(frozen=True)
class Keys:
    """One consistent view of every credential. ``signing_keys`` holds the primary first."""

    signing_keys: tuple[str, ...] = ()
    event_keys: tuple[str, ...] = ()
    operator_keys: tuple[str, ...] = ()
    event_key_hashes: frozenset[str] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "event_key_hashes", frozenset(hash_event_key(k) for k in self.event_keys))

    @property
    def signing_key(self) -> str | None:
        """The key calls are signed with."""
        return self.signing_keys[0] if self.signing_keys else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        return cls(
            signing_keys=tuple(settings.signing_keys),
            event_keys=tuple(settings.event_keys),
            operator_keys=tuple(settings.operator_keys),
        )


class KeyRing(Protocol):
    def current(self) -> Keys:
        """The keys to check and sign with now."""


class StaticKeys:
    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    def current(self) -> Keys:
        return self._keys


class RefreshingKeys:
    """Keys from ``load``, read again on first use after ``max_age_ms``.

    The first read happens at construction, so a container that cannot read its keys fails at
    once rather than on its first request. A later failed read keeps the keys in hand (the
    secrets being briefly unreadable must not lock every app out) and logs it; the next try
    comes ``RETRY_AFTER_FAILURE_MS`` later.
    """

    def __init__(self, load: Callable[[], Keys], clock: Clock, *, max_age_ms: int) -> None:
        self._load = load
        self._clock = clock
        self._max_age_ms = max_age_ms
        self._lock = threading.Lock()
        self._keys = load()
        self._next_read_at = clock.now_ms() + max_age_ms
        self.reads = 1

    def current(self) -> Keys:
        if self._clock.now_ms() < self._next_read_at:
            return self._keys
        with self._lock:
            now = self._clock.now_ms()
            if now < self._next_read_at:
                return self._keys  # another thread read them meanwhile
            try:
                self._keys = self._load()
                self._next_read_at = now + self._max_age_ms
                self.reads += 1
            except Exception:  # noqa: BLE001 - keep serving with the keys in hand; say so
                log.exception("re-reading the keys failed; keeping the current ones for now")
                self._next_read_at = now + RETRY_AFTER_FAILURE_MS
            return self._keys
