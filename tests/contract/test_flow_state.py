"""FlowStateStore: versioned flow state, the compare-and-set record behind throttle and rate limit
(GCRA arrival times) and debounce and batch buffers."""

from __future__ import annotations

from .helpers import race

N = 8
S = 1000


def test_absent_state_reads_none(backend, clock):
    assert backend.store.get_flow_state("t:fn:k", clock.now_ms()) is None


def test_create_then_compare_and_set(backend, clock):
    store, now = backend.store, clock.now_ms()

    assert store.put_flow_state("k", {"tat": 1}, expect_version=None, expires_at=now + S, now_ms=now)
    first = store.get_flow_state("k", now)
    assert first.data == {"tat": 1} and first.expires_at == now + S

    # A second create loses: the state is live.
    assert not store.put_flow_state("k", {"tat": 9}, expect_version=None, expires_at=now + S, now_ms=now)
    # A stale version loses; the current one wins and raises the version.
    assert not store.put_flow_state("k", {"tat": 9}, expect_version=first.version + 1, expires_at=now + S, now_ms=now)
    assert store.put_flow_state("k", {"tat": 2}, expect_version=first.version, expires_at=now + 2 * S, now_ms=now)
    second = store.get_flow_state("k", now)
    assert second.data == {"tat": 2} and second.version > first.version
    assert not store.put_flow_state("k", {"tat": 3}, expect_version=first.version, expires_at=now + S, now_ms=now)


def test_json_round_trips_exactly(backend, clock):
    now = clock.now_ms()
    data = {"events": [{"id": "e1", "data": {"n": 1, "f": 1.5, "nested": [None, True, "x"]}}], "first_at": now}
    backend.store.put_flow_state("b", data, expect_version=None, expires_at=now + S, now_ms=now)
    assert backend.store.get_flow_state("b", now).data == data


def test_expired_state_reads_absent_and_can_be_created_over(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.put_flow_state("k", {"tat": 1}, expect_version=None, expires_at=now + S, now_ms=now)
    old = store.get_flow_state("k", now)

    later = now + S  # expired at the instant it ends: expires_at <= now
    assert store.get_flow_state("k", later) is None
    assert store.put_flow_state("k", {"tat": 5}, expect_version=None, expires_at=later + S, now_ms=later)
    fresh = store.get_flow_state("k", later)
    assert fresh.data == {"tat": 5}
    # The version went on rising through the expiry: the stale reader cannot match.
    assert fresh.version > old.version
    assert not store.put_flow_state("k", {"tat": 6}, expect_version=old.version, expires_at=later + S, now_ms=later)


def test_delete_is_conditional_on_the_version(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.put_flow_state("k", {"n": 1}, expect_version=None, expires_at=now + S, now_ms=now)
    state = store.get_flow_state("k", now)

    assert store.delete_flow_state("k", state.version + 1) is False
    assert store.delete_flow_state("k", state.version) is True
    assert store.delete_flow_state("k", state.version) is False
    assert store.get_flow_state("k", now) is None


def test_keys_are_independent(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.put_flow_state("a", {"n": "a"}, expect_version=None, expires_at=now + S, now_ms=now)
    store.put_flow_state("b", {"n": "b"}, expect_version=None, expires_at=now + S, now_ms=now)
    assert store.get_flow_state("a", now).data == {"n": "a"}
    assert store.get_flow_state("b", now).data == {"n": "b"}


def test_create_race_has_one_winner(backend, clock):
    now = clock.now_ms()

    won = race(N, lambda i: backend.store.put_flow_state(
        "k", {"w": i}, expect_version=None, expires_at=now + S, now_ms=now))

    assert won.count(True) == 1
    assert backend.store.get_flow_state("k", now).data == {"w": won.index(True)}


def test_compare_and_set_race_has_one_winner(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.put_flow_state("k", {"w": None}, expect_version=None, expires_at=now + S, now_ms=now)
    version = store.get_flow_state("k", now).version

    won = race(N, lambda i: store.put_flow_state(
        "k", {"w": i}, expect_version=version, expires_at=now + S, now_ms=now))

    assert won.count(True) == 1
    assert store.get_flow_state("k", now).data == {"w": won.index(True)}


def test_counting_with_retries_loses_no_increment(backend, clock):
    """The engine's read-compute-write loop on top of compare-and-set: eight threads adding
    five each end at forty, the property GCRA reservations and batch appends rely on."""
    store, now = backend.store, clock.now_ms()

    def add_five(_: int) -> int:
        retries = 0
        for _ in range(5):
            while True:
                state = store.get_flow_state("counter", now)
                value = state.data["n"] if state else 0
                if store.put_flow_state("counter", {"n": value + 1},
                                        expect_version=state.version if state else None,
                                        expires_at=now + 60 * S, now_ms=now):
                    break
                retries += 1
        return retries

    race(N, add_five)

    assert store.get_flow_state("counter", now).data == {"n": 5 * N}


def test_delete_race_has_one_winner(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.put_flow_state("k", {"n": 1}, expect_version=None, expires_at=now + S, now_ms=now)
    version = store.get_flow_state("k", now).version

    won = race(N, lambda i: store.delete_flow_state("k", version))

    assert won.count(True) == 1
