"""Step memos (written once) and the ops a run waits on."""

from __future__ import annotations

from stepline.engine.records import Memo, PendingOp
from stepline.local.codec import pending_from_row
from stepline.local.db import Database, dumps


class StepTable:
    _db: Database

    def commit_memo(self, run_id: str, memo: Memo) -> bool:
        # A single INSERT on the (run_id, step_id) key: the first writer wins, later ones are
        # told so and their value is dropped.
        with self._db.connection() as conn:
            inserted = conn.execute(
                "INSERT INTO memos (run_id, step_id, seq, name, value_json, detail_json) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id) DO NOTHING",
                (
                    run_id,
                    memo.step_id,
                    memo.seq,
                    memo.name,
                    dumps(memo.value),
                    dumps(memo.detail) if memo.detail else None,
                ),
            ).rowcount
        return bool(inserted)

    def add_pending(self, run_id: str, op: PendingOp) -> bool:
        with self._db.write() as conn:
            memo = conn.execute("SELECT 1 FROM memos WHERE run_id = ? AND step_id = ?", (run_id, op.step_id)).fetchone()
            if memo:
                return False
            inserted = conn.execute(
                "INSERT INTO pending (run_id, step_id, op, name, created_at, detail_json) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id) DO NOTHING",
                (run_id, op.step_id, op.op, op.name, op.created_at, dumps(op.detail)),
            ).rowcount
        return bool(inserted)

    def get_pending(self, run_id: str, step_id: str) -> PendingOp | None:
        with self._db.connection() as conn:
            row = conn.execute("SELECT * FROM pending WHERE run_id = ? AND step_id = ?", (run_id, step_id)).fetchone()
        return pending_from_row(row) if row else None

    def remove_pending(self, run_id: str, step_id: str) -> None:
        with self._db.connection() as conn:
            conn.execute("DELETE FROM pending WHERE run_id = ? AND step_id = ?", (run_id, step_id))

    def claim_pending(self, run_id: str, step_id: str, owner: str, until_ms: int, now_ms: int) -> bool:
        # One UPDATE, as for run leases: of N racing owners exactly one matches. A claim is
        # expired when claim_until < now, the same rule acquire_lease uses. A removed op has no
        # row to match, and add_pending inserts a fresh, unclaimed one.
        with self._db.connection() as conn:
            taken = conn.execute(
                """
                UPDATE pending SET claim_owner = :owner, claim_until = :until
                WHERE run_id = :run_id AND step_id = :step_id
                  AND (claim_owner IS NULL OR claim_until IS NULL
                       OR claim_until < :now OR claim_owner = :owner)
                """,
                {
                    "owner": owner,
                    "until": until_ms,
                    "now": now_ms,
                    "run_id": run_id,
                    "step_id": step_id,
                },
            ).rowcount
        return bool(taken)
