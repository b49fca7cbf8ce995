"""What one executor invocation holds of its run, and how it takes, renews and lets go of it.

Two holds keep two jobs from working on the same thing (docs/architecture.md, "One reader at a
time per run"):

* the run's lease: discovery, and any call that may end the run, run under it. It is taken
  BEFORE the run is read, so the reader never misses the memo its predecessor wrote just before
  letting go.
* a planned step's claim: a planned parallel step runs as a job of its own under a claim on that
  step alone, so branches run concurrently. The discovery call that follows needs the run's
  lease (``upgrade``). A step whose attempt failed keeps its claim until its retry is due, and
  the retry message carries the claim (``carry_claim``): to the sweeper, a live claim means the
  step is in hand.

Both are renewed before each call once less than a step timeout is left, so no other job takes
the run or the step while the app works on it. A crashed holder's lease or claim expires after
``Settings.lease_ms``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from stepline.engine.ids import IdGenerator
from stepline.engine.ports import Clock, RunStore
from stepline.protocol.opcodes import DISCOVERY_STEP_ID
from stepline.settings import Settings

log = logging.getLogger(__name__)

# A parallel branch's job waits this long (ms, in turn) for the run's lease before queueing its
# discovery for later (see Leases.upgrade).
UPGRADE_PAUSES_MS = (2, 4, 8, 16, 32, 64, 128)


class Refusal(StrEnum):
    """Why a call message could take neither the run's lease nor its step's claim."""

    ENDED = "ended"  # the run ended, or is gone: nothing to do
    SETTLED = "settled"  # the step has its result already: only the discovery after it is left
    BUSY = "busy"  # another job holds the run, or the step


@dataclass
class Hold:
    """What one invocation holds: the run's lease, a planned step's claim, or both once a
    claimed step's job took the lease for the discovery after it."""

    run_id: str
    owner: str  # this invocation: the owner of the run's lease
    holds_run_lease: bool
    taken_at: int  # when it was taken
    lease_until: int = 0  # while the run's lease is held
    claimed_step: str | None = None
    # Who holds the claimed step: ``owner``, or the claim a retry message carried.
    claim_owner: str = ""
    claim_until: int = 0  # until when this invocation holds the claimed step
    # Until when the claimed step stays claimed once this invocation ends: set when its retry
    # was queued, so the claim covers the backoff; None lets it go at once.
    keep_claim_until: int | None = None

    def step_settled(self, step_id: str) -> None:
        """The step's result was written: its claim went with its pending op."""
        if self.claimed_step == step_id:
            self.claimed_step = None

    def carry_claim(self, step_id: str, until_ms: int) -> str | None:
        """A retry of ``step_id`` is queued, due before ``until_ms``: when this invocation holds
        that step, it stays claimed until then, and the retry carries the claim (returned)."""
        if self.claimed_step != step_id:
            return None
        self.keep_claim_until = until_ms
        return self.claim_owner


