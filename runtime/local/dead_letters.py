"""The local dead-letter store: a table beside the queue's, in the same file, so a redrive moves
a message back in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stepline.engine.messages import INVALID_BODY, parse_body
from stepline.engine.ports import Clock, DeadLetter, DeadReason
from stepline.local.db import Database, dumps
from stepline.local.queue import SqliteWorkQueue, insert_messages


class SqliteDeadLetters:
    def __init__(self, db: Database, queue: SqliteWorkQueue, clock: Clock) -> None:
        self._db = db
        self._queue = queue
        self._clock = clock

    def dead_letter(self, body: dict[str, Any], reason: DeadReason) -> None:
        with self._db.connection() as conn:
            conn.execute(
                "INSERT INTO dead_letters (body, reason, receive_count, run_id, dead_at) VALUES (?, ?, ?, ?, ?)",
                (_stored_text(body), reason.error, reason.receive_count, reason.run_id, reason.dead_at),
            )

    def list_dead(self, limit: int) -> list[DeadLetter]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        with self._db.connection() as conn:
            rows = conn.execute("SELECT * FROM dead_letters ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [_entry(row) for row in rows]

    def redrive(
        self,
        ids: list[str] | None = None,
        *,
        limit: int = 100,
        on_move: Callable[[DeadLetter], None] | None = None,
    ) -> int:
        if ids is None:
            entries = self.list_dead(limit)
        else:
            wanted = sorted({int(i) for i in ids if i.isdigit()})[:limit]
            with self._db.connection() as conn:
                rows = [conn.execute("SELECT * FROM dead_letters WHERE id = ?", (i,)).fetchone() for i in wanted]
            entries = [_entry(row) for row in rows if row is not None]
        moved = 0
        for entry in entries:
            # Before the message is back: its run must be ready for it. Outside the write
            # transaction, since the callback writes to the store through other connections.
            if on_move is not None:
                on_move(entry)
            with self._db.write() as conn:
                # Two redrives racing for one entry: the one whose delete removed it moves it.
                if conn.execute("DELETE FROM dead_letters WHERE id = ?", (int(entry.id),)).rowcount:
                    text = _stored_text(entry.body)
                    insert_messages(conn, [(text, self._clock.now_ms())])
                    moved += 1
        if moved:
            self._queue.notify()
        return moved


def _stored_text(body: dict[str, Any]) -> str:
    # A body that was never JSON is kept as the text that came, so a redrive gives back what
    # arrived (and the delivery dead-letters it again: it can never succeed).
    if set(body) == {INVALID_BODY} and isinstance(body[INVALID_BODY], str):
        return body[INVALID_BODY]
    return dumps(body)


def _entry(row: Any) -> DeadLetter:
    return DeadLetter(
        id=str(row["id"]),
        body=parse_body(row["body"]),
        reason=DeadReason(row["reason"], row["receive_count"], row["dead_at"], row["run_id"]),
    )
