"""Local timers: rows with a fire time, moved into the queue table by ``fire_due``."""

from __future__ import annotations

import re
from typing import Any

from runtime.engine.ports import Clock
from runtime.local.db import Database, dumps, loads
from runtime.local.queue import SqliteWorkQueue, insert_messages

# The EventBridge Scheduler name rule, enforced here too so a name that works locally cannot
# fail on AWS.
TIMER_NAME = re.compile(r"[0-9A-Za-z_.\-]{1,64}")


class SqliteTimers:
    def __init__(self, db: Database, queue: SqliteWorkQueue, clock: Clock) -> None:
        self._db = db
        self._queue = queue
        self._clock = clock

    def schedule(self, name: str, fire_at_ms: int, body: dict[str, Any]) -> None:
        if not isinstance(name, str) or not TIMER_NAME.fullmatch(name):
            raise ValueError(f"timer name must be 1-64 characters of [0-9A-Za-z_.-]: {name!r}")
        if not isinstance(body, dict):
            raise TypeError("timer body must be a JSON object")
        with self._db.connection() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO timers (name, fire_at, body) VALUES (?, ?, ?)",
                (name, int(fire_at_ms), dumps(body)),
            )

    def cancel(self, name: str) -> None:
        with self._db.connection() as conn:
            conn.execute("DELETE FROM timers WHERE name = ?", (name,))

    def fire_due(self, now_ms: int) -> int:
        # A due timer becomes visible at its own fire time, so it queues in due order among
        # other messages, but never later than the queue clock's now: a caller that passes a
        # ``now_ms`` ahead of the clock still gets messages it can receive at once, as SQS does.
        visible_cap = self._clock.now_ms()
        with self._db.write() as conn:
            due = conn.execute(
                "SELECT name, fire_at, body FROM timers WHERE fire_at <= ? ORDER BY fire_at, name",
                (now_ms,),
            ).fetchall()
            if not due:
                return 0
            insert_messages(conn, [(row["body"], min(row["fire_at"], visible_cap)) for row in due])
            conn.executemany("DELETE FROM timers WHERE name = ?", [(row["name"],) for row in due])
        self._queue.notify()
        return len(due)

    def next_fire_at(self) -> int | None:
        """When the earliest timer is due, for the local driver's sleep; None when none is."""
        with self._db.connection() as conn:
            return conn.execute("SELECT MIN(fire_at) FROM timers").fetchone()[0]

    def get(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """A scheduled timer's fire time and body (for the dashboard and tests)."""
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT fire_at, body FROM timers WHERE name = ?", (name,)
            ).fetchone()
        return (row["fire_at"], loads(row["body"])) if row else None
