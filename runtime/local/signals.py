"""Runs waiting for a signal (``SignalStore``): one row per signal in ``signal_waits``."""

from __future__ import annotations

import sqlite3

from stepline.engine.records import SignalWait
from stepline.local.db import Database


def _wait(row: sqlite3.Row) -> SignalWait:
    return SignalWait(row["signal"], row["run_id"], row["step_id"], row["expires_at"], row["created_at"])


class SignalTable:
    _db: Database

    def put_signal_wait(self, wait: SignalWait, now_ms: int, *, replace: bool = False) -> SignalWait:
        with self._db.write() as conn:
            row = conn.execute("SELECT * FROM signal_waits WHERE signal = ?", (wait.signal,)).fetchone()
            if row is not None:
                held = _wait(row)
                if held.same_wait(wait) and held.expires_at > now_ms:
                    return held  # a re-report: the first wait stands
                if held.expires_at > now_ms and not replace:
                    return held
            conn.execute(
                "INSERT INTO signal_waits (signal, run_id, step_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (signal) DO UPDATE SET run_id = excluded.run_id, step_id = excluded.step_id, "
                "expires_at = excluded.expires_at, created_at = excluded.created_at",
                (wait.signal, wait.run_id, wait.step_id, wait.expires_at, wait.created_at),
            )
        return wait

    def get_signal_wait(self, signal: str, now_ms: int) -> SignalWait | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT * FROM signal_waits WHERE signal = ? AND expires_at > ?", (signal, now_ms)
            ).fetchone()
        return _wait(row) if row is not None else None

    def remove_signal_wait(self, signal: str, run_id: str, step_id: str) -> bool:
        with self._db.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM signal_waits WHERE signal = ? AND run_id = ? AND step_id = ?", (signal, run_id, step_id)
            ).rowcount
        return bool(deleted)
