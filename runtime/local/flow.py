"""Flow-control records on SQLite: versioned state, key claims, concurrency slots and their line.

Each primitive is one statement (or one IMMEDIATE transaction where it must read first), so of
racing writers exactly one wins, as the conditional writes of the AWS family decide.
"""

from __future__ import annotations

from typing import Any

from stepline.engine.flow_records import FlowState, LineEntry, SlotHolder, SlotView
from stepline.local.db import Database, dumps, loads


class FlowTable:
    _db: Database

    # -- versioned state ---------------------------------------------------------------------
    def get_flow_state(self, key: str, now_ms: int) -> FlowState | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM flow_state WHERE key = ? AND expires_at > ?", (key, now_ms)).fetchone()
        if row is None:
            return None
        return FlowState(key, row["version"], loads(row["data"]), row["expires_at"])

    def put_flow_state(
        self,
        key: str,
        data: dict[str, Any],
        *,
        expect_version: int | None,
        expires_at: int,
        now_ms: int,
    ) -> bool:
        text = dumps(data)
        with self._db.connection() as conn:
            if expect_version is None:
                # Create, or take over an expired row; its version still rises, so a reader
                # that saw the expired state cannot match it afterwards.
                changed = conn.execute(
                    """
                    INSERT INTO flow_state (key, version, data, expires_at)
                    VALUES (:key, 1, :data, :expires)
                    ON CONFLICT (key) DO UPDATE SET
                        version = flow_state.version + 1,
                        data = excluded.data,
                        expires_at = excluded.expires_at
                    WHERE flow_state.expires_at <= :now
                    """,
                    {"key": key, "data": text, "expires": expires_at, "now": now_ms},
                ).rowcount
            else:
                changed = conn.execute(
                    "UPDATE flow_state SET version = version + 1, data = ?, expires_at = ? "
                    "WHERE key = ? AND version = ?",
                    (text, expires_at, key, expect_version),
                ).rowcount
        return bool(changed)

    def delete_flow_state(self, key: str, expect_version: int) -> bool:
        with self._db.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM flow_state WHERE key = ? AND version = ?", (key, expect_version)
            ).rowcount
        return bool(deleted)

    # -- key claims --------------------------------------------------------------------------
    def claim_key(
        self,
        key: str,
        holder: str,
        expires_at: int,
        now_ms: int,
        *,
        replacing: str | None = None,
    ) -> str:
        with self._db.write() as conn:
            row = conn.execute("SELECT holder, expires_at FROM flow_claims WHERE key = ?", (key,)).fetchone()
            takeable = (
                row is None
                or row["expires_at"] <= now_ms
                or row["holder"] == holder
                or (replacing is not None and row["holder"] == replacing)
            )
            if not takeable:
                return row["holder"]
            conn.execute(
                "INSERT INTO flow_claims (key, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, "
                "expires_at = excluded.expires_at",
                (key, holder, expires_at),
            )
        return holder

    def release_key(self, key: str, holder: str) -> bool:
        with self._db.connection() as conn:
            deleted = conn.execute("DELETE FROM flow_claims WHERE key = ? AND holder = ?", (key, holder)).rowcount
        return bool(deleted)

    # -- concurrency slots and their line ----------------------------------------------------
    def slot_view(self, key: str, line_limit: int) -> SlotView:
        with self._db.snapshot() as conn:
            slots = conn.execute(
                "SELECT slot, owner, until, token FROM flow_slots WHERE key = ? ORDER BY slot",
                (key,),
            ).fetchall()
            line = conn.execute(
                "SELECT position, body, created_at FROM flow_line WHERE key = ? ORDER BY position LIMIT ?",
                (key, max(line_limit, 0)),
            ).fetchall()
        return SlotView(
            holders=[SlotHolder(r["slot"], r["owner"], r["until"], r["token"]) for r in slots],
            line=[LineEntry(r["position"], loads(r["body"]), r["created_at"]) for r in line],
        )

    def take_slot(self, key: str, index: int, owner: str, until_ms: int, now_ms: int, token: str = "") -> bool:
        # One upsert whose update half only fires on an expired or own row: of racing owners
        # for a free slot, the first insert wins and the others find a live foreign row.
        with self._db.connection() as conn:
            taken = conn.execute(
                """
                INSERT INTO flow_slots (key, slot, owner, until, token)
                VALUES (:key, :slot, :owner, :until, :token)
                ON CONFLICT (key, slot) DO UPDATE SET
                    owner = excluded.owner, until = excluded.until, token = excluded.token
                WHERE flow_slots.until < :now OR flow_slots.owner = excluded.owner
                """,
                {"key": key, "slot": index, "owner": owner, "until": until_ms, "token": token, "now": now_ms},
            ).rowcount
        return bool(taken)

    def release_slot(self, key: str, index: int, owner: str) -> bool:
        with self._db.connection() as conn:
            freed = conn.execute(
                "DELETE FROM flow_slots WHERE key = ? AND slot = ? AND owner = ?",
                (key, index, owner),
            ).rowcount
        return bool(freed)

    def join_line(self, key: str, entry: LineEntry) -> bool:
        with self._db.connection() as conn:
            added = conn.execute(
                "INSERT INTO flow_line (key, position, body, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key, position) DO NOTHING",
                (key, entry.position, dumps(entry.body), entry.created_at),
            ).rowcount
        return bool(added)

    def leave_line(self, key: str, position: str) -> bool:
        with self._db.connection() as conn:
            removed = conn.execute("DELETE FROM flow_line WHERE key = ? AND position = ?", (key, position)).rowcount
        return bool(removed)

    def line_entry(self, key: str, position: str) -> LineEntry | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT position, body, created_at FROM flow_line WHERE key = ? AND position = ?",
                (key, position),
            ).fetchone()
        return LineEntry(row["position"], loads(row["body"]), row["created_at"]) if row else None
