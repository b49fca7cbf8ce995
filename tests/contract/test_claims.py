"""RunStore pending-op claims: a planned step runs as its own job, and the claim keeps two
deliveries of that job from running the step at once.

The claim rule is the run lease's: free, expired (``claim_until < now``) or already ours.
"""

from __future__ import annotations

import sqlite3

import pytest

from stepline.engine.records import RunStatus, Waiter, WaiterKind
from stepline.local import local_backend
from stepline.local.schema import SCHEMA_VERSION

from .helpers import make_memo, make_pending, make_run, race

N = 8
S = 1000
PAID_EVENT = "shop/order.paid"


@pytest.fixture
def run(backend, clock):
    run = make_run(clock, status=RunStatus.RUNNING)
    backend.store.create_run(run)
    return run


def planned(step_id: str = "p"):
    return make_pending(step_id, "StepPlanned", created_at=1, input=[1, {"a": None}])


def test_missing_op_cannot_be_claimed(backend, run, clock):
    now = clock.now_ms()
    assert backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now) is False
    assert backend.store.claim_pending("no-such-run", "p", "w1", now + 30 * S, now) is False


def test_a_free_op_is_claimed_and_then_held(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())

    assert backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now) is True
    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 60 * S, now + 1) is False
    # Still held at the instant it ends: a claim is expired only once claim_until < now.
    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 60 * S, now + 30 * S) is False


def test_an_expired_claim_is_taken_over(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())
    backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now)

    later = now + 30 * S + 1
    assert backend.store.claim_pending(run.run_id, "p", "w2", later + 30 * S, later) is True
    # The first owner lost it and cannot take it back while w2's claim lives.
    assert backend.store.claim_pending(run.run_id, "p", "w1", later + 60 * S, later + 1) is False


def test_the_owner_renews_its_claim(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())
    backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now)

    assert backend.store.claim_pending(run.run_id, "p", "w1", now + 90 * S, now + 20 * S) is True
    # Renewed: past the first claim's end, another owner still cannot take it.
    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 120 * S, now + 60 * S) is False
    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 120 * S, now + 90 * S + 1) is True


def test_claims_are_per_op(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned("a"))
    backend.store.add_pending(run.run_id, planned("b"))

    assert backend.store.claim_pending(run.run_id, "a", "w1", now + 30 * S, now) is True
    assert backend.store.claim_pending(run.run_id, "b", "w2", now + 30 * S, now) is True
    assert backend.store.claim_pending(run.run_id, "b", "w1", now + 30 * S, now) is False


def test_a_memoized_and_removed_op_cannot_be_claimed(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())
    assert backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now)

    # The step finished: its memo is written and the op removed. A redelivered job for it
    # finds nothing to claim, the owner included, even once the claim would have expired.
    assert backend.store.commit_memo(run.run_id, make_memo("p", "done", "0001"))
    backend.store.remove_pending(run.run_id, "p")

    assert backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now) is False
    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 90 * S, now + 60 * S) is False


def test_a_re_added_op_starts_unclaimed(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())
    backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now)
    backend.store.remove_pending(run.run_id, "p")
    backend.store.add_pending(run.run_id, planned())

    assert backend.store.claim_pending(run.run_id, "p", "w2", now + 30 * S, now) is True


def test_a_claim_does_not_change_the_op_as_loaded(backend, run, clock):
    now = clock.now_ms()
    op = planned()
    backend.store.add_pending(run.run_id, op)
    backend.store.claim_pending(run.run_id, "p", "w1", now + 30 * S, now)

    state = backend.store.load_run(run.run_id)
    assert state.pending == {"p": op}
    assert state.run.lease_owner is None  # the op's claim is not the run's lease


