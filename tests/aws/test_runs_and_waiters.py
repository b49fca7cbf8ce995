"""Run listing, pending-op claims and waiters on the table (ports added after the first cut)."""

from __future__ import annotations

from stepline.engine.records import RunStatus, Waiter, WaiterKind
from tests.contract.helpers import make_pending, make_run, race


def list_all(store, fn_id, limit, **filters):
    runs, cursor, pages = [], None, 0
    while True:
        page, cursor = store.list_runs(fn_id, limit=limit, cursor=cursor, **filters)
        runs += page
        pages += 1
        if cursor is None:
            return runs
        assert pages < 50


def test_list_runs_newest_first_per_function(aws, clock):
    t = clock.now_ms()
    mine = [make_run(clock, created_at=t + i * 1000) for i in range(5)]
    other = make_run(clock, fn_id="shop-other", created_at=t + 500)
    for run in [*mine, other]:
        aws.store.create_run(run)

    assert list_all(aws.store, "shop-fulfil", 2) == list(reversed(mine))
    window = list_all(aws.store, "shop-fulfil", 10, created_after=t + 1000, created_before=t + 4000)
    assert [r.created_at - t for r in window] == [3000, 2000]


def test_list_runs_by_status_reads_the_run_not_the_index(aws, clock):
    runs = [make_run(clock, created_at=clock.now_ms() + i) for i in range(4)]
    for run in runs:
        aws.store.create_run(run)
    aws.store.update_run(runs[1].run_id, {"status": RunStatus.COMPLETED})

    done = list_all(aws.store, "shop-fulfil", 1, status=RunStatus.COMPLETED)
    assert [r.run_id for r in done] == [runs[1].run_id]
    assert done[0].status is RunStatus.COMPLETED


def test_list_runs_follows_a_moved_run(aws, clock):
    run = make_run(clock)
    aws.store.create_run(run)
    aws.store.update_run(run.run_id, {"fn_id": "shop-renamed", "created_at": run.created_at + 5})

    assert aws.store.list_runs("shop-fulfil", limit=5) == ([], None)
    (moved,), _ = aws.store.list_runs("shop-renamed", limit=5)
    assert (moved.fn_id, moved.created_at) == ("shop-renamed", run.created_at + 5)


def test_claim_pending(aws, clock):
    run = make_run(clock)
    aws.store.create_run(run)
    now = clock.now_ms()
    assert not aws.store.claim_pending(run.run_id, "p", "w1", now + 1000, now)  # no such op

    aws.store.add_pending(run.run_id, make_pending("p", "StepPlanned"))
    won = race(6, lambda i: aws.store.claim_pending(run.run_id, "p", f"w{i}", now + 1000, now))
    assert won.count(True) == 1
    owner = f"w{won.index(True)}"
    assert aws.store.claim_pending(run.run_id, "p", owner, now + 2000, now + 10)  # extend
    assert not aws.store.claim_pending(run.run_id, "p", "late", now + 5000, now + 2000)
    assert aws.store.claim_pending(run.run_id, "p", "late", now + 5000, now + 2001)  # expired

    aws.store.remove_pending(run.run_id, "p")
    assert not aws.store.claim_pending(run.run_id, "p", "late", now + 5000, now + 2001)
    # A re-added op starts unclaimed.
    aws.store.add_pending(run.run_id, make_pending("p", "StepPlanned"))
    assert aws.store.claim_pending(run.run_id, "p", "fresh", now + 5000, now + 2001)


def waiter(run_id: str, step_id: str, created_at: int, expires_at: int) -> Waiter:
    return Waiter(
        event_name="shop/order.paid",
        run_id=run_id,
        step_id=step_id,
        kind=WaiterKind.WAIT,
        expires_at=expires_at,
        created_at=created_at,
        expression="event.data.id == async.data.id",
        trigger={"name": "shop/order.created", "data": {"id": 2**53 - 1}},
    )


def test_waiters(aws, clock, calls):
    t = clock.now_ms()
    late = waiter("r2", "w", t + 2, t + 100)
    early = waiter("r1", "w", t + 1, t + 100)
    expired = waiter("r3", "w", t, t + 10)
    for w in (late, early, expired):
        assert aws.store.add_waiter(w)
    assert not aws.store.add_waiter(waiter("r1", "w", t + 50, t + 500))

    found, counts = calls.during(aws.store.waiters_for_event, "shop/order.paid", t + 10)
    assert found.waiters == [early, late] and counts == {"Query": 1}
    assert aws.store.waiters_for_event("shop/order.other", t).waiters == []

    won = race(4, lambda _: aws.store.remove_waiter("shop/order.paid", "r1", "w"))
    assert won.count(True) == 1
    assert aws.store.waiters_for_event("shop/order.paid", t + 10).waiters == [late]


def test_waiter_items_expire_long_after_their_timeout(aws, clock):
    w = waiter("r1", "w", clock.now_ms(), clock.now_ms() + 60_000)
    aws.store.add_waiter(w)
    ddb, table = aws.clients["dynamodb"], aws.names.table_name
    item = ddb.get_item(
        TableName=table, Key={"pk": {"S": "WAIT#shop/order.paid"}, "sk": {"S": "r1#w"}}
    )["Item"]
    assert int(item["ttl"]["N"]) * 1000 >= w.expires_at + 7 * 24 * 3600 * 1000 - 1000


def test_runs_for_event_follows_changed_event_ids(aws, clock):
    run = make_run(clock, event_ids=["e1"])
    aws.store.create_run(run)
    aws.store.update_run(run.run_id, {"event_ids": ["e2", "e3"]})

    assert aws.store.runs_for_event("e1") == []
    assert [r.run_id for r in aws.store.runs_for_event("e3")] == [run.run_id]
