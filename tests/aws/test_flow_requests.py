"""The request budget of the flow-control primitives on DynamoDB, counted call by call: every
write is one conditional request, whether it wins or loses, and a concurrency key is read with
one Query (slots and the head of the line together)."""

from __future__ import annotations

from stepline.engine.flow_records import LineEntry

S = 1000


def test_flow_state_is_one_request_per_operation(aws, calls, clock):
    store, now = aws.store, clock.now_ms()

    won, counts = calls.during(store.put_flow_state, "k", {"tat": 1}, expect_version=None, expires_at=now + S, now_ms=now)
    assert won and counts == {"UpdateItem": 1}
    lost, counts = calls.during(store.put_flow_state, "k", {"tat": 2}, expect_version=None, expires_at=now + S, now_ms=now)
    assert not lost and counts == {"UpdateItem": 1}
    state, counts = calls.during(store.get_flow_state, "k", now)
    assert state.data == {"tat": 1} and counts == {"GetItem": 1}
    deleted, counts = calls.during(store.delete_flow_state, "k", state.version)
    assert deleted and counts == {"DeleteItem": 1}


def test_a_claim_tells_who_holds_the_key_in_the_same_request(aws, calls, clock):
    store, now = aws.store, clock.now_ms()
    store.claim_key("k", "run-1", now + S, now)

    holder, counts = calls.during(store.claim_key, "k", "run-2", now + S, now)

    assert holder == "run-1" and counts == {"PutItem": 1}
    _, counts = calls.during(store.release_key, "k", "run-1")
    assert counts == {"DeleteItem": 1}


def test_a_concurrency_key_is_one_query_and_each_change_one_write(aws, calls, clock):
    store, now = aws.store, clock.now_ms()
    for i in range(3):
        store.take_slot("c", i, f"w{i}", now + S, now)
    for i in range(5):
        store.join_line("c", LineEntry(f"{i:04d}", {"kind": "call", "run_id": f"r{i}"}, now))

    view, counts = calls.during(store.slot_view, "c", 4)

    assert counts == {"Query": 1}
    assert len(view.holders) == 3 and [e.position for e in view.line] == ["0000", "0001", "0002", "0003"]
    for call, op in (
        (lambda: store.take_slot("c", 3, "w3", now + S, now), "PutItem"),
        (lambda: store.release_slot("c", 3, "w3"), "DeleteItem"),
        (lambda: store.join_line("c", LineEntry("0009", {}, now)), "PutItem"),
        (lambda: store.leave_line("c", "0009"), "DeleteItem"),
    ):
        _, counts = calls.during(call)
        assert counts == {op: 1}


def test_nothing_scans(aws, calls, clock):
    store, now = aws.store, clock.now_ms()
    calls.reset()
    store.put_flow_state("k", {}, expect_version=None, expires_at=now + S, now_ms=now)
    store.get_flow_state("k", now)
    store.claim_key("k", "h", now + S, now)
    store.take_slot("c", 0, "w", now + S, now)
    store.slot_view("c", 10)
    store.line_entry("c", "0001")

    assert "Scan" not in calls.counts()