def test_claim_race_has_one_winner(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())

    won = race(N, lambda i: backend.store.claim_pending(run.run_id, "p", f"w{i}", now + 30 * S, now))

    assert won.count(True) == 1
    winner = f"w{won.index(True)}"
    assert backend.store.claim_pending(run.run_id, "p", winner, now + 60 * S, now + 1) is True
    losers = [f"w{i}" for i in range(N) if f"w{i}" != winner]
    assert not any(
        backend.store.claim_pending(run.run_id, "p", w, now + 60 * S, now + 2) for w in losers
    )


def test_expired_claim_race_has_one_winner(backend, run, clock):
    now = clock.now_ms()
    backend.store.add_pending(run.run_id, planned())
    backend.store.claim_pending(run.run_id, "p", "crashed", now + S, now)
    later = now + 2 * S

    won = race(N, lambda i: backend.store.claim_pending(run.run_id, "p", f"w{i}", later + 30 * S, later))

    assert won.count(True) == 1


# -- the local file ----------------------------------------------------------------------------
# What a file written by the first schema version held for these tables (the rest of that
# schema is unchanged since).
_V1_TABLES = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, fn_id TEXT NOT NULL, app_id TEXT NOT NULL, status TEXT NOT NULL,
    events_json TEXT NOT NULL, event_ids_json TEXT NOT NULL, created_at INTEGER NOT NULL,
    started_at INTEGER, ended_at INTEGER, output_json TEXT NOT NULL, error_json TEXT NOT NULL,
    req_version INTEGER NOT NULL, disable_immediate INTEGER NOT NULL, lease_owner TEXT,
    lease_until INTEGER
);
CREATE TABLE pending (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, op TEXT NOT NULL, name TEXT NOT NULL,
    created_at INTEGER NOT NULL, detail_json TEXT NOT NULL, PRIMARY KEY (run_id, step_id)
);
CREATE TABLE timers (name TEXT PRIMARY KEY, fire_at INTEGER NOT NULL, body TEXT NOT NULL);
INSERT INTO runs VALUES ('r-old', 'shop-fulfil', 'shop', 'Running', '[]', '[]', 1000,
    1000, NULL, 'null', 'null', -1, 0, NULL, NULL);
INSERT INTO pending VALUES ('r-old', 'p-old', 'StepPlanned', 'p', 1000, '{}');
INSERT INTO timers VALUES ('t-old', 5000, '{"n":1}');
PRAGMA user_version = 1;
"""


def test_sqlite_file_of_schema_v1_is_upgraded_in_place(tmp_path, clock):
    path = str(tmp_path / "dev.db")
    conn = sqlite3.connect(path)
    conn.executescript(_V1_TABLES)
    conn.close()
    now = clock.now_ms()

    with local_backend(path, clock) as upgraded:
        # Rows written before the upgrade: the op gained unclaimed claim columns.
        assert upgraded.store.claim_pending("r-old", "p-old", "w1", now + 30 * S, now) is True
        assert upgraded.store.claim_pending("r-old", "p-old", "w2", now + 30 * S, now) is False
        (old,), _ = upgraded.store.list_runs("shop-fulfil", limit=5)
        assert old.run_id == "r-old"
        # The run counts its takes from the upgrade on (runs.sgen, added with 0).
        assert upgraded.store.acquire_lease("r-old", "w1", now + 30 * S, now) == 1
        assert upgraded.timers.next_fire_at() == 5000
        # And the new tables exist.
        waiting = Waiter(PAID_EVENT, "r-old", "w", WaiterKind.WAIT, now + S, now)
        assert upgraded.store.add_waiter(waiting) is True
        assert upgraded.timers.list_crons() == []

    # Opened again: already current, nothing re-run, nothing lost.
    with local_backend(path, clock) as again:
        assert again.store.waiters_for_event(PAID_EVENT, now).waiters == [waiting]
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"waiters", "waiter_fields", "crons", "runs_by_fn_time", "waiters_by_bucket_time"} <= names
        columns = {r[1] for r in conn.execute("PRAGMA table_info(pending)")}
        assert {"claim_owner", "claim_until"} <= columns
    finally:
        conn.close()
