"""Values far beyond a DynamoDB item (400 KB) round-trip exactly through every store field that
can hold one, up to Inngest's limits: on AWS they go to S3 behind the item, in SQLite they stay in
the row. Either way the engine cannot tell, and conditional writes behave as for small values."""

from __future__ import annotations

from typing import Any

from stepline.engine.records import RunStatus, Waiter, WaiterKind

from .helpers import make_event, make_memo, make_pending, make_run
from .test_json import SAMPLE, assert_same_json

MIB = 1024 * 1024


def blob(size: int, seed: str = "x") -> dict[str, Any]:
    """About ``size`` bytes of JSON that is not just one string: a long text beside typed values,
    so type fidelity is checked on large values too."""
    text = (seed + "héllo ✓ 🚀 ") * (size // (len(seed) + 12))
    return {"text": text, "sample": SAMPLE, "n": 2**53 - 1, "f": 1.5, "none": None}


def test_a_one_mib_memo_round_trips_beside_small_ones(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    big = blob(MIB)
    assert backend.store.commit_memo(run.run_id, make_memo("before", 1, "0001"))
    assert backend.store.commit_memo(run.run_id, make_memo("big", big, "0002"))
    assert backend.store.commit_memo(run.run_id, make_memo("after", {"k": "v"}, "0003"))

    state = backend.store.load_run(run.run_id)
    assert state.stack() == ["before", "big", "after"]
    assert_same_json(state.memo_map()["big"], {"data": big})
    assert state.memo_map()["before"] == {"data": 1} and state.memo_map()["after"] == {"data": {"k": "v"}}


def test_the_first_large_memo_write_wins(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    first, second = blob(600_000, "a"), blob(600_000, "b")

    assert backend.store.commit_memo(run.run_id, make_memo("s", first, "0001")) is True
    assert backend.store.commit_memo(run.run_id, make_memo("s", second, "0002")) is False
    # A duplicate delivery writing the very same value also loses, and changes nothing.
    assert backend.store.commit_memo(run.run_id, make_memo("s", first, "0003")) is False

    (memo,) = backend.store.load_run(run.run_id).memos
    assert memo.seq == "0001"
    assert_same_json(memo.value, {"data": first})


def test_a_large_error_memo_round_trips(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    memo = make_memo("s", None, "0001")
    memo.value = {"error": {"name": "Error", "message": "m" * 500_000, "stack": "at line 1\n" * 20_000}}

    assert backend.store.commit_memo(run.run_id, memo)
    assert backend.store.load_run(run.run_id).memo_map() == {"s": memo.value}


def test_a_large_event_round_trips(backend, clock):
    event = make_event(clock, event_id="large-1", data=blob(int(2.5 * MIB)))
    small = make_event(clock)

    assert backend.store.save_events([event, small], clock.now_ms()) == [event, small]

    assert backend.store.get_event(event.internal_id) == event
    page, _ = backend.store.list_events(limit=10)
    assert {e.internal_id: e for e in page}[event.internal_id] == event
    # A duplicate of a large event is answered with the stored one, whole.
    (dup,) = backend.store.save_events([make_event(clock, event_id="large-1")], clock.now_ms())
    assert dup == event


def test_a_run_whose_events_list_is_large_round_trips(backend, clock):
    events = [make_event(clock, data=blob(300_000, str(i))) for i in range(3)]
    backend.store.save_events(events, clock.now_ms())
    run = make_run(clock, event_ids=[e.internal_id for e in events])
    run.events = [e.wire() for e in events]  # a batch: about 900 KB of events on the run

    assert backend.store.create_run(run)

    assert backend.store.get_run(run.run_id) == run
    assert backend.store.load_run(run.run_id).run == run
    assert backend.store.runs_for_event(events[1].internal_id) == [run]
    page, _ = backend.store.list_runs(run.fn_id, limit=10)
    assert page == [run]


def test_large_run_output_and_error_round_trip(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    output = blob(MIB)
    error = {"name": "Error", "message": "e" * 300_000, "stack": ""}

    assert backend.store.update_run(run.run_id, {"output": output, "status": RunStatus.COMPLETED})
    got = backend.store.get_run(run.run_id)
    assert got.status is RunStatus.COMPLETED
    assert_same_json(got.output, output)

    assert backend.store.update_run(run.run_id, {"output": None, "error": error})
    got = backend.store.load_run(run.run_id).run
    assert got.output is None and got.error == error


def test_a_large_pending_detail_and_waiter_trigger_round_trip(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    op = make_pending("wait", "WaitForEvent", created_at=clock.now_ms(), trigger=blob(200_000))
    assert backend.store.add_pending(run.run_id, op)
    assert backend.store.load_run(run.run_id).pending == {"wait": op}

    now = clock.now_ms()
    trigger = make_event(clock, data=blob(500_000)).wire()
    waiter = Waiter(
        event_name="shop/order.paid", run_id=run.run_id, step_id="wait", kind=WaiterKind.WAIT,
        expires_at=now + 60_000, created_at=now, expression="event.data.n == async.data.n",
        trigger=trigger,
    )
    assert backend.store.add_waiter(waiter)
    assert backend.store.waiters_for_event("shop/order.paid", now).waiters == [waiter]
