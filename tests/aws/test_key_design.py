"""The request budget the cost model depends on (docs/architecture.md, "Costs"), counted call by call."""

from __future__ import annotations

import pytest

from stepline.aws.items import EVENT_SHARDS
from stepline.aws.table import DynamoStore
from stepline.engine.ports import StoreError
from stepline.engine.records import RunStatus
from tests.contract.helpers import make_app, make_event, make_function, make_memo, make_pending, make_run

WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def writes(counts) -> int:
    return sum(n for op, n in counts.items() if op in WRITES)


@pytest.fixture
def busy_run(aws, clock):
    """A run with memos and pending ops, so a load has several item kinds to gather."""
    run = make_run(clock)
    store = aws.store
    store.create_run(run)
    for i in range(3):
        store.commit_memo(run.run_id, make_memo(f"s{i}", {"i": i}, f"{i:04d}"))
    store.add_pending(run.run_id, make_pending("sleep", "Sleep", wake_at=1))
    store.add_pending(run.run_id, make_pending("s0-planned", "StepPlanned"))
    return run


def test_load_run_is_one_query(aws, calls, busy_run):
    state, counts = calls.during(aws.store.load_run, busy_run.run_id)

    assert counts == {"Query": 1}
    assert len(state.memos) == 3 and set(state.pending) == {"sleep", "s0-planned"}


def test_commit_memo_is_one_conditional_write_won_or_lost(aws, calls, busy_run):
    won, counts = calls.during(aws.store.commit_memo, busy_run.run_id, make_memo("s9", 9, "0009"))
    assert won is True and counts == {"UpdateItem": 1}

    lost, counts = calls.during(aws.store.commit_memo, busy_run.run_id, make_memo("s9", 0, "0010"))
    assert lost is False and counts == {"UpdateItem": 1}


def test_a_memo_beside_a_pending_op_keeps_both(aws, busy_run):
    """Memo and pending op of one step share an item; neither write clobbers the other."""
    store = aws.store
    assert store.commit_memo(busy_run.run_id, make_memo("sleep", None, "0100"))
    state = store.load_run(busy_run.run_id)
    assert state.has_memo("sleep") and "sleep" in state.pending

    store.remove_pending(busy_run.run_id, "sleep")
    state = store.load_run(busy_run.run_id)
    assert state.memo_map()["sleep"] == {"data": None} and "sleep" not in state.pending


def test_step_and_lease_writes_are_single_requests(aws, calls, busy_run, clock):
    store, run_id, now = aws.store, busy_run.run_id, clock.now_ms()
    for call in (
        lambda: store.add_pending(run_id, make_pending("w", "WaitForEvent")),
        lambda: store.remove_pending(run_id, "w"),
        lambda: store.acquire_lease(run_id, "w1", now + 1000, now),
        lambda: store.update_run(run_id, {"req_version": 2}, expect_lease_owner="w1"),
        lambda: store.release_lease(run_id, "w1"),
    ):
        _, counts = calls.during(call)
        assert counts == {"UpdateItem": 1}


def test_status_is_not_rewritten_by_unrelated_updates(aws, busy_run):
    """update_run touches only the named attributes: a concurrent status change survives."""
    store = aws.store
    store.update_run(busy_run.run_id, {"status": RunStatus.CANCELLED})
    store.update_run(busy_run.run_id, {"output": {"late": True}})
    assert store.get_run(busy_run.run_id).status is RunStatus.CANCELLED


