"""RunStore runs: create once, one-read load, conditional updates, lookup by event."""

from __future__ import annotations

import pytest

from stepline.engine.records import RunStatus

from .helpers import make_memo, make_pending, make_run, new_id


def test_create_run_then_get(backend, clock):
    run = make_run(clock)
    assert backend.store.create_run(run) is True
    assert backend.store.get_run(run.run_id) == run


def test_create_run_with_an_existing_id_is_refused_and_changes_nothing(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    impostor = make_run(clock, run_id=run.run_id, fn_id="someone-else")

    assert backend.store.create_run(impostor) is False
    assert backend.store.get_run(run.run_id) == run


def test_unknown_run_is_none(backend):
    assert backend.store.get_run("nope") is None
    assert backend.store.load_run("nope") is None


def test_load_run_returns_run_memos_in_seq_order_and_pending(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    memos = [make_memo("step-c", 3, "0003"), make_memo("step-a", 1, "0001"), make_memo("step-b", 2, "0002")]
    for memo in memos:
        assert backend.store.commit_memo(run.run_id, memo)
    sleep = make_pending("sleep-1", "Sleep", created_at=clock.now_ms(), wake_at=clock.now_ms() + 60_000)
    wait = make_pending("wait-1", "WaitForEvent", event="shop/order.paid", expr="event.id == async.id")
    assert backend.store.add_pending(run.run_id, sleep)
    assert backend.store.add_pending(run.run_id, wait)

    state = backend.store.load_run(run.run_id)

    assert state.run == run
    assert [m.step_id for m in state.memos] == ["step-a", "step-b", "step-c"]
    assert state.memos[0] == memos[1]
    assert state.memo_map() == {"step-a": {"data": 1}, "step-b": {"data": 2}, "step-c": {"data": 3}}
    assert state.pending == {"sleep-1": sleep, "wait-1": wait}


def test_load_run_of_a_fresh_run_is_empty(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    state = backend.store.load_run(run.run_id)
    assert state.run == run and state.memos == [] and state.pending == {}


def test_memos_and_pending_belong_to_their_run(backend, clock):
    one, two = make_run(clock), make_run(clock)
    backend.store.create_run(one)
    backend.store.create_run(two)
    backend.store.commit_memo(one.run_id, make_memo("s", "one", "1"))
    backend.store.add_pending(two.run_id, make_pending("s"))

    assert backend.store.load_run(one.run_id).pending == {}
    assert backend.store.load_run(two.run_id).memos == []


def test_runs_for_event_oldest_first(backend, clock):
    event_a, event_b = new_id(clock), new_id(clock)
    t = clock.now_ms()
    later = make_run(clock, event_ids=[event_a], created_at=t + 2000)
    earlier = make_run(clock, event_ids=[event_a, event_b], created_at=t + 1000)
    other = make_run(clock, event_ids=[event_b], created_at=t + 3000)
    for run in (later, earlier, other):
        backend.store.create_run(run)

    assert backend.store.runs_for_event(event_a) == [earlier, later]
    assert backend.store.runs_for_event(event_b) == [earlier, other]
    assert backend.store.runs_for_event(new_id(clock)) == []


def test_update_run_sets_the_named_fields(backend, clock):
    run = make_run(clock, status=RunStatus.RUNNING)
    backend.store.create_run(run)
    changes = {
        "status": RunStatus.COMPLETED,
        "ended_at": clock.now_ms() + 5,
        "output": {"shipped": True, "items": [1, 2]},
        "req_version": 2,
        "app_version": "v7",
    }

    assert backend.store.update_run(run.run_id, changes) is True

    got = backend.store.get_run(run.run_id)
    assert got.status is RunStatus.COMPLETED
    assert (got.ended_at, got.output, got.req_version, got.app_version) == (
        changes["ended_at"], changes["output"], 2, "v7",
    )
    assert (got.fn_id, got.events, got.created_at) == (run.fn_id, run.events, run.created_at)


def test_update_run_can_clear_fields(backend, clock):
    run = make_run(clock)
    run.error = {"name": "Error", "message": "boom", "stack": ""}
    run.output = "partial"
    backend.store.create_run(run)

    assert backend.store.update_run(run.run_id, {"error": None, "output": None})
    got = backend.store.get_run(run.run_id)
    assert got.error is None and got.output is None


@pytest.mark.parametrize(
    ("expect", "allowed"),
    [
        ({RunStatus.RUNNING}, True),
        ({RunStatus.QUEUED, RunStatus.RUNNING}, True),
        ({RunStatus.QUEUED}, False),
        ({RunStatus.COMPLETED, RunStatus.CANCELLED}, False),
    ],
)
def test_update_run_with_expect_status(backend, clock, expect, allowed):
    run = make_run(clock, status=RunStatus.RUNNING)
    backend.store.create_run(run)

    result = backend.store.update_run(run.run_id, {"status": RunStatus.CANCELLED}, expect_status=expect)

    assert result is allowed
    expected = RunStatus.CANCELLED if allowed else RunStatus.RUNNING
    assert backend.store.get_run(run.run_id).status is expected


def test_update_run_with_expect_lease_owner(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    now = clock.now_ms()

    # Nobody holds the lease yet: any expected owner fails.
    assert backend.store.update_run(run.run_id, {"output": 1}, expect_lease_owner="w1") is False
    assert backend.store.acquire_lease(run.run_id, "w1", now + 30_000, now)
    assert backend.store.update_run(run.run_id, {"output": 2}, expect_lease_owner="w2") is False
    assert backend.store.update_run(run.run_id, {"output": 3}, expect_lease_owner="w1") is True
    assert backend.store.get_run(run.run_id).output == 3


def test_update_run_with_both_conditions(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    now = clock.now_ms()
    backend.store.acquire_lease(run.run_id, "w1", now + 30_000, now)

    assert not backend.store.update_run(
        run.run_id, {"output": 1}, expect_status={RunStatus.QUEUED}, expect_lease_owner="w1"
    )
    assert backend.store.update_run(
        run.run_id, {"output": 2}, expect_status={RunStatus.RUNNING}, expect_lease_owner="w1"
    )
    assert backend.store.get_run(run.run_id).output == 2


def test_update_of_a_missing_run_is_false_and_creates_nothing(backend):
    assert backend.store.update_run("missing", {"output": 1}) is False
    assert backend.store.update_run("missing", {"output": 1}, expect_status={RunStatus.RUNNING}) is False
    assert backend.store.get_run("missing") is None
