"""WaiterStore: runs waiting for an event by name (wait_for_event and cancel_on rules).

A waiter is keyed by (event_name, run_id, step_id), listed unexpired and oldest first, and
removed exactly once: the event that removes it is the one that resumes (or cancels) the run.
"""

from __future__ import annotations

from stepline.engine.records import Waiter, WaiterKind

from .helpers import race

N = 8
PAID = "shop/order.paid"


def waiter(
    run_id: str,
    step_id: str = "wait-payment",
    *,
    created_at: int,
    expires_at: int,
    event_name: str = PAID,
    kind: WaiterKind = WaiterKind.WAIT,
    expression: str | None = "event.data.order_id == async.data.order_id",
) -> Waiter:
    return Waiter(
        event_name=event_name,
        run_id=run_id,
        step_id=step_id,
        kind=kind,
        expires_at=expires_at,
        created_at=created_at,
        expression=expression,
        trigger={
            "name": "shop/order.created",
            "data": {"order_id": 2**53 - 1, "lines": [{"sku": "A-1", "qty": 2}], "note": None},
        },
    )


def test_waiters_come_back_as_stored_oldest_first(backend, clock):
    t = clock.now_ms()
    # Run ids sort the other way round, so only creation time can give this order.
    late = waiter("r2", created_at=t + 2, expires_at=t + 100)
    early = waiter("r3", created_at=t + 1, expires_at=t + 100)
    cancel = waiter("r1", "cancel-0", created_at=t + 3, expires_at=t + 100,
                    kind=WaiterKind.CANCEL, expression=None)
    for w in (late, cancel, early):
        assert backend.store.add_waiter(w) is True

    found = backend.store.waiters_for_event(PAID, t + 10).waiters

    assert found == [early, late, cancel]
    assert found[2].kind is WaiterKind.CANCEL and found[2].expression is None
    assert isinstance(found[0].trigger["data"]["order_id"], int)


def test_other_event_names_see_nothing(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 100))

    assert backend.store.waiters_for_event("shop/order.refunded", t).waiters == []
    assert backend.store.waiters_for_event("shop/order", t).waiters == []  # a prefix is not a match


def test_duplicate_key_is_refused_and_the_first_kept(backend, clock):
    t = clock.now_ms()
    first = waiter("r1", created_at=t, expires_at=t + 100)
    again = waiter("r1", created_at=t + 5, expires_at=t + 999, expression="true")

    assert backend.store.add_waiter(first) is True
    assert backend.store.add_waiter(again) is False

    assert backend.store.waiters_for_event(PAID, t).waiters == [first]


def test_the_key_is_event_run_and_step(backend, clock):
    t = clock.now_ms()
    same_run_other_step = waiter("r1", "wait-2", created_at=t + 1, expires_at=t + 100)
    same_step_other_run = waiter("r2", created_at=t + 2, expires_at=t + 100)
    other_event = waiter("r1", created_at=t + 3, expires_at=t + 100, event_name="shop/order.lost")
    base = waiter("r1", created_at=t, expires_at=t + 100)

    for w in (base, same_run_other_step, same_step_other_run, other_event):
        assert backend.store.add_waiter(w) is True

    assert backend.store.waiters_for_event(PAID, t).waiters == [base, same_run_other_step, same_step_other_run]
    assert backend.store.waiters_for_event("shop/order.lost", t).waiters == [other_event]


def test_expired_waiters_are_not_listed(backend, clock):
    t = clock.now_ms()
    short = waiter("r1", created_at=t, expires_at=t + 10)
    long = waiter("r2", created_at=t + 1, expires_at=t + 10_000)
    backend.store.add_waiter(short)
    backend.store.add_waiter(long)

    assert backend.store.waiters_for_event(PAID, t + 9).waiters == [short, long]
    # expires_at > now: at the expiry instant the waiter no longer matches.
    assert backend.store.waiters_for_event(PAID, t + 10).waiters == [long]
    assert backend.store.waiters_for_event(PAID, t + 10_000).waiters == []


def test_remove_is_true_once(backend, clock):
    t = clock.now_ms()
    keep = waiter("r2", created_at=t + 1, expires_at=t + 100)
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 100))
    backend.store.add_waiter(keep)

    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is True
    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is False
    assert backend.store.remove_waiter(PAID, "never", "added") is False
    assert backend.store.remove_waiter("shop/order.lost", "r2", "wait-payment") is False

    assert backend.store.waiters_for_event(PAID, t).waiters == [keep]


def test_an_expired_waiter_can_still_be_removed(backend, clock):
    # The timeout handler wins the waiter this way, after it stopped matching events.
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 10))
    clock.advance(60_000)

    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is True
    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is False


