"""Start-up recovery for `stepline dev`.

The dev server is the only process using its SQLite file, so at start-up nothing can still be
working on a run: leases, claims on planned steps and in-flight messages left by a killed
predecessor are released at once instead of after their timeouts (minutes), and the runs carry
on straight away. Concurrency slots go too: their holders died with the process.
"""

from __future__ import annotations

from stepline.engine.ports import Clock
from stepline.local.db import Database


def recover_after_restart(db: Database, clock: Clock) -> tuple[int, int]:
    """Release every run lease, pending-op claim and concurrency slot, and make every
    received-but-unacknowledged message visible now. Returns (leases, claims and slots released,
    messages made visible)."""
    now = clock.now_ms()
    with db.write() as conn:
        leases = conn.execute(
            "UPDATE runs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL"
        ).rowcount
        leases += conn.execute(
            "UPDATE pending SET claim_owner = NULL, claim_until = NULL WHERE claim_owner IS NOT NULL"
        ).rowcount
        leases += conn.execute("DELETE FROM flow_slots").rowcount
        messages = conn.execute(
            "UPDATE queue SET visible_at = ?, receipt = NULL WHERE receipt IS NOT NULL AND visible_at > ?",
            (now, now),
        ).rowcount
    return leases, messages