def test_event_with_a_user_id_costs_a_claim_and_a_batch(aws, calls, clock):
    store = aws.store
    store.save_events([make_event(clock)], clock.now_ms())  # registers today's bucket

    _, counts = calls.during(store.save_events, [make_event(clock, event_id="u-1")], clock.now_ms())
    assert counts == {"PutItem": 1, "BatchWriteItem": 1}

    # No user id: one batch read (a retried request's seeded ids may be stored) and the write.
    _, counts = calls.during(store.save_events, [make_event(clock)], clock.now_ms())
    assert counts == {"BatchGetItem": 1, "BatchWriteItem": 1}

    # A full Event API request's worth of claims goes 100 to a transaction, not one by one; each
    # event's item and its index item by name (stepline.aws.event_names), 25 to a batch.
    batch = [make_event(clock, event_id=f"b-{i}") for i in range(250)]
    _, counts = calls.during(store.save_events, batch, clock.now_ms())
    assert counts == {"TransactWriteItems": 3, "BatchWriteItem": 20}


def test_claims_held_by_earlier_events_are_named_by_the_cancelled_transaction(aws, calls, clock):
    store = aws.store
    first = [make_event(clock, event_id=f"c-{i}") for i in range(3)]
    store.save_events(first, clock.now_ms())
    clock.advance(1_000)
    again = [make_event(clock, event_id=f"c-{i}") for i in range(6)]  # three seen, three new
    saved, counts = calls.during(store.save_events, again, clock.now_ms())
    assert [e.internal_id for e in saved[:3]] == [e.internal_id for e in first]
    assert [e.internal_id for e in saved[3:]] == [e.internal_id for e in again[3:]]
    # The cancelled transaction, the retry of the three new claims, and the stored three read back.
    assert counts == {"TransactWriteItems": 2, "BatchWriteItem": 1, "BatchGetItem": 1}


def test_duplicate_event_costs_a_claim_and_one_read(aws, calls, clock):
    store = aws.store
    first = make_event(clock, event_id="dup")
    store.save_events([first], clock.now_ms())

    (stored,), counts = calls.during(store.save_events, [make_event(clock, event_id="dup")], clock.now_ms())
    assert stored == first
    assert counts == {"PutItem": 1, "BatchGetItem": 1}


def test_no_operation_scans_the_table(aws, calls, clock):
    store = aws.store
    fn = make_function("shop-x", ["shop/a"])
    store.put_app(make_app("shop", [fn.fn_id]), [fn])
    events = [make_event(clock, event_id=f"e{i}", name="shop/a") for i in range(3)]
    store.save_events(events, clock.now_ms())
    run = make_run(clock, event_ids=[events[0].internal_id])
    store.create_run(run)
    store.list_events(limit=2, name="shop/a")
    store.list_events(limit=2, received_after=1, received_before=clock.now_ms() + 1)
    store.runs_for_event(events[0].internal_id)
    store.functions_for_event("shop/a")
    store.list_functions()
    store.list_apps()
    store.load_run(run.run_id)

    assert calls.ops and "Scan" not in calls.ops


def test_list_events_queries_the_day_index(aws, calls, clock):
    aws.store.save_events([make_event(clock) for _ in range(3)], clock.now_ms())
    (page, cursor), counts = calls.during(aws.store.list_events, limit=2)
    assert len(page) == 2 and cursor
    # One Query on the day registry, one per shard of today's bucket (and its unsharded one,
    # from before sharding), one BatchGetItem for the page.
    assert counts == {"Query": 1 + EVENT_SHARDS + 1, "BatchGetItem": 1}


def test_a_days_events_spread_over_shards_and_list_merged_newest_first(aws, clock):
    # One partition per day would cap the whole stack's ingest near 1,000 events/s.
    events = []
    for _ in range(40):
        clock.advance(1)
        events.append(make_event(clock))
    aws.store.save_events(events, clock.now_ms())
    ddb, table = aws.clients["dynamodb"], aws.names.table_name
    partitions = {
        ddb.get_item(TableName=table, Key={"pk": {"S": f"EVENT#{e.internal_id}"}, "sk": {"S": "EVENT"}})["Item"][
            "gsi1pk"
        ]["S"]
        for e in events
    }
    assert len(partitions) > EVENT_SHARDS // 2 and all(p.count("#") == 2 for p in partitions)
    listed, cursor = [], None
    while True:
        page, cursor = aws.store.list_events(limit=7, cursor=cursor)
        listed += page
        if not cursor:
            break
    assert [e.internal_id for e in listed] == [e.internal_id for e in reversed(events)]


