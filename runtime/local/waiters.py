"""Runs waiting for an event by name: wait_for_event steps and cancel_on rules."""

from __future__ import annotations

from stepline.engine.records import Waiter
from stepline.local.codec import waiter_from_row, waiter_row
from stepline.local.db import Database


class WaiterTable:
    _db: Database

    def add_waiter(self, waiter: Waiter) -> bool:
        row = waiter_row(waiter)
        with self._db.connection() as conn:
            inserted = conn.execute(
                "INSERT INTO waiters (event_name, run_id, step_id, kind, expires_at, created_at, "
                "expression, trigger_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_name, run_id, step_id) DO NOTHING",
                row,
            ).rowcount
        return bool(inserted)

    def waiters_for_event(self, event_name: str, now_ms: int) -> list[Waiter]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT * FROM waiters WHERE event_name = ? AND expires_at > ? ORDER BY created_at, run_id, step_id",
                (event_name, now_ms),
            ).fetchall()
        return [waiter_from_row(r) for r in rows]

    def remove_waiter(self, event_name: str, run_id: str, step_id: str) -> bool:
        # One DELETE is atomic: of two events racing for the waiter, only the one whose
        # statement removed the row sees rowcount 1 and resumes the run.
        with self._db.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM waiters WHERE event_name = ? AND run_id = ? AND step_id = ?",
                (event_name, run_id, step_id),
            ).rowcount
        return bool(deleted)
