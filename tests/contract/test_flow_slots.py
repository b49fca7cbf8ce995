"""SlotStore: concurrency slots and their waiting line.

A slot is a lease: free, expired (``until < now``) or already the owner's. The line holds the
work waiting for one, in position order, beside the slots of the same key.
"""

from __future__ import annotations

from stepline.engine.flow_records import LineEntry
from stepline.local import local_backend

from .helpers import race

N = 8
S = 1000


def entry(position: str, n: int = 0) -> LineEntry:
    return LineEntry(position=position, body={"kind": "call", "run_id": f"r{n}", "n": n}, created_at=n)


def test_an_empty_key_has_no_holders_and_no_line(backend):
    view = backend.store.slot_view("c:fn:k", 10)
    assert view.holders == [] and view.line == []


def test_a_free_slot_is_taken_and_then_held(backend, clock):
    store, now = backend.store, clock.now_ms()

    assert store.take_slot("k", 0, "w1", now + 30 * S, now, token="pos-1") is True
    assert store.take_slot("k", 0, "w2", now + 30 * S, now + 1) is False
    # Still held at the instant it ends: expired only once until < now.
    assert store.take_slot("k", 0, "w2", now + 60 * S, now + 30 * S) is False
    assert store.take_slot("k", 1, "w2", now + 30 * S, now) is True

    view = store.slot_view("k", 10)
    assert sorted((h.index, h.owner, h.until, h.token) for h in view.holders) == [
        (0, "w1", now + 30 * S, "pos-1"),
        (1, "w2", now + 30 * S, ""),
    ]


def test_a_crashed_holders_slot_is_recovered_when_it_expires(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.take_slot("k", 0, "crashed", now + 30 * S, now)

    later = now + 30 * S + 1
    assert store.take_slot("k", 0, "w2", later + 30 * S, later) is True
    assert store.take_slot("k", 0, "crashed", later + 60 * S, later + 1) is False
    # The crashed owner's release is a no-op now.
    assert store.release_slot("k", 0, "crashed") is False
    assert [h.owner for h in store.slot_view("k", 0).holders] == ["w2"]


def test_the_owner_renews_its_slot(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.take_slot("k", 0, "w1", now + 30 * S, now)

    assert store.take_slot("k", 0, "w1", now + 90 * S, now + 20 * S) is True
    assert store.take_slot("k", 0, "w2", now + 120 * S, now + 60 * S) is False


def test_release_only_by_the_owner(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.take_slot("k", 0, "w1", now + 30 * S, now)

    assert store.release_slot("k", 0, "w2") is False
    assert store.release_slot("k", 0, "w1") is True
    assert store.release_slot("k", 0, "w1") is False
    assert store.slot_view("k", 10).holders == []
    assert store.take_slot("k", 0, "w2", now + 30 * S, now) is True


def test_the_line_comes_back_in_position_order_and_limited(backend):
    store = backend.store
    for position in ["0003", "0001", "0004", "0002"]:
        assert store.join_line("k", entry(position, int(position)))

    assert [e.position for e in store.slot_view("k", 10).line] == ["0001", "0002", "0003", "0004"]
    head = store.slot_view("k", 2).line
    assert [e.position for e in head] == ["0001", "0002"]
    assert head[0] == entry("0001", 1)


def test_the_line_head_is_found_past_many_slots(backend, clock):
    store, now = backend.store, clock.now_ms()
    for i in range(40):
        store.take_slot("k", i, f"w{i}", now + 30 * S, now)
    for i in range(5):
        store.join_line("k", entry(f"{i:04d}", i))

    view = store.slot_view("k", 3)
    assert len(view.holders) == 40
    assert [e.position for e in view.line] == ["0000", "0001", "0002"]


def test_join_is_create_only_and_leave_has_one_winner(backend):
    store = backend.store
    assert store.join_line("k", entry("0001", 1)) is True
    assert store.join_line("k", entry("0001", 2)) is False
    assert store.line_entry("k", "0001") == entry("0001", 1)

    assert store.leave_line("k", "0001") is True
    assert store.leave_line("k", "0001") is False
    assert store.line_entry("k", "0001") is None


def test_keys_are_independent(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.take_slot("a", 0, "w1", now + 30 * S, now)
    store.join_line("a", entry("0001"))

    assert store.take_slot("b", 0, "w2", now + 30 * S, now) is True
    assert store.slot_view("b", 10).line == []
    assert [h.owner for h in store.slot_view("b", 10).holders] == ["w2"]


def test_take_slot_race_has_one_winner(backend, clock):
    now = clock.now_ms()

    won = race(N, lambda i: backend.store.take_slot("k", 0, f"w{i}", now + 30 * S, now))

    assert won.count(True) == 1
    assert [h.owner for h in backend.store.slot_view("k", 0).holders] == [f"w{won.index(True)}"]


def test_expired_slot_race_has_one_winner(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.take_slot("k", 0, "crashed", now + S, now)
    later = now + 2 * S

    won = race(N, lambda i: store.take_slot("k", 0, f"w{i}", later + 30 * S, later))

    assert won.count(True) == 1


def test_a_limit_is_never_exceeded_under_contention(backend, clock):
    """Eight owners each try every slot of a limit of three, as executors do: exactly three
    hold one."""
    store, now = backend.store, clock.now_ms()
    limit = 3

    def acquire(i: int) -> int | None:
        for index in range(limit):
            if store.take_slot("k", index, f"w{i}", now + 30 * S, now):
                return index
        return None

    got = race(N, acquire)

    held = [g for g in got if g is not None]
    assert sorted(held) == list(range(limit))
    assert len(store.slot_view("k", 0).holders) == limit


def test_leave_line_race_has_one_winner(backend):
    backend.store.join_line("k", entry("0001"))

    won = race(N, lambda i: backend.store.leave_line("k", "0001"))

    assert won.count(True) == 1


def test_release_race_has_one_winner(backend, clock):
    now = clock.now_ms()
    backend.store.take_slot("k", 0, "w1", now + 30 * S, now)

    won = race(N, lambda i: backend.store.release_slot("k", 0, "w1"))

    assert won.count(True) == 1


def test_a_dev_server_restart_frees_every_slot_but_keeps_the_line(tmp_path, clock):
    """`stepline dev` is the only user of its file: slots left by a killed predecessor belong
    to nobody, while the work waiting in line is still to do."""
    now = clock.now_ms()
    with local_backend(str(tmp_path / "dev.db"), clock) as local:
        local.store.take_slot("k", 0, "killed", now + 300 * S, now)
        local.store.join_line("k", entry("0001"))

        local.recover_after_restart()

        view = local.store.slot_view("k", 10)
        assert view.holders == [] and [e.position for e in view.line] == ["0001"]
