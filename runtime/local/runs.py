"""Runs: creation, the one-read state load, conditional updates and leases."""

from __future__ import annotations

import sqlite3
from typing import Any

from stepline.engine.records import Run, RunState, RunStatus
from stepline.local.codec import (
    RUN_COLUMNS,
    memo_from_row,
    pending_from_row,
    run_columns,
    run_from_row,
)
from stepline.local.cursor import decode_cursor, encode_cursor, window_clauses
from stepline.local.db import Database

_LIVE = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)


class RunTable:
    _db: Database
    retention_ms: int | None

    def create_run(self, run: Run) -> bool:
        cols = run_columns(run)
        with self._db.write() as conn:
            # ON CONFLICT, not OR IGNORE: only an existing id may skip the write; a NOT NULL
            # violation is a bug and must raise.
            inserted = conn.execute(
                f"INSERT INTO runs ({', '.join(cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)}) ON CONFLICT (run_id) DO NOTHING",
                tuple(cols.values()),
            ).rowcount
            if inserted:
                _index_events(conn, run.run_id, run.event_ids)
        return bool(inserted)

    def load_run(self, run_id: str, *, lease_owner: str | None = None, claimed: str | None = None) -> RunState | None:
        # A local read is cheap: the whole run every time, whoever asks. One read transaction,
        # so memos and pending ops match the run row they came with.
        with self._db.snapshot() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                return None
            memos = conn.execute("SELECT * FROM memos WHERE run_id = ? ORDER BY seq, step_id", (run_id,)).fetchall()
            pending = conn.execute(
                "SELECT * FROM pending WHERE run_id = ? ORDER BY created_at, step_id", (run_id,)
            ).fetchall()
        return RunState(
            run=run_from_row(row),
            memos=[memo_from_row(m) for m in memos],
            pending={p["step_id"]: pending_from_row(p) for p in pending},
        )

    def forget_run(self, run_id: str) -> None:
        return None  # nothing is kept: every load_run reads the file

    def get_run(self, run_id: str) -> Run | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return run_from_row(row) if row else None

    def runs_for_event(self, internal_event_id: str) -> list[Run]:
        with self._db.connection() as conn:
            rows = conn.execute(
                "SELECT r.* FROM run_events e JOIN runs r ON r.run_id = e.run_id "
                "WHERE e.internal_event_id = ? ORDER BY r.created_at, r.run_id",
                (internal_event_id,),
            ).fetchall()
        return [run_from_row(r) for r in rows]

    def list_runs(
        self,
        fn_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        status: RunStatus | None = None,
        created_after: int | None = None,
        created_before: int | None = None,
    ) -> tuple[list[Run], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # The status filter is part of the query here, so pages are full; the port allows
        # short pages for backends that filter after reading.
        where: list[str] = ["fn_id = ?"]
        args: list[object] = [fn_id]
        if status is not None:
            where.append("status = ?")
            args.append(RunStatus(status).value)
        window, window_args = window_clauses("created_at", "run_id", created_after, created_before, cursor)
        where += window
        args += window_args
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY created_at DESC, run_id DESC LIMIT ?"
        return self._page(sql, args, limit, "created_at")

    def update_run(
        self,
        run_id: str,
        changes: dict[str, Any],
        *,
        expect_status: set[RunStatus] | None = None,
        expect_lease_owner: str | None = None,
        expect_wake_at: int | None = None,
    ) -> bool:
        unknown = set(changes) - set(RUN_COLUMNS)
        if unknown:
            raise ValueError(f"not settable Run fields: {sorted(unknown)}")
        ending = "status" in changes and RunStatus(changes["status"]).terminal
        if ending:
            changes = {**changes, "wake_at": None}  # an ended run leaves the sweeper's index
        sets, args = ["run_id = run_id"], []
        for field_name, value in changes.items():
            column, encode = RUN_COLUMNS[field_name]
            sets.append(f"{column} = ?")
            args.append(encode(value))
        if ending and self.retention_ms and changes.get("ended_at") is not None:
            # The retention's clock starts on the ending write (stepline.engine.stores.RunEraser).
            sets.append("expires_at = ?")
            args.append(changes["ended_at"] + self.retention_ms)
        where: list[str] = ["run_id = ?"]
        where_args: list[object] = [run_id]
        if expect_status is not None:
            statuses = [RunStatus(s).value for s in expect_status]
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            where_args.extend(statuses)
        if expect_lease_owner is not None:
            where.append("lease_owner = ?")
            where_args.append(expect_lease_owner)
        if expect_wake_at is not None:
            where.append("wake_at = ?")
            where_args.append(expect_wake_at)
        with self._db.write() as conn:
            updated = conn.execute(
                f"UPDATE runs SET {', '.join(sets)} WHERE {' AND '.join(where)}",
                (*args, *where_args),
            ).rowcount
            if updated and "event_ids" in changes:
                conn.execute("DELETE FROM run_events WHERE run_id = ?", (run_id,))
                _index_events(conn, run_id, changes["event_ids"])
        return bool(updated)

    def acquire_lease(self, run_id: str, owner: str, until_ms: int, now_ms: int) -> int | None:
        # A single UPDATE is atomic in SQLite: the condition and the write cannot be split by
        # another writer, so of N racing owners exactly one matches.
        with self._db.connection() as conn:
            taken = conn.execute(
                """
                UPDATE runs SET
                    lease_owner = :owner,
                    lease_until = :until,
                    status = CASE WHEN status = :queued THEN :running ELSE status END,
                    started_at = COALESCE(started_at, :now),
                    sgen = sgen + 1
                WHERE run_id = :run_id
                  AND status IN (:queued, :running)
                  AND (lease_owner IS NULL OR lease_until IS NULL
                       OR lease_until < :now OR lease_owner = :owner)
                RETURNING sgen
                """,
                {
                    "owner": owner,
                    "until": until_ms,
                    "now": now_ms,
                    "run_id": run_id,
                    "queued": _LIVE[0],
                    "running": _LIVE[1],
                },
            ).fetchall()  # all of it: the write is done once the statement is
        return int(taken[0][0]) if taken else None

    def stalled_runs(
        self, before_ms: int, now_ms: int, *, limit: int, cursor: str | None = None
    ) -> tuple[list[Run], str | None]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        # One range of runs_by_wake in (wake_at, run_id) order, the cursor being the last row
        # of the previous page; status and lease are checked on the rows that range holds.
        where = [
            "wake_at IS NOT NULL",
            "wake_at < ?",
            "status IN (?, ?)",
            "(lease_owner IS NULL OR lease_until IS NULL OR lease_until < ?)",
        ]
        args: list[object] = [before_ms, *_LIVE, now_ms]
        if cursor is not None:
            where.append("(wake_at, run_id) > (?, ?)")
            args.extend(decode_cursor(cursor))
        sql = f"SELECT * FROM runs INDEXED BY runs_by_wake WHERE {' AND '.join(where)} ORDER BY wake_at, run_id LIMIT ?"
        return self._page(sql, args, limit, "wake_at")

    def _page(self, sql: str, args: list[object], limit: int, time_field: str) -> tuple[list[Run], str | None]:
        """One page of a listing whose ``sql`` ends in ``LIMIT ?``: one row past the page says
        whether there is more, and the page's last (``time_field``, run_id) is the cursor."""
        with self._db.connection() as conn:
            rows = conn.execute(sql, (*args, limit + 1)).fetchall()
        page = [run_from_row(r) for r in rows[:limit]]
        if len(rows) <= limit:
            return page, None
        return page, encode_cursor(getattr(page[-1], time_field), page[-1].run_id)

    def release_lease(self, run_id: str, owner: str) -> None:
        with self._db.connection() as conn:
            conn.execute(
                "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE run_id = ? AND lease_owner = ?",
                (run_id, owner),
            )


def _index_events(conn: sqlite3.Connection, run_id: str, event_ids: list[str]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO run_events (internal_event_id, run_id) VALUES (?, ?)",
        [(event_id, run_id) for event_id in event_ids],
    )
