"""EventStore.recent_events: the events of one name in a time window, newest first, read from an
index by name and time (a wait's look-back)."""

from __future__ import annotations

from .helpers import make_event

MIN = 60_000


def _save(backend, clock, name: str, at: int, **data):
    [stored] = backend.events.save_events([make_event(clock, name=name, received_at=at, data=data)], at)
    return stored


def test_only_this_names_events_in_the_window_newest_first(backend, clock):
    now = clock.now_ms()
    old = _save(backend, clock, "approval/decided", now - 10 * MIN, n=0)
    a = _save(backend, clock, "approval/decided", now - 4 * MIN, n=1)
    _save(backend, clock, "approval/requested", now - 3 * MIN, n=2)  # another name
    b = _save(backend, clock, "approval/decided", now - 2 * MIN, n=3)
    c = _save(backend, clock, "approval/decided", now, n=4)
    _save(backend, clock, "approval/decided", now + 1, n=5)  # after the window

    found = backend.events.recent_events("approval/decided", now - 5 * MIN, now, limit=10)

    assert [e.internal_id for e in found] == [c.internal_id, b.internal_id, a.internal_id]
    assert found[0] == c  # whole events, data included
    assert old.internal_id not in {e.internal_id for e in found}
    assert backend.events.recent_events("approval/decided", now - 5 * MIN, now, limit=2) == [c, b]
    assert backend.events.recent_events("approval/other", now - 5 * MIN, now, limit=10) == []
    assert backend.events.recent_events("approval/decided", now, now - 1, limit=10) == []


def test_many_events_of_one_name_keep_time_order(backend, clock):
    now = clock.now_ms()
    saved = [_save(backend, clock, "tick", now - 1000 + i * 10, i=i) for i in range(30)]

    found = backend.events.recent_events("tick", now - 1000, now, limit=12)

    assert [e.data["i"] for e in found] == list(range(29, 17, -1))
    assert found == list(reversed(saved))[:12]


def test_an_erased_event_is_no_longer_found(backend, clock):
    now = clock.now_ms()
    kept = _save(backend, clock, "signup", now - MIN, k=1)
    gone = _save(backend, clock, "signup", now - MIN + 1, k=2)

    backend.eraser.erase_event(gone.internal_id)

    assert backend.events.recent_events("signup", now - 2 * MIN, now, limit=10) == [kept]
