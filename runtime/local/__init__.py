"""The local adapter family: every engine port on one SQLite file (what ``stepline dev`` runs on).

``open_local_backend`` wires a ``LocalBackend`` whose ``close`` closes the file;
``local_backend`` is the same as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from stepline.engine.ports import Backend, Clock
from stepline.local.db import Database
from stepline.local.dead_letters import SqliteDeadLetters
from stepline.local.queue import MAX_DELAY_SECONDS, SqliteWorkQueue
from stepline.local.recovery import recover_after_restart
from stepline.local.store import SqliteStore
from stepline.local.timers import SqliteTimers


@dataclass(kw_only=True)
class LocalBackend(Backend):
    """Every port on one SQLite file."""

    path: str  # the SQLite file


def open_local_backend(path: str, clock: Clock, *, retention_ms: int | None = None) -> LocalBackend:
    """``retention_ms``: how long ended runs and stored events are kept (None: for ever)."""
    db = Database(path)
    queue = SqliteWorkQueue(db, clock)
    return LocalBackend(
        store=SqliteStore(db, retention_ms=retention_ms),
        queue=queue,
        timers=SqliteTimers(db, queue, clock),
        dead_letters=SqliteDeadLetters(db, queue, clock),
        name="sqlite",
        closer=db.close,
        recover_after_restart=lambda: recover_after_restart(db, clock),
        path=path,
    )


@contextmanager
def local_backend(path: str, clock: Clock, *, retention_ms: int | None = None) -> Iterator[LocalBackend]:
    backend = open_local_backend(path, clock, retention_ms=retention_ms)
    try:
        yield backend
    finally:
        backend.close()


__all__ = [
    "MAX_DELAY_SECONDS",
    "LocalBackend",
    "SqliteDeadLetters",
    "SqliteStore",
    "SqliteTimers",
    "SqliteWorkQueue",
    "local_backend",
    "open_local_backend",
]
