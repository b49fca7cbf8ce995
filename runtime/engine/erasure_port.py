"""The port for removing data: erasure on request (``stepline.engine.erasure``) and expiry after
the retention period (``stepline.engine.retention``).

Both adapter families' run stores implement it beside ``RunStore``. Removal is by key and
idempotent: erasing what is already gone removes nothing and says so. What a store keeps under
a run (its steps, pending ops, the links from its events, large values in S3) goes with the run;
what the engine knows better than the store (the run's waiters, which are indexed by event name;
the events the run's end emitted) the engine removes itself.

Retention: a store opened with a retention period gives every run an expiry on the write that
ends it (``RunStore.update_run`` with a terminal status and ``ended_at``: ``ended_at`` plus the
period), and every event one when it is stored (``received_at`` plus the period).
``expired_runs`` and ``expired_events`` list what is past it for the engine to erase; a store
whose backend deletes expired items by itself (DynamoDB's TTL, for events) lists nothing there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol, runtime_checkable

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Erased:
    """How much one removal took away: what the audit log records (counts and ids, never data)."""

    runs: int = 0
    steps: int = 0  # memos and pending ops
    events: int = 0
    links: int = 0  # event -> run index entries
    payloads: int = 0  # objects in the payload bucket

    def __add__(self, other: Erased) -> Erased:
        return Erased(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


NOTHING = Erased()


@runtime_checkable
class RunEraser(Protocol):
    # Milliseconds a finished run and a stored event are kept; None keeps them for ever.
    retention_ms: int | None

    def erase_run(self, run_id: str) -> Erased:
        """Remove the run with its steps, pending ops, event links and their payloads. A step
        written after this (a call that was in flight) lands on nothing the run can be read by;
        erasing again removes it. ``NOTHING`` when the run has nothing stored."""

    def erase_event(self, internal_id: str) -> Erased:
        """Remove the event with its dedupe claim, its links to runs and its payloads (not the
        runs: erase those first)."""

    def expired_runs(self, now_ms: int, *, limit: int) -> list[str]:
        """Ids of ended runs whose expiry is before ``now_ms``, earliest expiry first, at most
        ``limit``. Read from an index, never by scanning every run."""

    def expired_events(self, now_ms: int, *, limit: int) -> list[str]:
        """Internal ids of events whose expiry is before ``now_ms`` that the backend does not
        delete by itself, at most ``limit``."""


def retention_ms(days: int) -> int | None:
    """The store's retention for a ``retention_days`` setting (0: keep for ever)."""
    return days * DAY_MS if days > 0 else None
