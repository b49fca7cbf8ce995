"""Erasure and expiry on SQLite (``stepline.engine.stores.RunEraser``): a run or an event and every
row kept for it, removed in one write transaction; the expired ones found by their indexes."""

from __future__ import annotations

from stepline.engine.records import Erased
from stepline.local.db import Database


class ErasureTable:
    _db: Database
    retention_ms: int | None

    def erase_run(self, run_id: str) -> Erased:
        with self._db.write() as conn:
            steps = conn.execute("DELETE FROM memos WHERE run_id = ?", (run_id,)).rowcount
            steps += conn.execute("DELETE FROM pending WHERE run_id = ?", (run_id,)).rowcount
            # Waiters too: after erasure nothing may match an event against the run's trigger.
            conn.execute("DELETE FROM waiters WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM signal_waits WHERE run_id = ?", (run_id,))  # signal names may say who
            links = conn.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,)).rowcount
            runs = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
        return Erased(runs=runs, steps=steps, links=links)

    def erase_event(self, internal_id: str) -> Erased:
        with self._db.write() as conn:
            row = conn.execute("SELECT id FROM events WHERE internal_id = ?", (internal_id,)).fetchone()
            if row is not None:  # its dedupe marker, when it still points at this event
                conn.execute("DELETE FROM event_ids WHERE id = ? AND internal_id = ?", (row["id"], internal_id))
            links = conn.execute("DELETE FROM run_events WHERE internal_event_id = ?", (internal_id,)).rowcount
            events = conn.execute("DELETE FROM events WHERE internal_id = ?", (internal_id,)).rowcount
        return Erased(events=events, links=links)

    def expired_runs(self, now_ms: int, *, limit: int) -> list[str]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT run_id FROM runs INDEXED BY runs_by_expiry "
                "WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at, run_id LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        return [r["run_id"] for r in rows]

    def expired_events(self, now_ms: int, *, limit: int) -> list[str]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT internal_id FROM events INDEXED BY events_by_expiry "
                "WHERE expires_at IS NOT NULL AND expires_at < ? ORDER BY expires_at LIMIT ?",
                (now_ms, limit),
            ).fetchall()
        return [r["internal_id"] for r in rows]
