"""EventStore: durable save, 24-hour dedupe by ``event.id``, newest-first listing."""

from __future__ import annotations

from .helpers import HOUR_MS, make_event


def collect_pages(store, limit: int, **filters):
    """Follow cursors to the end. A trailing empty page is tolerated (a backend may only learn
    that it reached the end by asking); an empty page with a further cursor is not."""
    events, cursor, pages = [], None, 0
    while True:
        page, cursor = store.list_events(limit=limit, cursor=cursor, **filters)
        pages += 1
        assert len(page) <= limit
        if cursor is not None:
            assert page, "an empty page must end the listing"
        events.extend(page)
        if cursor is None:
            return events, pages
        assert pages < 100


def test_new_events_are_returned_as_given_and_stored(backend, clock):
    events = [make_event(clock), make_event(clock, event_id="user-chosen-1")]
    saved = backend.store.save_events(events, clock.now_ms())
    assert saved == events
    for event in events:
        assert backend.store.get_event(event.internal_id) == event


def test_get_event_unknown_is_none(backend):
    assert backend.store.get_event("01JUNKNOWN00000000000000000") is None


def test_duplicate_id_within_24h_returns_the_earlier_event(backend, clock):
    first = make_event(clock, event_id="order-42", data={"attempt": 1})
    backend.store.save_events([first], clock.now_ms())
    clock.advance(23 * HOUR_MS)
    again = make_event(clock, event_id="order-42", data={"attempt": 2})

    (stored,) = backend.store.save_events([again], clock.now_ms())

    assert stored.internal_id == first.internal_id != again.internal_id
    assert stored == first
    assert backend.store.get_event(again.internal_id) is None


def test_same_id_after_24h_is_a_new_event(backend, clock):
    first = make_event(clock, event_id="order-43")
    backend.store.save_events([first], clock.now_ms())
    clock.advance(24 * HOUR_MS + 1000)
    later = make_event(clock, event_id="order-43", data={"later": True})

    (stored,) = backend.store.save_events([later], clock.now_ms())

    assert stored == later
    assert backend.store.get_event(first.internal_id) == first
    assert backend.store.get_event(later.internal_id) == later
    # The new event now owns the id for the next 24 hours.
    clock.advance(HOUR_MS)
    (third,) = backend.store.save_events([make_event(clock, event_id="order-43")], clock.now_ms())
    assert third.internal_id == later.internal_id


def test_duplicates_inside_one_batch_return_the_first(backend, clock):
    a = make_event(clock, event_id="dup")
    b = make_event(clock, event_id="dup")
    c = make_event(clock, event_id="other")

    saved = backend.store.save_events([a, b, c], clock.now_ms())

    assert [e.internal_id for e in saved] == [a.internal_id, a.internal_id, c.internal_id]
    assert backend.store.get_event(b.internal_id) is None


def test_events_without_a_user_id_never_collide(backend, clock):
    events = [make_event(clock) for _ in range(3)]
    saved = backend.store.save_events(events, clock.now_ms())
    assert [e.internal_id for e in saved] == [e.internal_id for e in events]


def test_list_events_newest_first_across_pages(backend, clock):
    start = clock.now_ms()
    events = [make_event(clock, received_at=start + i * 1000) for i in range(7)]
    backend.store.save_events(events, clock.now_ms())

    listed, _ = collect_pages(backend.store, limit=3)

    assert [e.internal_id for e in listed] == [e.internal_id for e in reversed(events)]
    assert listed[0] == events[-1]


def test_list_events_pages_through_equal_receive_times(backend, clock):
    same = clock.now_ms()
    events = [make_event(clock, received_at=same) for _ in range(5)]
    backend.store.save_events(events, clock.now_ms())

    listed, _ = collect_pages(backend.store, limit=2)

    ids = [e.internal_id for e in listed]
    assert sorted(ids) == sorted(e.internal_id for e in events)
    assert len(set(ids)) == len(ids)


def test_list_events_filters_by_name_and_time(backend, clock):
    t = clock.now_ms()
    created = [make_event(clock, name="shop/order.created", received_at=t + i * 10_000) for i in range(4)]
    paid = [make_event(clock, name="shop/order.paid", received_at=t + 5_000 + i * 10_000) for i in range(4)]
    backend.store.save_events(created + paid, clock.now_ms())

    by_name, _ = collect_pages(backend.store, limit=2, name="shop/order.paid")
    assert [e.internal_id for e in by_name] == [e.internal_id for e in reversed(paid)]

    window, _ = collect_pages(
        backend.store, limit=10, received_after=t + 12_000, received_before=t + 33_000
    )
    # created at +20s, +30s; paid at +15s, +25s (boundaries are avoided on purpose)
    assert [e.received_at - t for e in window] == [30_000, 25_000, 20_000, 15_000]

    both, _ = collect_pages(
        backend.store, limit=1, name="shop/order.created", received_after=t + 5_000
    )
    assert [e.received_at - t for e in both] == [30_000, 20_000, 10_000]


def test_list_events_time_bounds_are_exclusive(backend, clock):
    t = clock.now_ms()
    events = [make_event(clock, received_at=t + i) for i in range(5)]
    backend.store.save_events(events, clock.now_ms())

    window, _ = collect_pages(backend.store, limit=10, received_after=t + 1, received_before=t + 4)

    assert [e.received_at - t for e in window] == [3, 2]


def test_list_events_empty_store(backend):
    page, cursor = backend.store.list_events(limit=5)
    assert page == [] and cursor is None