def test_json_is_stored_as_text_and_times_as_numbers(aws, clock):
    event = make_event(clock, event_id="raw", data={"n": 2**53 - 1, "f": 1.5})
    aws.store.save_events([event], clock.now_ms())
    ddb, table = aws.clients["dynamodb"], aws.names.table_name

    item = ddb.get_item(
        TableName=table, Key={"pk": {"S": f"EVENT#{event.internal_id}"}, "sk": {"S": "EVENT"}}
    )["Item"]
    assert item["data"] == {"S": '{"n":9007199254740991,"f":1.5}'}
    assert item["received_at"] == {"N": str(event.received_at)}

    claim = ddb.get_item(TableName=table, Key={"pk": {"S": "EVID#raw"}, "sk": {"S": "EVID"}})["Item"]
    expires_at = int(claim["expires_at"]["N"])
    assert expires_at == clock.now_ms() + 24 * 3600 * 1000
    assert int(claim["ttl"]["N"]) == expires_at // 1000  # TTL is in seconds


@pytest.fixture
def inline_store(aws):
    """The store as deployed without a payload bucket: every value stays in its item, so DynamoDB's
    item limit binds. (With the bucket, large values go to S3: tests/aws/test_payloads.py.)"""
    return DynamoStore(aws.clients["dynamodb"], aws.names.table_name)


def test_oversized_memo_is_a_store_error(inline_store, busy_run):
    with pytest.raises(StoreError, match="item limit"):
        inline_store.commit_memo(busy_run.run_id, make_memo("big", "x" * 410_000, "0100"))
    assert not inline_store.load_run(busy_run.run_id).has_memo("big")


def test_oversized_event_is_refused_before_its_id_is_claimed(inline_store, clock):
    big = make_event(clock, event_id="big-1", data={"blob": "x" * 410_000})
    with pytest.raises(StoreError, match="item limit"):
        inline_store.save_events([big], clock.now_ms())

    small = make_event(clock, event_id="big-1")
    assert inline_store.save_events([small], clock.now_ms()) == [small]


def test_oversized_run_update_is_a_store_error(inline_store, busy_run):
    with pytest.raises(StoreError):
        inline_store.update_run(busy_run.run_id, {"output": "x" * 410_000})
    assert inline_store.get_run(busy_run.run_id).output is None


def test_orphaned_claim_is_taken_over(aws, clock, monkeypatch):
    """A writer that died between claiming an id and storing its event must not make the id
    unusable: the retry waits briefly, then takes the claim over."""
    import stepline.aws.events as events

    monkeypatch.setattr(events, "ORPHAN_WAITS_S", (0.0, 0.01))
    dead = make_event(clock, event_id="orphan")
    assert aws.store._claim_event_id(dead, clock.now_ms()) == (True, "")

    retry = make_event(clock, event_id="orphan")
    assert aws.store.save_events([retry], clock.now_ms()) == [retry]
    assert aws.store.get_event(retry.internal_id) == retry
    (again,) = aws.store.save_events([make_event(clock, event_id="orphan")], clock.now_ms())
    assert again.internal_id == retry.internal_id


def test_links_without_a_run_are_ignored(aws, clock):
    """Links are written before the run; a create that died in between leaves only hints."""
    event = make_event(clock)
    aws.store.save_events([event], clock.now_ms())
    ddb, table = aws.clients["dynamodb"], aws.names.table_name
    ddb.put_item(
        TableName=table,
        Item={"pk": {"S": f"EVENT#{event.internal_id}"}, "sk": {"S": "RUN#ghost"},
              "created_at": {"N": "1"}},
    )
    run = make_run(clock, event_ids=[event.internal_id])
    aws.store.create_run(run)

    assert aws.store.runs_for_event(event.internal_id) == [run]