class Leases:
    def __init__(self, runs: RunStore, clock: Clock, ids: IdGenerator, settings: Settings) -> None:
        self.runs = runs
        self.clock = clock
        self.ids = ids
        self.settings = settings
        # Waits a little for a lease another job holds briefly (real time: no clock moves it).
        self.pause: Callable[[float], None] = time.sleep

    def take(self, run_id: str, step: str, carried_claim: str | None = None) -> Hold | Refusal:
        """Take what a call for ``step`` of the run needs: the step's claim for a planned step
        (by ``carried_claim`` when its retry message carries one), else the run's lease."""
        now = self.clock.now_ms()
        owner = self.ids.new()
        until = now + self.settings.lease_ms
        claim_owner = carried_claim or owner
        if step != DISCOVERY_STEP_ID:
            if self.runs.claim_pending(run_id, step, claim_owner, until, now):
                return Hold(run_id, owner, False, now, claimed_step=step, claim_owner=claim_owner, claim_until=until)
            peek = self.runs.load_run(run_id)
            if peek is None or peek.run.status.terminal:
                return Refusal.ENDED
            if peek.has_memo(step):
                return Refusal.SETTLED
            if step in peek.pending:
                return Refusal.BUSY  # another job holds the step's claim
            # No op to claim (never recorded, or gone): the call runs under the run's lease.
        if not self.runs.acquire_lease(run_id, owner, until, now):
            run = self.runs.get_run(run_id)
            return Refusal.BUSY if run is not None and not run.status.terminal else Refusal.ENDED
        return Hold(run_id, owner, True, now, lease_until=until, claim_owner=claim_owner)

    def renew(self, hold: Hold) -> None:
        """Before a call: hold the run's lease (or the step's claim) for at least the call's
        timeout. Raises when it was lost: another job has the run now."""
        now = self.clock.now_ms()
        if hold.holds_run_lease:
            if hold.lease_until - now > self._call_ms:
                return
            until = now + self.settings.lease_ms
            if not self.runs.acquire_lease(hold.run_id, hold.owner, until, now):
                raise RuntimeError(f"run {hold.run_id}: lease lost")
            hold.lease_until = until
        elif hold.claimed_step is not None and hold.claim_until - now <= self._call_ms:
            until = now + self.settings.lease_ms
            if not self.runs.claim_pending(hold.run_id, hold.claimed_step, hold.claim_owner, until, now):
                raise RuntimeError(f"run {hold.run_id}: claim on step {hold.claimed_step} lost")
            hold.claim_until = until

    def upgrade(self, hold: Hold) -> bool:
        """Take the run's lease after a claimed step (for the discovery after it, or to end the
        run). False when another job holds it. The caller reads the run again: other branches
        may have finished meanwhile.

        Holding it is most often another branch's job, running the same discovery for a few
        milliseconds: waiting that out beats a queued retry a second later (the step after a
        parallel group then starts at once)."""
        for pause_ms in (*UPGRADE_PAUSES_MS, None):
            now = self.clock.now_ms()
            until = now + self.settings.lease_ms
            if self.runs.acquire_lease(hold.run_id, hold.owner, until, now):
                hold.holds_run_lease = True
                hold.lease_until = until
                return True
            if pause_ms is not None:
                self.pause(pause_ms / 1000)
        return False

    def release(self, hold: Hold, run_fields: dict[str, Any]) -> None:
        """The invocation is over: the claimed step goes (or stays claimed through its retry's
        backoff), and the run's lease goes with one write that also persists ``run_fields``."""
        if hold.claimed_step is not None:
            self._unclaim(hold, hold.keep_claim_until)
        if hold.holds_run_lease:
            changes = {**run_fields, "lease_owner": None, "lease_until": None}
            self.runs.update_run(hold.run_id, changes, expect_lease_owner=hold.owner)

    def let_go(self, hold: Hold) -> None:
        """Nothing to do for the run after all (it ended, or is gone): free what was taken."""
        if hold.claimed_step is not None:
            self._unclaim(hold, None)
        else:
            self.runs.release_lease(hold.run_id, hold.owner)

    def let_go_quietly(self, hold: Hold) -> None:
        """After a store or queue failure part-way (the message will be delivered again): free
        the run now, best effort, so the next delivery goes on at once instead of waiting out
        the lease. A crash that kills the process leaves them to expire instead."""
        try:
            self.runs.release_lease(hold.run_id, hold.owner)  # held, if a claimed step's job upgraded
            if hold.claimed_step is not None:
                self._unclaim(hold, None)
        except Exception:  # noqa: BLE001 - the store is failing already; the lease will expire
            log.debug("run %s: could not let go after a failure", hold.run_id, exc_info=True)

    def _unclaim(self, hold: Hold, keep_until: int | None) -> None:
        # Re-claim with an expiry of now: the next job can take it at once. A step whose retry
        # is queued keeps it until then (the retry carries the claim).
        assert hold.claimed_step is not None
        now = self.clock.now_ms()
        self.runs.claim_pending(
            hold.run_id, hold.claimed_step, hold.claim_owner, now if keep_until is None else keep_until, now
        )

    @property
    def _call_ms(self) -> float:
        return self.settings.step_timeout_s * 1000
