"""KeyClaims: one holder per key until it expires (function idempotency keys for
24 hours, singleton keys while a run lives)."""

from __future__ import annotations

from .helpers import race

N = 8
H = 3600 * 1000


def test_a_free_key_is_taken_and_then_held(backend, clock):
    store, now = backend.store, clock.now_ms()

    assert store.claim_key("idem:fn:k", "run-1", now + H, now) == "run-1"
    assert store.claim_key("idem:fn:k", "run-2", now + H, now + 1) == "run-1"
    # Held at the instant before it ends, free once expires_at <= now.
    assert store.claim_key("idem:fn:k", "run-2", now + 2 * H, now + H - 1) == "run-1"
    assert store.claim_key("idem:fn:k", "run-2", now + 2 * H, now + H) == "run-2"


def test_the_holder_takes_its_own_claim_again(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.claim_key("k", "run-1", now + H, now)

    # A retried start of the same run (same derived id) goes on as the holder.
    assert store.claim_key("k", "run-1", now + 2 * H, now + 10) == "run-1"


def test_replacing_takes_over_only_from_the_named_holder(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.claim_key("single:fn:k", "run-1", now + H, now)

    assert store.claim_key("single:fn:k", "run-3", now + H, now, replacing="run-2") == "run-1"
    assert store.claim_key("single:fn:k", "run-3", now + H, now, replacing="run-1") == "run-3"
    assert store.claim_key("single:fn:k", "run-4", now + H, now, replacing="run-1") == "run-3"


def test_release_only_by_the_holder(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.claim_key("k", "run-1", now + H, now)

    assert store.release_key("k", "run-2") is False
    assert store.claim_key("k", "run-2", now + H, now) == "run-1"
    assert store.release_key("k", "run-1") is True
    assert store.release_key("k", "run-1") is False
    assert store.claim_key("k", "run-2", now + H, now) == "run-2"


def test_keys_are_independent(backend, clock):
    store, now = backend.store, clock.now_ms()
    assert store.claim_key("a", "run-1", now + H, now) == "run-1"
    assert store.claim_key("b", "run-2", now + H, now) == "run-2"


def test_claim_race_has_one_winner(backend, clock):
    now = clock.now_ms()

    holders = race(N, lambda i: backend.store.claim_key("k", f"run-{i}", now + H, now))

    winners = {h for i, h in enumerate(holders) if h == f"run-{i}"}
    assert len(winners) == 1
    # Every loser was told who won.
    assert set(holders) == winners


def test_expired_claim_race_has_one_winner(backend, clock):
    store, now = backend.store, clock.now_ms()
    store.claim_key("k", "crashed", now + 1, now)
    later = now + 2

    holders = race(N, lambda i: store.claim_key("k", f"run-{i}", later + H, later))

    assert len(set(holders)) == 1 and holders[0] != "crashed"


def test_replacing_race_has_one_winner(backend, clock):
    """Singleton cancel mode: several new runs replace the same finished holder at once."""
    store, now = backend.store, clock.now_ms()
    store.claim_key("k", "old", now + H, now)

    holders = race(N, lambda i: store.claim_key("k", f"run-{i}", now + H, now, replacing="old"))

    assert len(set(holders)) == 1 and holders[0] != "old"
