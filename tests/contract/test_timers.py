"""Timers: schedule, replace, cancel, and fire_due putting the body on the work queue."""

from __future__ import annotations

import pytest

from .helpers import take

S = 1000
YEAR_MS = 365 * 24 * 60 * 60 * S


def test_timer_fires_once_when_due(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule("run-r1.sleep-1", t + 10 * S, {"kind": "wake", "run_id": "r1"})

    assert backend.timers.fire_due(t) == 0
    assert backend.timers.fire_due(t + 9 * S) == 0
    assert take(backend.queue) == []

    clock.advance(10 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
    assert take(backend.queue) == [{"kind": "wake", "run_id": "r1"}]
    assert backend.timers.fire_due(clock.now_ms() + YEAR_MS) == 0


def test_overdue_timers_fire_together_and_later_ones_wait(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule("a", t + 1 * S, {"n": 1})
    backend.timers.schedule("b", t + 2 * S, {"n": 2})
    backend.timers.schedule("c", t + 100 * S, {"n": 3})

    clock.advance(5 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 2
    assert sorted(b["n"] for b in take(backend.queue)) == [1, 2]

    clock.advance(100 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
    assert take(backend.queue) == [{"n": 3}]


def test_scheduling_a_name_again_replaces_it(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule("wait-timeout", t + 10 * S, {"version": 1})
    backend.timers.schedule("wait-timeout", t + 20 * S, {"version": 2})

    clock.advance(15 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 0
    clock.advance(5 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
    assert take(backend.queue) == [{"version": 2}]


def test_replacing_with_an_earlier_time(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule("debounce-k", t + 60 * S, {"version": 1})
    backend.timers.schedule("debounce-k", t + 5 * S, {"version": 2})

    clock.advance(5 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
    assert take(backend.queue) == [{"version": 2}]
    clock.advance(60 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 0


def test_cancel(backend, clock):
    t = clock.now_ms()
    backend.timers.schedule("cancel-me", t + 10 * S, {"n": 1})
    backend.timers.schedule("keep-me", t + 10 * S, {"n": 2})

    backend.timers.cancel("cancel-me")
    backend.timers.cancel("never-scheduled")

    clock.advance(10 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
    assert take(backend.queue) == [{"n": 2}]
    backend.timers.cancel("keep-me")  # already fired: still no error


def test_a_year_long_timer(backend, clock):
    backend.timers.schedule("sleep-a-year", clock.now_ms() + YEAR_MS, {"n": 1})
    clock.advance(YEAR_MS - S)
    assert backend.timers.fire_due(clock.now_ms()) == 0
    clock.advance(S)
    assert backend.timers.fire_due(clock.now_ms()) == 1


def test_name_limits(backend, clock):
    fire_at = clock.now_ms() + 10 * S
    backend.timers.schedule("A-z_0.9" + "x" * 57, fire_at, {"n": 1})  # 64 characters
    for bad in ["x" * 65, "", "has space", "slash/inside", "colon:inside", "ünïcode", "newline\n"]:
        with pytest.raises(ValueError):
            backend.timers.schedule(bad, fire_at, {"n": 2})
    clock.advance(10 * S)
    assert backend.timers.fire_due(clock.now_ms()) == 1
