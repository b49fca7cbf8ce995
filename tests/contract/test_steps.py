"""RunStore steps: a memo is written once; a pending op is recorded once and never over a memo."""

from __future__ import annotations

import pytest

from .helpers import make_memo, make_pending, make_run


@pytest.fixture
def run(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    return run


def test_first_memo_write_wins(backend, run):
    first = make_memo("step-1", "first", "0001")
    second = make_memo("step-1", "second", "0002")

    assert backend.store.commit_memo(run.run_id, first) is True
    assert backend.store.commit_memo(run.run_id, second) is False

    assert backend.store.load_run(run.run_id).memos == [first]


def test_error_memos_are_memos_too(backend, run):
    failed = make_memo("step-1", None, "0001")
    failed.value = {"error": {"name": "Error", "message": "boom", "stack": "at line 1"}}

    assert backend.store.commit_memo(run.run_id, failed)
    assert not backend.store.commit_memo(run.run_id, make_memo("step-1", "late success", "0002"))
    assert backend.store.load_run(run.run_id).memo_map() == {"step-1": failed.value}


def test_distinct_steps_each_commit(backend, run):
    for i in range(5):
        assert backend.store.commit_memo(run.run_id, make_memo(f"step-{i}", i, f"{i:04d}"))
    assert backend.store.load_run(run.run_id).stack() == [f"step-{i}" for i in range(5)]


def test_add_pending_once(backend, clock, run):
    op = make_pending("sleep-1", "Sleep", created_at=clock.now_ms(), wake_at=123)
    again = make_pending("sleep-1", "Sleep", created_at=clock.now_ms() + 1, wake_at=456)

    assert backend.store.add_pending(run.run_id, op) is True
    assert backend.store.add_pending(run.run_id, again) is False

    assert backend.store.load_run(run.run_id).pending == {"sleep-1": op}


def test_add_pending_is_refused_once_the_step_has_a_memo(backend, run):
    backend.store.commit_memo(run.run_id, make_memo("step-1", "done", "0001"))

    assert backend.store.add_pending(run.run_id, make_pending("step-1", "StepPlanned")) is False
    assert backend.store.load_run(run.run_id).pending == {}


def test_commit_memo_leaves_the_pending_op_to_remove_pending(backend, run):
    # The engine commits a planned step's memo, then removes its pending op: two calls, so a
    # crash between them leaves a memo beside a stale op, never an op without its memo.
    backend.store.add_pending(run.run_id, make_pending("step-1", "StepPlanned"))
    assert backend.store.commit_memo(run.run_id, make_memo("step-1", "done", "0001"))

    state = backend.store.load_run(run.run_id)
    assert state.memo_map() == {"step-1": {"data": "done"}} and set(state.pending) == {"step-1"}
    backend.store.remove_pending(run.run_id, "step-1")
    state = backend.store.load_run(run.run_id)
    assert state.pending == {} and state.memo_map() == {"step-1": {"data": "done"}}


def test_remove_pending(backend, run):
    backend.store.add_pending(run.run_id, make_pending("a"))
    backend.store.add_pending(run.run_id, make_pending("b"))

    backend.store.remove_pending(run.run_id, "a")
    backend.store.remove_pending(run.run_id, "never-added")

    assert set(backend.store.load_run(run.run_id).pending) == {"b"}
    # Removed ops may be recorded again (a retried planned step).
    assert backend.store.add_pending(run.run_id, make_pending("a", "StepPlanned"))
    assert backend.store.load_run(run.run_id).pending["a"].op == "StepPlanned"
