"""RunStore.stalled_runs and Run.wake_at: the sweeper's view of runs that should have moved on.

A run is listed while it has not ended, its ``wake_at`` is below the cut-off and its lease is
free or expired. Ending a run clears ``wake_at``; ``expect_wake_at`` makes a compare-and-set of
it, which is how the sweeper claims a run it re-arms.
"""

from __future__ import annotations

import sqlite3

import pytest

from stepline.engine.records import RunStatus
from stepline.local import local_backend

from .helpers import make_run
from .test_claims import _V1_TABLES as V1_TABLES

LEASE_MS = 30_000


def stalled_ids(store, before_ms: int, now_ms: int, limit: int = 100) -> list[str]:
    """Every listed run id, following cursors to the end."""
    ids: list[str] = []
    cursor = None
    for _ in range(100):
        page, cursor = store.stalled_runs(before_ms, now_ms, limit=limit, cursor=cursor)
        assert len(page) <= limit
        ids += [run.run_id for run in page]
        if cursor is None:
            return ids
    raise AssertionError("the listing never ended")


def live_run(backend, clock, wake_at: int, status: RunStatus = RunStatus.QUEUED):
    run = make_run(clock, status=status)
    run.wake_at = wake_at
    assert backend.store.create_run(run)
    return run


def test_wake_at_round_trips(backend, clock):
    run = live_run(backend, clock, wake_at=clock.now_ms() + 5_000)
    assert backend.store.get_run(run.run_id).wake_at == run.wake_at
    assert backend.store.load_run(run.run_id).run.wake_at == run.wake_at

    later = clock.now_ms() + 60_000
    assert backend.store.update_run(run.run_id, {"wake_at": later})
    assert backend.store.get_run(run.run_id).wake_at == later
    assert backend.store.update_run(run.run_id, {"wake_at": None})
    assert backend.store.get_run(run.run_id).wake_at is None


def test_runs_due_before_the_cut_off_are_listed(backend, clock):
    now = clock.now_ms()
    due = live_run(backend, clock, wake_at=now - 10_000)
    running = live_run(backend, clock, wake_at=now - 20_000, status=RunStatus.RUNNING)
    at_cut_off = live_run(backend, clock, wake_at=now - 5_000)
    later = live_run(backend, clock, wake_at=now + 60_000)
    never = live_run(backend, clock, wake_at=None)

    listed = stalled_ids(backend.store, before_ms=now - 5_000, now_ms=now)

    assert sorted(listed) == sorted([due.run_id, running.run_id])
    assert not {at_cut_off.run_id, later.run_id, never.run_id} & set(listed)


def test_a_live_lease_keeps_a_run_out_until_it_expires(backend, clock):
    now = clock.now_ms()
    run = live_run(backend, clock, wake_at=now - 10_000)
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)

    assert stalled_ids(backend.store, before_ms=now, now_ms=now) == []
    # lease_until == now is still live, as for acquire_lease.
    assert stalled_ids(backend.store, before_ms=now, now_ms=now + LEASE_MS) == []
    assert stalled_ids(backend.store, before_ms=now, now_ms=now + LEASE_MS + 1) == [run.run_id]

    backend.store.release_lease(run.run_id, "w1")
    assert stalled_ids(backend.store, before_ms=now, now_ms=now) == [run.run_id]


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_ending_a_run_clears_wake_at_and_unlists_it(backend, clock, status):
    now = clock.now_ms()
    run = live_run(backend, clock, wake_at=now - 10_000)

    assert backend.store.update_run(run.run_id, {"status": status, "ended_at": now})

    assert backend.store.get_run(run.run_id).wake_at is None
    assert stalled_ids(backend.store, before_ms=now + 1, now_ms=now) == []


def test_a_run_moved_past_the_cut_off_is_no_longer_listed(backend, clock):
    now = clock.now_ms()
    run = live_run(backend, clock, wake_at=now - 10_000)
    assert backend.store.update_run(run.run_id, {"wake_at": now + 1})
    assert stalled_ids(backend.store, before_ms=now, now_ms=now) == []
    assert backend.store.update_run(run.run_id, {"wake_at": now - 1})
    assert stalled_ids(backend.store, before_ms=now, now_ms=now) == [run.run_id]


def test_expect_wake_at_is_a_compare_and_set(backend, clock):
    now = clock.now_ms()
    run = live_run(backend, clock, wake_at=now - 10_000)

    assert backend.store.update_run(run.run_id, {"wake_at": now}, expect_wake_at=now - 9_999) is False
    assert backend.store.get_run(run.run_id).wake_at == now - 10_000
    assert backend.store.update_run(run.run_id, {"wake_at": now}, expect_wake_at=now - 10_000) is True
    # The loser of two racing sweeps read the old value: its write is refused.
    assert backend.store.update_run(run.run_id, {"wake_at": now + 5}, expect_wake_at=now - 10_000) is False
    assert backend.store.get_run(run.run_id).wake_at == now


def test_pages_list_every_stalled_run_once(backend, clock):
    now = clock.now_ms()
    # Some share a wake_at, so ties are broken by run id across pages.
    runs = [live_run(backend, clock, wake_at=now - 1_000 * (i % 4) - 1) for i in range(23)]
    live_run(backend, clock, wake_at=now + 1)

    listed = stalled_ids(backend.store, before_ms=now, now_ms=now, limit=5)

    assert sorted(listed) == sorted(r.run_id for r in runs)


def test_a_listed_run_is_current(backend, clock):
    now = clock.now_ms()
    run = live_run(backend, clock, wake_at=now - 10_000, status=RunStatus.RUNNING)
    assert backend.store.update_run(run.run_id, {"req_version": 2})

    [listed] = backend.store.stalled_runs(now, now, limit=10)[0]

    assert listed.run_id == run.run_id and listed.req_version == 2
    assert listed.status is RunStatus.RUNNING and listed.wake_at == now - 10_000


def test_a_foreign_cursor_is_refused(backend, clock):
    with pytest.raises(ValueError):
        backend.store.stalled_runs(clock.now_ms(), clock.now_ms(), limit=10, cursor="not-a-cursor")


def test_live_runs_of_an_older_sqlite_file_are_swept_after_the_upgrade(tmp_path, clock):
    path = str(tmp_path / "dev.db")
    conn = sqlite3.connect(path)
    conn.executescript(V1_TABLES)  # one Running run, created at 1000, from before wake_at
    conn.close()

    with local_backend(path, clock) as upgraded:
        [old] = upgraded.store.stalled_runs(2000, clock.now_ms(), limit=10)[0]
        assert (old.run_id, old.wake_at) == ("r-old", 1000)
    conn = sqlite3.connect(path)
    try:
        assert "runs_by_wake" in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
