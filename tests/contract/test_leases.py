"""RunStore leases: one live owner per run; QUEUED becomes RUNNING on the first take."""

from __future__ import annotations

import pytest

from stepline.engine.records import RunStatus

from .helpers import make_run

LEASE_MS = 30_000


@pytest.fixture
def run(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    return run


def test_free_lease_on_a_queued_run_starts_it(backend, clock, run):
    now = clock.now_ms()
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now) == 1  # the first take

    got = backend.store.get_run(run.run_id)
    assert got.status is RunStatus.RUNNING
    assert got.started_at == now
    assert (got.lease_owner, got.lease_until) == ("w1", now + LEASE_MS)


def test_started_at_is_set_once(backend, clock, run):
    first = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", first + LEASE_MS, first)
    backend.store.release_lease(run.run_id, "w1")
    later = clock.advance(60_000)

    assert backend.store.acquire_lease(run.run_id, "w2", later + LEASE_MS, later)
    got = backend.store.get_run(run.run_id)
    assert got.started_at == first and got.status is RunStatus.RUNNING


def test_running_run_without_a_lease_can_be_taken(backend, clock):
    run = make_run(clock, status=RunStatus.RUNNING)
    backend.store.create_run(run)
    now = clock.now_ms()
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)
    assert backend.store.get_run(run.run_id).status is RunStatus.RUNNING


def test_live_lease_of_another_owner_is_refused(backend, clock, run):
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)

    assert backend.store.acquire_lease(run.run_id, "w2", now + 2 * LEASE_MS, now + 1000) is None
    # lease_until == now is still live: only ``lease_until < now_ms`` counts as expired.
    assert backend.store.acquire_lease(run.run_id, "w2", now + 2 * LEASE_MS, now + LEASE_MS) is None
    got = backend.store.get_run(run.run_id)
    assert (got.lease_owner, got.lease_until) == ("w1", now + LEASE_MS)


def test_expired_lease_can_be_taken_over(backend, clock, run):
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)
    later = now + LEASE_MS + 1

    assert backend.store.acquire_lease(run.run_id, "w2", later + LEASE_MS, later) == 2
    got = backend.store.get_run(run.run_id)
    assert (got.lease_owner, got.lease_until) == ("w2", later + LEASE_MS)
    assert got.started_at == now


def test_same_owner_extends_its_lease(backend, clock, run):
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)

    assert backend.store.acquire_lease(run.run_id, "w1", now + 5 * LEASE_MS, now + 1000) == 2  # a renewal counts
    assert backend.store.get_run(run.run_id).lease_until == now + 5 * LEASE_MS


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_terminal_runs_cannot_be_leased(backend, clock, status):
    run = make_run(clock, status=status)
    backend.store.create_run(run)
    now = clock.now_ms()

    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now) is None
    got = backend.store.get_run(run.run_id)
    assert got.status is status and got.lease_owner is None and got.started_at is None


def test_missing_run_cannot_be_leased(backend, clock):
    now = clock.now_ms()
    assert backend.store.acquire_lease("missing", "w1", now + LEASE_MS, now) is None
    assert backend.store.get_run("missing") is None


def test_release_by_the_owner_frees_the_lease(backend, clock, run):
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)

    backend.store.release_lease(run.run_id, "w1")

    got = backend.store.get_run(run.run_id)
    assert got.lease_owner is None and got.lease_until is None
    assert got.status is RunStatus.RUNNING
    assert backend.store.acquire_lease(run.run_id, "w2", now + LEASE_MS, now + 1) == 2


def test_release_by_someone_else_does_nothing(backend, clock, run):
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now)

    backend.store.release_lease(run.run_id, "w2")
    backend.store.release_lease("missing", "w1")

    got = backend.store.get_run(run.run_id)
    assert (got.lease_owner, got.lease_until) == ("w1", now + LEASE_MS)


def test_refused_takes_leave_the_generation_alone(backend, clock, run):
    """The generation counts takes: a refused one adds nothing, so a holder whose next take
    returns its last plus one knows nobody else took the run in between."""
    now = clock.now_ms()
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now) == 1
    assert backend.store.acquire_lease(run.run_id, "w2", now + LEASE_MS, now + 1) is None
    backend.store.release_lease(run.run_id, "w1")
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now + 2) == 2
    backend.store.release_lease(run.run_id, "w1")
    assert backend.store.acquire_lease(run.run_id, "w2", now + LEASE_MS, now + 3) == 3
    assert backend.store.acquire_lease(run.run_id, "w1", now + LEASE_MS, now + 4) is None
