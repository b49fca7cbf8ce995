"""What operators read about runs, kept by both families: a memo's ``detail``, a point read of
one pending op (``get_pending``), and a run's ``origin`` (replays and reruns)."""

from __future__ import annotations

import pytest

from stepline.engine.records import Memo, RunStatus

from .helpers import make_memo, make_pending, make_run


@pytest.fixture
def run(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    return run


def test_memo_detail_round_trips(backend, run):
    detail = {"op": "StepRun", "started_at": 1_700_000_000_123, "attempt": 2, "queued_at": 1_700_000_000_000,
              "input": {"wake_at": 1_700_000_100_000, "event": "a/b"}}
    memo = Memo(step_id="s1", value={"data": {"ok": True}}, seq="0001", name="fetch", detail=detail)
    assert backend.store.commit_memo(run.run_id, memo)
    [stored] = backend.store.load_run(run.run_id).memos
    assert stored == memo and stored.detail == detail


def test_memo_without_detail_reads_as_empty(backend, run):
    assert backend.store.commit_memo(run.run_id, make_memo("s1", 1, "0001"))
    [stored] = backend.store.load_run(run.run_id).memos
    assert stored.detail == {}


def test_losing_memo_write_keeps_the_winners_detail(backend, run):
    first = Memo(step_id="s1", value={"data": 1}, seq="0001", detail={"op": "Sleep"})
    second = Memo(step_id="s1", value={"data": 2}, seq="0002", detail={"op": "WaitForEvent"})
    assert backend.store.commit_memo(run.run_id, first)
    assert not backend.store.commit_memo(run.run_id, second)
    assert backend.store.load_run(run.run_id).memos[0].detail == {"op": "Sleep"}


def test_get_pending_reads_one_op_until_it_is_removed(backend, run):
    op = make_pending("w1", "WaitForEvent", created_at=42, event="a/b", expires_at=99)
    assert backend.store.get_pending(run.run_id, "w1") is None
    assert backend.store.add_pending(run.run_id, op)
    assert backend.store.get_pending(run.run_id, "w1") == op
    assert backend.store.get_pending(run.run_id, "other") is None
    assert backend.store.get_pending("no-such-run", "w1") is None
    backend.store.remove_pending(run.run_id, "w1")
    assert backend.store.get_pending(run.run_id, "w1") is None


def test_get_pending_sees_the_op_beside_a_memo_on_the_same_step(backend, run):
    # A memo can land while its op is still recorded (the resume path removes the op after).
    op = make_pending("s1", "Sleep", created_at=7, wake_at=8)
    assert backend.store.add_pending(run.run_id, op)
    assert backend.store.commit_memo(run.run_id, make_memo("s1", None, "0001"))
    assert backend.store.get_pending(run.run_id, "s1") == op


def test_run_origin_round_trips_everywhere_a_run_is_read(backend, clock):
    origin = {"kind": "rerun", "run_id": "01ORIGINAL", "step_id": "abc", "step_name": "charge"}
    run = make_run(clock)
    run.origin = origin
    assert backend.store.create_run(run)
    assert backend.store.get_run(run.run_id).origin == origin
    assert backend.store.load_run(run.run_id).run.origin == origin
    assert backend.store.runs_for_event(run.event_ids[0])[0].origin == origin
    listed, _ = backend.store.list_runs(run.fn_id, limit=10)
    assert [r.origin for r in listed] == [origin]
    # Status changes leave it alone.
    assert backend.store.update_run(run.run_id, {"status": RunStatus.COMPLETED, "output": 1})
    assert backend.store.get_run(run.run_id).origin == origin


def test_runs_started_by_events_have_no_origin(backend, run):
    assert backend.store.get_run(run.run_id).origin is None
    assert backend.store.load_run(run.run_id).run.origin is None


# -- the local file: a file written before step details gains them, its rows untouched ---------
_V3_TABLES = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, fn_id TEXT NOT NULL, app_id TEXT NOT NULL, status TEXT NOT NULL,
    events_json TEXT NOT NULL, event_ids_json TEXT NOT NULL, created_at INTEGER NOT NULL,
    started_at INTEGER, ended_at INTEGER, output_json TEXT NOT NULL, error_json TEXT NOT NULL,
    req_version INTEGER NOT NULL, disable_immediate INTEGER NOT NULL, lease_owner TEXT,
    lease_until INTEGER
);
CREATE TABLE memos (
    run_id TEXT NOT NULL, step_id TEXT NOT NULL, seq TEXT NOT NULL, name TEXT NOT NULL,
    value_json TEXT NOT NULL, PRIMARY KEY (run_id, step_id)
);
INSERT INTO runs VALUES ('r-old', 'shop-fulfil', 'shop', 'Running', '[]', '[]', 1000,
    1000, NULL, 'null', 'null', -1, 0, NULL, NULL);
INSERT INTO memos VALUES ('r-old', 's-old', '0001', 'old step', '{"data":1}');
PRAGMA user_version = 3;
"""


def test_sqlite_file_without_step_details_is_upgraded_in_place(tmp_path, clock):
    import sqlite3

    from stepline.local import local_backend

    path = str(tmp_path / "dev.db")
    conn = sqlite3.connect(path)
    conn.executescript(_V3_TABLES)
    conn.close()

    with local_backend(path, clock) as upgraded:
        state = upgraded.store.load_run("r-old")
        assert state.run.origin is None
        assert [(m.step_id, m.name, m.detail) for m in state.memos] == [("s-old", "old step", {})]
        new = Memo(step_id="s-new", value={"data": 2}, seq="0002", detail={"op": "StepRun", "attempt": 0})
        assert upgraded.store.commit_memo("r-old", new)
        assert upgraded.store.load_run("r-old").memos[-1].detail == {"op": "StepRun", "attempt": 0}
        assert upgraded.store.update_run("r-old", {"origin": {"kind": "replay", "run_id": "r-0"}})
        assert upgraded.store.get_run("r-old").origin == {"kind": "replay", "run_id": "r-0"}
