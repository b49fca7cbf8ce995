"""SignalStore: one live wait per signal (step.waitForSignal), taken when free or expired,
kept by its own re-report, taken over only with replace, removed only while it is still the
remover's."""

from __future__ import annotations

from stepline.engine.records import SignalWait

from .helpers import race

N = 8
H = 3600 * 1000


def _wait(run: str, now: int, *, signal: str = "approval/42", step: str = "s1", ttl: int = H) -> SignalWait:
    return SignalWait(signal, run, step, now + ttl, now)


def test_a_free_signal_is_taken_and_then_held(backend, clock):
    store, now = backend.signals, clock.now_ms()
    first = _wait("run-1", now)

    assert store.put_signal_wait(first, now) == first
    assert store.get_signal_wait("approval/42", now) == first
    # Another run is refused and told who holds it; the holder stays.
    assert store.put_signal_wait(_wait("run-2", now + 1), now + 1) == first
    assert store.get_signal_wait("approval/42", now + 1) == first
    assert store.get_signal_wait("approval/43", now) is None


def test_a_re_report_keeps_the_first_wait(backend, clock):
    store, now = backend.signals, clock.now_ms()
    first = _wait("run-1", now)
    store.put_signal_wait(first, now)

    again = _wait("run-1", now + 500, ttl=2 * H)
    assert store.put_signal_wait(again, now + 500) == first
    assert store.put_signal_wait(again, now + 500, replace=True) == first
    assert store.get_signal_wait("approval/42", now + 500) == first


def test_an_expired_wait_reads_as_absent_and_is_taken_over(backend, clock):
    store, now = backend.signals, clock.now_ms()
    store.put_signal_wait(_wait("run-1", now, ttl=1000), now)

    assert store.get_signal_wait("approval/42", now + 999) is not None
    assert store.get_signal_wait("approval/42", now + 1000) is None
    later = _wait("run-2", now + 1000)
    assert store.put_signal_wait(later, now + 1000) == later
    assert store.get_signal_wait("approval/42", now + 1000) == later


def test_replace_takes_a_live_wait_over(backend, clock):
    store, now = backend.signals, clock.now_ms()
    store.put_signal_wait(_wait("run-1", now), now)

    second = _wait("run-2", now + 1, step="s9")
    assert store.put_signal_wait(second, now + 1, replace=True) == second
    assert store.get_signal_wait("approval/42", now + 1) == second


def test_remove_only_while_it_is_the_removers(backend, clock):
    store, now = backend.signals, clock.now_ms()
    store.put_signal_wait(_wait("run-1", now), now)
    store.put_signal_wait(_wait("run-2", now), now, replace=True)

    # The replaced run's clean-up leaves its replacement alone.
    assert store.remove_signal_wait("approval/42", "run-1", "s1") is False
    assert store.remove_signal_wait("approval/42", "run-2", "s2") is False
    assert store.get_signal_wait("approval/42", now) is not None
    assert store.remove_signal_wait("approval/42", "run-2", "s1") is True
    assert store.remove_signal_wait("approval/42", "run-2", "s1") is False
    assert store.get_signal_wait("approval/42", now) is None


def test_signals_are_independent_and_names_round_trip(backend, clock):
    store, now = backend.signals, clock.now_ms()
    names = ["a", "b", "task/71651db4-9f27-466a-a6be-4759b9784b3c", "ünïcødé signal #1", "x" * 512]
    for i, name in enumerate(names):
        wait = _wait(f"run-{i}", now, signal=name)
        assert store.put_signal_wait(wait, now) == wait
    for i, name in enumerate(names):
        assert store.get_signal_wait(name, now).run_id == f"run-{i}"


def test_racing_waits_without_replace_have_one_winner(backend, clock):
    now = clock.now_ms()

    held = race(N, lambda i: backend.signals.put_signal_wait(_wait(f"run-{i}", now), now))

    winners = {w.run_id for w in held}
    assert len(winners) == 1
    assert backend.signals.get_signal_wait("approval/42", now).run_id == winners.pop()


def test_racing_removals_have_one_winner(backend, clock):
    now = clock.now_ms()
    backend.signals.put_signal_wait(_wait("run-1", now), now)

    removed = race(N, lambda i: backend.signals.remove_signal_wait("approval/42", "run-1", "s1"))

    assert removed.count(True) == 1
