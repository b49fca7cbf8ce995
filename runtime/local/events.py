"""Events: durable storage, 24-hour dedupe by ``event.id``, newest-first listing."""

from __future__ import annotations

import sqlite3

from stepline.engine.records import EVENT_DEDUPE_WINDOW_MS, StoredEvent
from stepline.local.codec import event_from_row, event_row
from stepline.local.cursor import encode_cursor, window_clauses
from stepline.local.db import Database


class EventTable:
    _db: Database
    retention_ms: int | None

    def save_events(self, events: list[StoredEvent], now_ms: int) -> list[StoredEvent]:
        # One IMMEDIATE transaction for the batch: two senders racing the same id serialize
        # here, and the second sees the first's marker. The commit is the acknowledgement.
        # What is stored already is read for the whole batch at once, and the new events are
        # written with one statement per table: a batch of 100 costs a handful of statements.
        with self._db.write() as conn:
            holders = _live_markers(conn, [e.id for e in events], now_ms)
            known = _get_many(conn, [*holders.values(), *(e.internal_id for e in events)])
            saved: list[StoredEvent] = []
            new: list[StoredEvent] = []
            for event in events:
                earlier = known.get(holders.get(event.id, ""))
                # The same internal id sent again (a retried request with seeded ids) is the same event.
                found = earlier or known.get(event.internal_id)
                if found is None:
                    new.append(event)
                    # A later event of this batch with the same id is a duplicate of this one.
                    holders[event.id] = event.internal_id
                    known[event.internal_id] = found = event
                saved.append(found)
            retention = self.retention_ms
            conn.executemany(
                "INSERT INTO events (internal_id, id, name, received_at, json, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(*event_row(e), e.received_at + retention if retention else None) for e in new],
            )
            conn.executemany(
                "INSERT OR REPLACE INTO event_ids (id, internal_id, expires_at) VALUES (?, ?, ?)",
                [(e.id, e.internal_id, now_ms + EVENT_DEDUPE_WINDOW_MS) for e in new],
            )
            return saved

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

    def recent_events(self, name: str, since_ms: int, until_ms: int, *, limit: int) -> list[StoredEvent]:
        # One range of the events_by_name_time index.
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM events WHERE name = ? AND received_at BETWEEN ? AND ? "
                "ORDER BY received_at DESC, internal_id DESC LIMIT ?",
                (name, since_ms, until_ms, max(limit, 0)),
            ).fetchall()
        return [event_from_row(r) for r in rows]


# Ids per IN (...) list: well under SQLite's limit on bound parameters.
_IN_CHUNK = 500


def _chunks(values: list[str]) -> list[list[str]]:
    unique = list(dict.fromkeys(values))
    return [unique[i : i + _IN_CHUNK] for i in range(0, len(unique), _IN_CHUNK)]


def _live_markers(conn: sqlite3.Connection, ids: list[str], now_ms: int) -> dict[str, str]:
    """{event id: internal id holding it} for the ids whose dedupe marker is still live."""
    holders: dict[str, str] = {}
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT id, internal_id FROM event_ids WHERE id IN ({marks}) AND expires_at > ?", (*chunk, now_ms)
        )
        holders.update((row["id"], row["internal_id"]) for row in rows)
    return holders


def _get_many(conn: sqlite3.Connection, internal_ids: list[str]) -> dict[str, StoredEvent]:
    found: dict[str, StoredEvent] = {}
    for chunk in _chunks(internal_ids):
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(f"SELECT * FROM events WHERE internal_id IN ({marks})", chunk):
            found[row["internal_id"]] = event_from_row(row)
    return found


def _get(conn: sqlite3.Connection, internal_id: str) -> StoredEvent | None:
    row = conn.execute("SELECT * FROM events WHERE internal_id = ?", (internal_id,)).fetchone()
    return event_from_row(row) if row else None
