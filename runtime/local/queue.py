"""The local work queue: a table of messages with SQS-like visibility.

Times come from the injected clock, so a manual clock moves delays and visibility timeouts in
tests exactly as it moves everything else.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from typing import Any

from stepline.engine.messages import parse_body
from stepline.engine.ports import Clock, QueueMessage
from stepline.local.db import Database, dumps

# No 15-minute cap here (that is SQS's); ten years covers any sleep a user can ask for.
MAX_DELAY_SECONDS = 10 * 365 * 24 * 60 * 60
# How often a waiting worker re-checks the table when no in-process send wakes it: messages
# become visible by the passage of time, and another process may share the file.
POLL_INTERVAL_S = 0.2


class SqliteWorkQueue:
    max_delay_seconds: int = MAX_DELAY_SECONDS

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = threading.Condition()
        self._sends = 0  # bumped on every insert, so a waiter never misses a wakeup

    # -- WorkQueue ---------------------------------------------------------------------------
    def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        self.send_many([body], delay_seconds)

    def send_many(self, bodies: list[dict[str, Any]], delay_seconds: int = 0) -> None:
        _check_seconds("delay_seconds", delay_seconds, self.max_delay_seconds)
        if not bodies:
            return
        visible_at = self._clock.now_ms() + delay_seconds * 1000
        with self._db.write() as conn:
            insert_messages(conn, [(_body_text(b), visible_at) for b in bodies])
        self.notify()

    def receive(self, max_messages: int, visibility_seconds: int) -> list[QueueMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        _check_seconds("visibility_seconds", visibility_seconds, self.max_delay_seconds)
        now = self._clock.now_ms()
        hidden_until = now + visibility_seconds * 1000
        out: list[QueueMessage] = []
        # Claim inside one IMMEDIATE transaction: no other receiver can select the same rows
        # between our read and our write.
        with self._db.write() as conn:
            rows = conn.execute(
                "SELECT id, body, receive_count FROM queue WHERE visible_at <= ? ORDER BY visible_at, id LIMIT ?",
                (now, max_messages),
            ).fetchall()
            for row in rows:
                receipt = secrets.token_hex(8)
                conn.execute(
                    "UPDATE queue SET visible_at = ?, receive_count = receive_count + 1, receipt = ? WHERE id = ?",
                    (hidden_until, receipt, row["id"]),
                )
                out.append(
                    QueueMessage(
                        handle=f"{row['id']}.{receipt}",
                        body=parse_body(row["body"]),
                        receive_count=row["receive_count"] + 1,
                    )
                )
        return out

    def ack(self, handle: str) -> None:
        message_id, receipt = _parse_handle(handle)
        with self._db.connection() as conn:
            conn.execute("DELETE FROM queue WHERE id = ? AND receipt = ?", (message_id, receipt))

    def retry_later(self, handle: str, delay_seconds: int) -> None:
        _check_seconds("delay_seconds", delay_seconds, self.max_delay_seconds)
        message_id, receipt = _parse_handle(handle)
        visible_at = self._clock.now_ms() + delay_seconds * 1000
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE queue SET visible_at = ? WHERE id = ? AND receipt = ?",
                (visible_at, message_id, receipt),
            )
        if delay_seconds == 0:
            self.notify()

    # -- local driver ------------------------------------------------------------------------
    def wait_for_message(self, timeout_s: float) -> bool:
        """Block until a message is visible or ``timeout_s`` (real seconds) has passed; True if
        one is visible. An in-process ``send`` wakes waiters at once; otherwise they poll."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._wakeup:
                seen = self._sends
            if self._has_visible():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._wakeup:
                if self._sends == seen:
                    self._wakeup.wait(min(remaining, POLL_INTERVAL_S))

    def notify(self) -> None:
        """Wake waiting workers: new messages may be visible."""
        with self._wakeup:
            self._sends += 1
            self._wakeup.notify_all()

    def depth(self) -> int:
        with self._db.connection() as conn:
            return conn.execute("SELECT COUNT(*) FROM queue").fetchone()[0]

    def backlog(self) -> tuple[int, int]:
        """(messages due now and not taken, how long the oldest of them has been due in ms):
        the queue's backlog and age for the /metrics endpoint."""
        now = self._clock.now_ms()
        with self._db.connection() as conn:
            count, oldest = conn.execute(
                "SELECT COUNT(*), MIN(visible_at) FROM queue WHERE visible_at <= ?", (now,)
            ).fetchone()
        return count, (now - oldest) if oldest is not None else 0

    def _has_visible(self) -> bool:
        with self._db.connection() as conn:
            row = conn.execute("SELECT 1 FROM queue WHERE visible_at <= ? LIMIT 1", (self._clock.now_ms(),)).fetchone()
        return row is not None


def insert_messages(conn: sqlite3.Connection, rows: list[tuple[str, int]]) -> None:
    """Insert (body text, visible_at) rows inside the caller's transaction (timers use this to
    move due timers into the queue atomically)."""
    conn.executemany("INSERT INTO queue (body, visible_at) VALUES (?, ?)", rows)


def _body_text(body: dict[str, Any]) -> str:
    if not isinstance(body, dict):
        raise TypeError(f"queue message body must be a JSON object, not {type(body).__name__}")
    return dumps(body)


def _check_seconds(name: str, value: int, limit: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ValueError(f"{name} must be an integer in 0..{limit}, got {value!r}")


def _parse_handle(handle: str) -> tuple[int, str]:
    message_id, _, receipt = handle.partition(".")
    if not message_id.isdigit() or not receipt:
        raise ValueError(f"not a queue handle: {handle!r}")
    return int(message_id), receipt
