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

    found = backend.store.waiters_for_event(PAID, t + 10)

    assert found == [early, late, cancel]
    assert found[2].kind is WaiterKind.CANCEL and found[2].expression is None
    assert isinstance(found[0].trigger["data"]["order_id"], int)


def test_other_event_names_see_nothing(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 100))

    assert backend.store.waiters_for_event("shop/order.refunded", t) == []
    assert backend.store.waiters_for_event("shop/order", t) == []  # a prefix is not a match


def test_duplicate_key_is_refused_and_the_first_kept(backend, clock):
    t = clock.now_ms()
    first = waiter("r1", created_at=t, expires_at=t + 100)
    again = waiter("r1", created_at=t + 5, expires_at=t + 999, expression="true")

    assert backend.store.add_waiter(first) is True
    assert backend.store.add_waiter(again) is False

    assert backend.store.waiters_for_event(PAID, t) == [first]


def test_the_key_is_event_run_and_step(backend, clock):
    t = clock.now_ms()
    same_run_other_step = waiter("r1", "wait-2", created_at=t + 1, expires_at=t + 100)
    same_step_other_run = waiter("r2", created_at=t + 2, expires_at=t + 100)
    other_event = waiter("r1", created_at=t + 3, expires_at=t + 100, event_name="shop/order.lost")
    base = waiter("r1", created_at=t, expires_at=t + 100)

    for w in (base, same_run_other_step, same_step_other_run, other_event):
        assert backend.store.add_waiter(w) is True

    assert backend.store.waiters_for_event(PAID, t) == [base, same_run_other_step, same_step_other_run]
    assert backend.store.waiters_for_event("shop/order.lost", t) == [other_event]


def test_expired_waiters_are_not_listed(backend, clock):
    t = clock.now_ms()
    short = waiter("r1", created_at=t, expires_at=t + 10)
    long = waiter("r2", created_at=t + 1, expires_at=t + 10_000)
    backend.store.add_waiter(short)
    backend.store.add_waiter(long)

    assert backend.store.waiters_for_event(PAID, t + 9) == [short, long]
    # expires_at > now: at the expiry instant the waiter no longer matches.
    assert backend.store.waiters_for_event(PAID, t + 10) == [long]
    assert backend.store.waiters_for_event(PAID, t + 10_000) == []


def test_remove_is_true_once(backend, clock):
    t = clock.now_ms()
    keep = waiter("r2", created_at=t + 1, expires_at=t + 100)
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 100))
    backend.store.add_waiter(keep)

    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is True
    assert backend.store.remove_waiter(PAID, "r1", "wait-payment") is False
    assert backend.store.remove_waiter(PAID, "never", "added") is False
    assert backend.store.remove_waiter("shop/order.lost", "r2", "wait-payment") is False

    assert backend.store.waiters_for_event(PAID, t) == [keep]


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
    assert backend.store.waiters_for_event(PAID, t + 200) == [renewed]


def test_remove_waiter_race_has_one_winner(backend, clock):
    t = clock.now_ms()
    backend.store.add_waiter(waiter("r1", created_at=t, expires_at=t + 60_000))

    won = race(N, lambda _: backend.store.remove_waiter(PAID, "r1", "wait-payment"))

    assert won.count(True) == 1
    assert backend.store.waiters_for_event(PAID, t) == []


def test_add_waiter_race_has_one_winner(backend, clock):
    t = clock.now_ms()
    candidates = [waiter("r1", created_at=t + i, expires_at=t + 60_000) for i in range(N)]

    won = race(N, lambda i: backend.store.add_waiter(candidates[i]))

    assert won.count(True) == 1
    assert backend.store.waiters_for_event(PAID, t) == [candidates[won.index(True)]]
