"""What only the local family promises: the SQLite file itself, the clock-driven queue, and the
hooks the local driver uses (``wait_for_message``, ``next_fire_at``)."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from stepline.engine.ports import Backend, Store, StoreError, Timers, WorkQueue
from stepline.local import MAX_DELAY_SECONDS, local_backend, open_local_backend

from .helpers import drain, make_event, make_memo, make_run, race, take

YEAR_S = 365 * 24 * 60 * 60


@pytest.fixture
def db_path(tmp_path) -> str:
    return str(tmp_path / "local.db")


@pytest.fixture
def local(db_path, clock):
    with local_backend(db_path, clock) as backend:
        yield backend


def test_backend_wiring(local, db_path):
    assert isinstance(local, Backend) and local.name == "sqlite"
    assert isinstance(local.store, Store)
    assert isinstance(local.queue, WorkQueue)
    assert isinstance(local.timers, Timers)
    assert local.path == db_path


def test_file_is_in_wal_mode_with_the_expected_tables(local, db_path):
    conn = sqlite3.connect(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    tables = {"events", "event_ids", "apps", "functions", "function_triggers", "runs",
              "run_events", "memos", "pending", "queue", "timers"}
    assert tables <= names
    assert {"events_by_time", "run_events_by_run", "queue_by_visibility", "timers_by_time"} <= names


def test_data_survives_close_and_reopen(db_path, clock):
    backend = open_local_backend(db_path, clock)
    event = make_event(clock, event_id="persisted")
    backend.store.save_events([event], clock.now_ms())
    backend.queue.send({"n": 1})
    backend.timers.schedule("t1", clock.now_ms() + 5000, {"n": 2})
    backend.close()
    with pytest.raises(StoreError):
        backend.store.get_event(event.internal_id)

    with local_backend(db_path, clock) as reopened:
        assert reopened.store.get_event(event.internal_id) == event
        (dup,) = reopened.store.save_events([make_event(clock, event_id="persisted")], clock.now_ms())
        assert dup.internal_id == event.internal_id
        assert take(reopened.queue) == [{"n": 1}]
        assert reopened.timers.next_fire_at() == clock.now_ms() + 5000


def test_two_backends_on_one_file_share_state_and_races(db_path, clock):
    with local_backend(db_path, clock) as one, local_backend(db_path, clock) as two:
        run = make_run(clock)
        one.store.create_run(run)
        stores = [one.store, two.store]
        won = race(8, lambda i: stores[i % 2].commit_memo(run.run_id, make_memo("s", i, "1")))
        assert won.count(True) == 1
        assert two.store.load_run(run.run_id).memo_map() == {"s": {"data": won.index(True)}}


def test_queue_time_follows_the_injected_clock(local, clock):
    assert local.queue.max_delay_seconds == MAX_DELAY_SECONDS >= 10 * YEAR_S
    local.queue.send({"n": "year"}, delay_seconds=YEAR_S)
    local.queue.send({"n": "now"})
    (msg,) = local.queue.receive(10, 30)
    assert msg.body == {"n": "now"}

    clock.advance(29_999)
    assert local.queue.receive(10, 30) == []  # hidden for the whole 30 s
    clock.advance(1)
    (again,) = local.queue.receive(10, 30)
    assert again.receive_count == 2

    clock.advance(YEAR_S * 1000)
    assert {m.body["n"] for m in drain(local.queue)} == {"year", "now"}


def test_queue_is_fifo_by_visible_time_then_insertion(local, clock):
    local.queue.send({"n": "late"}, delay_seconds=2)
    local.queue.send_many([{"n": "a"}, {"n": "b"}])
    local.queue.send({"n": "c"})
    clock.advance(5000)
    local.queue.send({"n": "d"})

    assert [m.body["n"] for m in local.queue.receive(10, 30)] == ["a", "b", "c", "late", "d"]


def test_stale_handle_cannot_ack_a_redelivered_message(local, clock):
    local.queue.send({"n": 1})
    (first,) = local.queue.receive(1, 1)
    clock.advance(1001)
    (second,) = local.queue.receive(1, 30)
    assert second.handle != first.handle

    local.queue.ack(first.handle)
    local.queue.retry_later(first.handle, 0)
    assert local.queue.receive(1, 30) == []  # still hidden under the second delivery
    local.queue.retry_later(second.handle, 0)
    assert [m.body for m in local.queue.receive(1, 30)] == [{"n": 1}]


@pytest.mark.parametrize("delay", [-1, MAX_DELAY_SECONDS + 1, 1.5])
def test_queue_rejects_bad_delays(local, delay):
    with pytest.raises(ValueError):
        local.queue.send({"n": 1}, delay_seconds=delay)


def test_queue_rejects_non_object_bodies_and_handles(local):
    with pytest.raises(TypeError):
        local.queue.send(["not", "an", "object"])
    with pytest.raises(ValueError):
        local.queue.ack("garbage")


def test_wait_for_message_wakes_on_send(local):
    threading.Timer(0.05, lambda: local.queue.send({"n": 1})).start()
    started = time.monotonic()

    assert local.queue.wait_for_message(5.0) is True
    assert time.monotonic() - started < 1.0


def test_wait_for_message_times_out_on_an_empty_queue(local):
    started = time.monotonic()
    assert local.queue.wait_for_message(0.3) is False
    assert 0.25 <= time.monotonic() - started < 1.5


def test_wait_for_message_notices_messages_that_time_made_visible(local, clock):
    local.queue.send({"n": 1}, delay_seconds=60)
    assert local.queue.wait_for_message(0.05) is False
    threading.Timer(0.05, lambda: clock.advance(60_000)).start()
    assert local.queue.wait_for_message(5.0) is True


def test_next_fire_at_and_fire_due_visibility(local, clock):
    t = clock.now_ms()
    assert local.timers.next_fire_at() is None
    local.timers.schedule("b", t + 20_000, {"n": "b"})
    local.timers.schedule("a", t + 10_000, {"n": "a"})
    assert local.timers.next_fire_at() == t + 10_000
    assert local.timers.get("a") == (t + 10_000, {"n": "a"})

    # A caller ahead of the clock still gets messages it can receive now.
    assert local.timers.fire_due(t + 20_000) == 2
    assert local.timers.next_fire_at() is None
    assert [m.body["n"] for m in local.queue.receive(10, 30)] == ["a", "b"]


def test_fire_due_wakes_waiting_workers(local, clock):
    local.timers.schedule("t", clock.now_ms(), {"n": 1})
    threading.Timer(0.05, lambda: local.timers.fire_due(clock.now_ms())).start()
    started = time.monotonic()
    assert local.queue.wait_for_message(5.0) is True
    assert time.monotonic() - started < 1.0


def test_list_events_rejects_a_foreign_cursor(local):
    with pytest.raises(ValueError):
        local.store.list_events(limit=5, cursor="not-a-cursor")
    with pytest.raises(ValueError):
        local.store.list_events(limit=0)


def test_update_run_rejects_unknown_fields(local, clock):
    run = make_run(clock)
    local.store.create_run(run)
    with pytest.raises(ValueError):
        local.store.update_run(run.run_id, {"run_id": "other"})
    with pytest.raises(ValueError):
        local.store.update_run(run.run_id, {"colour": "blue"})


def test_update_run_keeps_the_event_index_in_step(local, clock):
    run = make_run(clock, event_ids=["e1"])
    local.store.create_run(run)
    local.store.update_run(run.run_id, {"event_ids": ["e1", "e2"]})
    assert [r.run_id for r in local.store.runs_for_event("e2")] == [run.run_id]


def test_many_workers_drain_a_busy_queue_exactly_once(local):
    total = 400
    received: list[int] = []
    lock = threading.Lock()

    def producer(i: int) -> None:
        local.queue.send_many([{"n": i * 100 + k} for k in range(100)])

    def consumer(_: int) -> None:
        idle = 0
        while idle < 20:
            got = local.queue.receive(5, 60)
            if not got:
                idle += 1
                local.queue.wait_for_message(0.01)
                continue
            idle = 0
            for msg in got:
                local.queue.ack(msg.handle)
            with lock:
                received.extend(m.body["n"] for m in got)

    race(12, lambda i: producer(i) if i < 4 else consumer(i))
    received.extend(m.body["n"] for m in drain(local.queue))
    assert sorted(received) == list(range(total))


def test_a_batch_larger_than_one_read_keeps_each_answer_in_order(local, clock):
    # save_events reads what is stored for the whole batch, in statements of 500 ids at most.
    earlier = [make_event(clock, event_id=f"bulk-{i}") for i in range(0, 1200, 50)]
    local.store.save_events(earlier, clock.now_ms())
    clock.advance(1000)
    batch = [make_event(clock, event_id=f"bulk-{i}") for i in range(1200)]
    batch.append(make_event(clock, event_id="bulk-7"))  # a duplicate inside the batch, past a chunk

    saved = local.store.save_events(batch, clock.now_ms())

    holder = {e.id: e for e in earlier}  # who each id belongs to: the earlier event, else the first in the batch
    for event in batch:
        holder.setdefault(event.id, event)
    assert [e.internal_id for e in saved] == [holder[e.id].internal_id for e in batch]
    assert sum(local.store.get_event(e.internal_id) is not None for e in batch) == 1200 - len(earlier)