def test_a_removed_waiter_can_be_added_again(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 100))
    backend.store.remove_waiter(PAID, "r1", "wait-payment")
    renewed = waiter("r1", created_at=t + 50, expires_at=t + 500)

    assert backend.store.add_waiter(renewed) is True
    assert backend.store.waiters_for_event(PAID, t + 200).waiters == [renewed]


def test_remove_waiter_race_has_one_winner(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 60_000))

    won = race(N, lambda _: backend.store.remove_waiter(PAID, "r1", "wait-payment"))

    assert won.count(True) == 1
    assert backend.store.waiters_for_event(PAID, t).waiters == []


def test_add_waiter_race_has_one_winner(backend, clock):
    t = clock.now_ms()
    candidates = [waiter("r1", created_at=t + i, expires_at=t + 60_000) for i in range(N)]

    won = race(N, lambda i: backend.store.add_waiter(candidates[i]))

    assert won.count(True) == 1
    assert backend.store.waiters_for_event(PAID, t).waiters == [candidates[won.index(True)]]


# -- buckets: waiters keyed by the equality their expression states -------------------------------


def keyed(run_id: str, key: str, *, created_at: int, field: str = '["data","order_id"]', step_id: str = "w") -> Waiter:
    return Waiter(PAID, run_id, step_id, WaiterKind.WAIT, created_at + 60_000, created_at,
                  "event.data.order_id == async.data.order_id", {"data": {"order_id": key}},
                  match_field=field, match_key=f"key-{key}")


def test_a_keyed_waiter_is_read_only_through_its_key(backend, clock):
    t = clock.now_ms()
    a, b = keyed("r1", "a", created_at=t), keyed("r2", "b", created_at=t)
    plain = waiter("r3", created_at=t, expires_at=t + 60_000, expression=None)
    for w in (a, b, plain):
        assert backend.store.add_waiter(w) is True

    assert backend.store.waiters_for_event(PAID, t, "key-a").waiters == [a]
    assert backend.store.waiters_for_event(PAID, t, "key-b").waiters == [b]
    assert backend.store.waiters_for_event(PAID, t).waiters == [plain]  # the unkeyed bucket
    assert backend.store.waiters_for_event(PAID, t, "key-c").waiters == []
    assert backend.store.waiters_for_event("shop/order.lost", t, "key-a").waiters == []
    assert backend.store.waiter_fields(PAID) == ['["data","order_id"]']
    assert backend.store.waiter_fields("shop/order.lost") == []


def test_a_keyed_waiter_is_removed_from_its_bucket_only(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(keyed("r1", "a", created_at=t))

    assert backend.store.remove_waiter(PAID, "r1", "w") is False  # not in the unkeyed bucket
    assert backend.store.remove_waiter(PAID, "r1", "w", "key-b") is False
    assert backend.store.remove_waiter(PAID, "r1", "w", "key-a") is True
    assert backend.store.remove_waiter(PAID, "r1", "w", "key-a") is False
    assert backend.store.waiters_for_event(PAID, t, "key-a").waiters == []
    # The field stays listed: it is what events compute keys from, and costs one empty read.
    assert backend.store.waiter_fields(PAID) == ['["data","order_id"]']


def test_every_field_in_use_is_listed_once(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(keyed("r1", "a", created_at=t))
    backend.store.add_waiter(keyed("r2", "a", created_at=t, field='["data","customer"]'))
    backend.store.add_waiter(keyed("r3", "b", created_at=t))
    assert sorted(backend.store.waiter_fields(PAID)) == ['["data","customer"]', '["data","order_id"]']


def test_pages_of_a_bucket_hold_each_waiter_once(backend, clock):
    t = clock.now_ms()
    stored = [keyed(f"r{i:02d}", "a", created_at=t + i % 3) for i in range(23)]
    for w in stored:
        backend.store.add_waiter(w)
    expired = Waiter(PAID, "r-old", "w", WaiterKind.WAIT, t, t, None, {}, match_field='["data","order_id"]',
                     match_key="key-a")
    backend.store.add_waiter(expired)

    seen: list[Waiter] = []
    after, pages = None, 0
    while True:
        page = backend.store.waiters_for_event(PAID, t + 1, "key-a", limit=5, after=after)
        assert len(page.waiters) <= 5
        assert page.waiters == sorted(page.waiters, key=lambda w: (w.created_at, w.run_id, w.step_id))
        seen += page.waiters
        pages += 1
        after = page.after
        if after is None:
            break
    assert sorted(w.run_id for w in seen) == sorted(w.run_id for w in stored)
    assert 5 <= pages <= 7
