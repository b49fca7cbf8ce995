"""Runs waiting for an event by name: wait_for_event steps and cancel_on rules, in buckets by the
key of the equality their expression states (stepline.engine.waiter_index)."""

from __future__ import annotations

import json

from stepline.engine.records import Waiter, WaiterPage
from stepline.local.codec import waiter_from_row, waiter_row
from stepline.local.db import Database


class WaiterTable:
    _db: Database

    def add_waiter(self, waiter: Waiter) -> bool:
        row = waiter_row(waiter)
        with self._db.write() as conn:
            if waiter.match_key and waiter.match_field:
                conn.execute(
                    "INSERT INTO waiter_fields (event_name, field) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (waiter.event_name, waiter.match_field),
                )
            inserted = conn.execute(
                "INSERT INTO waiters (event_name, run_id, step_id, kind, expires_at, created_at, "
                "expression, trigger_json, match_field, match_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (event_name, run_id, step_id) DO NOTHING",
                row,
            ).rowcount
        return bool(inserted)

    def waiter_fields(self, event_name: str) -> list[str]:
        with self._db.connection() as conn:
            rows = conn.execute("SELECT field FROM waiter_fields WHERE event_name = ? ORDER BY field", (event_name,))
            return [r[0] for r in rows.fetchall()]

    def waiters_for_event(
        self,
        event_name: str,
        now_ms: int,
        match_key: str | None = None,
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> WaiterPage:
        sql = "SELECT * FROM waiters WHERE event_name = ? AND match_key = ? AND expires_at > ?"
        args: list[object] = [event_name, match_key or "", now_ms]
        if after is not None:
            sql += " AND (created_at, run_id, step_id) > (?, ?, ?)"
            args += _decode(after)
        sql += " ORDER BY created_at, run_id, step_id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        with self._db.connection() as conn:
            waiters = [waiter_from_row(r) for r in conn.execute(sql, args).fetchall()]
        more = limit is not None and len(waiters) == limit
        last = waiters[-1] if more else None
        return WaiterPage(waiters, json.dumps([last.created_at, last.run_id, last.step_id]) if last else None)

    def remove_waiter(self, event_name: str, run_id: str, step_id: str, match_key: str | None = None) -> bool:
        # One DELETE is atomic: of two events racing for the waiter, only the one whose
        # statement removed the row sees rowcount 1 and resumes the run.
        with self._db.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM waiters WHERE event_name = ? AND run_id = ? AND step_id = ? AND match_key = ?",
                (event_name, run_id, step_id, match_key or ""),
            ).rowcount
        return bool(deleted)


def _decode(after: str) -> list[object]:
    try:
        created_at, run_id, step_id = json.loads(after)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid waiter cursor: {after[:64]!r}") from exc
    return [int(created_at), str(run_id), str(step_id)]
