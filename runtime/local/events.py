"""Events: durable storage, 24-hour dedupe by ``event.id``, newest-first listing."""

from __future__ import annotations

import sqlite3

from stepline.engine.records import EVENT_DEDUPE_WINDOW_MS, StoredEvent
from stepline.local.codec import event_from_row, event_row
from stepline.local.cursor import encode_cursor, window_clauses
from stepline.local.db import Database


class EventTable:
    _db: Database

    def save_events(self, events: list[StoredEvent], now_ms: int) -> list[StoredEvent]:
        # One IMMEDIATE transaction for the batch: two senders racing the same id serialize
        # here, and the second sees the first's marker. The commit is the acknowledgement.
        with self._db.write() as conn:
            return [_save_one(conn, event, now_ms) for event in events]

    def get_event(self, internal_id: str) -> StoredEvent | None:
        with self._db.connection() as conn:
            return _get(conn, internal_id)

    def list_events(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        name: str | None = None,
        received_after: int | None = None,
        received_before: int | None = None,
    ) -> tuple[list[StoredEvent], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        where: list[str] = []
        args: list[object] = []
        if name is not None:
            where.append("name = ?")
            args.append(name)
        window, window_args = window_clauses("received_at", "internal_id", received_after, received_before, cursor)
        where += window
        args += window_args
        sql = "SELECT * FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY received_at DESC, internal_id DESC LIMIT ?"
        with self._db.connection() as conn:
            rows = conn.execute(sql, (*args, limit + 1)).fetchall()
        page = [event_from_row(r) for r in rows[:limit]]
        more = len(rows) > limit
        return page, (encode_cursor(page[-1].received_at, page[-1].internal_id) if more else None)


def _save_one(conn: sqlite3.Connection, event: StoredEvent, now_ms: int) -> StoredEvent:
    marker = conn.execute(
        "SELECT internal_id FROM event_ids WHERE id = ? AND expires_at > ?", (event.id, now_ms)
    ).fetchone()
    if marker:
        earlier = _get(conn, marker["internal_id"])
        if earlier:
            return earlier
    # The same internal id sent again (a retried request with seeded ids) is the same event.
    same = _get(conn, event.internal_id)
    if same:
        return same
    conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?)", event_row(event))
    conn.execute(
        "INSERT OR REPLACE INTO event_ids (id, internal_id, expires_at) VALUES (?, ?, ?)",
        (event.id, event.internal_id, now_ms + EVENT_DEDUPE_WINDOW_MS),
    )
    return event


def _get(conn: sqlite3.Connection, internal_id: str) -> StoredEvent | None:
    row = conn.execute("SELECT * FROM events WHERE internal_id = ?", (internal_id,)).fetchone()
    return event_from_row(row) if row else None
