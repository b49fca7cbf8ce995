"""S3 offload on the AWS family: large values go to the payload bucket behind a reference, small
ones cost exactly what they did (docs/architecture.md, "Costs"), and S3 is touched only for the large ones."""

from __future__ import annotations

import json

import pytest
from botocore.stub import Stubber

from stepline.aws import AwsNames, provision
from stepline.aws.payloads import INLINE_MAX_BYTES, SERVER_SIDE_ENCRYPTION, ObjectCache, PayloadStore
from stepline.aws.table import DynamoStore
from stepline.engine.ports import StoreError
from stepline.settings import Settings
from tests.contract.helpers import make_event, make_memo, make_pending, make_run

BIG = "x" * 200_000  # over the inline threshold, under the item limit: offloaded by choice


def raw_item(aws, pk: str, sk: str) -> dict:
    ddb, table = aws.clients["dynamodb"], aws.names.table_name
    return ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


def s3(aws):
    return aws.clients["s3"], aws.names.payload_bucket


@pytest.fixture
def run(aws, clock):
    run = make_run(clock)
    aws.store.create_run(run)
    return run


def test_small_values_cost_what_they_always_did(aws, calls, run, clock):
    store = aws.store
    for i in range(3):
        _, counts = calls.during(store.commit_memo, run.run_id, make_memo(f"s{i}", {"i": i}, f"{i:04d}"))
        assert counts == {"UpdateItem": 1}
    _, counts = calls.during(store.add_pending, run.run_id, make_pending("p", "Sleep", wake_at=1))
    assert counts == {"UpdateItem": 1}
    state, counts = calls.during(store.load_run, run.run_id)
    assert counts == {"Query": 1} and len(state.memos) == 3
    _, counts = calls.during(store.create_run, make_run(clock))
    assert counts == {"BatchWriteItem": 1, "PutItem": 1}
    _, counts = calls.during(store.save_events, [make_event(clock)], clock.now_ms())
    assert "PutObject" not in counts


def test_a_large_memo_costs_one_put_and_one_get_per_container_when_first_used(aws, calls, run):
    store = aws.store
    _, counts = calls.during(store.commit_memo, run.run_id, make_memo("big-1", BIG, "0001"))
    assert counts == {"PutObject": 1, "UpdateItem": 1}
    store.commit_memo(run.run_id, make_memo("big-2", BIG + "y", "0002"))
    store.commit_memo(run.run_id, make_memo("small", 1, "0003"))

    # Another container (its own cache) reads the run without its large values: they are
    # fetched when first used, once each, then kept: the object's key names its content, so the
    # copy can never be stale.
    other = DynamoStore(aws.clients["dynamodb"], aws.names.table_name,
                        PayloadStore(aws.clients["s3"], aws.names.payload_bucket))
    state, counts = calls.during(other.load_run, run.run_id)
    assert counts == {"Query": 1} and [m.step_id for m in state.memos] == ["big-1", "big-2", "small"]
    values, counts = calls.during(state.memo_map)
    assert counts == {"GetObject": 2}
    assert values == {"big-1": {"data": BIG}, "big-2": {"data": BIG + "y"}, "small": {"data": 1}}
    assert calls.during(state.memo_map) == (values, {})  # fetched once
    again, counts = calls.during(other.load_run, run.run_id)
    assert counts == {"Query": 1}
    assert calls.during(again.memo_map) == (values, {})  # the objects are cached
    # The container that wrote them reads nothing from S3 at all.
    mine, counts = calls.during(store.load_run, run.run_id)
    assert counts == {"Query": 1}
    assert calls.during(mine.memo_map) == (values, {})


def test_the_first_value_used_fetches_every_offloaded_value_of_the_read_at_once(aws, calls, run):
    """Whoever reads one value (a call's memo map, the REST API's step list) reads them all:
    fetched together, in parallel, not one round trip per step."""
    for i in range(3):
        aws.store.commit_memo(run.run_id, make_memo(f"big-{i}", BIG + str(i), f"{i:04d}"))
    other = DynamoStore(aws.clients["dynamodb"], aws.names.table_name,
                        PayloadStore(aws.clients["s3"], aws.names.payload_bucket))
    state = other.load_run(run.run_id)
    assert not any(m.fetched for m in state.memos)
    first, counts = calls.during(lambda: state.memos[1].value)
    assert first == {"data": BIG + "1"} and counts == {"GetObject": 3}
    assert all(m.fetched for m in state.memos)
    values, counts = calls.during(state.memo_map)
    assert counts == {} and values == {f"big-{i}": {"data": BIG + str(i)} for i in range(3)}


def test_the_limits_see_an_unfetched_memo_at_its_stored_size(aws, calls, run):
    """Ids, counts and sizes of a run come from the items: the step and state limits, and the
    choice of use_api, never fetch a value from S3."""
    from stepline.engine.payload_policy import json_bytes, run_state_bytes

    aws.store.commit_memo(run.run_id, make_memo("big", BIG, "0001"))
    other = DynamoStore(aws.clients["dynamodb"], aws.names.table_name,
                        PayloadStore(aws.clients["s3"], aws.names.payload_bucket))
    state = other.load_run(run.run_id)
    checks, counts = calls.during(
        lambda: (state.has_memo("big"), state.memo_count(), state.stack(), run_state_bytes(state))
    )
    assert counts == {}
    assert checks == (True, 1, ["big"], json_bytes(state.run.events) + json_bytes({"data": BIG}))


def test_the_item_holds_a_reference_to_an_encrypted_object(aws, run):
    aws.store.commit_memo(run.run_id, make_memo("big", BIG, "0001"))

    attr = raw_item(aws, f"RUN#{run.run_id}", "STEP#big")["memo_value"]
    key = attr["M"]["s3"]["S"]
    assert key.startswith(f"runs/{run.run_id}/steps/big/memo/") and key.endswith(".json")
    assert int(attr["M"]["bytes"]["N"]) == len(json.dumps({"data": BIG}, separators=(",", ":")))
    client, bucket = s3(aws)
    obj = client.get_object(Bucket=bucket, Key=key)
    assert obj["ServerSideEncryption"] == SERVER_SIDE_ENCRYPTION
    assert json.loads(obj["Body"].read()) == {"data": BIG}


def test_values_up_to_the_threshold_stay_inline(aws, run):
    overhead = len(json.dumps({"data": ""}, separators=(",", ":")))
    at_limit = "x" * (INLINE_MAX_BYTES - overhead)
    aws.store.commit_memo(run.run_id, make_memo("at", at_limit, "0001"))
    aws.store.commit_memo(run.run_id, make_memo("over", at_limit + "x", "0002"))

    assert "S" in raw_item(aws, f"RUN#{run.run_id}", "STEP#at")["memo_value"]
    assert "M" in raw_item(aws, f"RUN#{run.run_id}", "STEP#over")["memo_value"]
    assert aws.store.load_run(run.run_id).memo_map()["over"] == {"data": at_limit + "x"}


def test_every_large_field_is_offloaded_under_its_owner(aws, clock):
    store = aws.store
    event = make_event(clock, event_id="e-big", data={"blob": BIG})
    store.save_events([event], clock.now_ms())
    run = make_run(clock, event_ids=[event.internal_id])
    run.events = [event.wire()]
    store.create_run(run)
    store.update_run(run.run_id, {"output": {"blob": BIG}})
    store.add_pending(run.run_id, make_pending("p", "WaitForEvent", blob=BIG))

    client, bucket = s3(aws)
    keys = {o["Key"].rsplit("/", 1)[0] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {
        f"events/{event.internal_id}/data",
        f"runs/{run.run_id}/events",
        f"runs/{run.run_id}/output",
        f"runs/{run.run_id}/steps/p/pending",
    }
    assert store.get_event(event.internal_id) == event
    assert store.get_run(run.run_id).output == {"blob": BIG}


def test_a_losing_writer_leaves_the_winner_intact(aws, run):
    """Content-addressed keys: the loser's object is a different key (or the same bytes)."""
    assert aws.store.commit_memo(run.run_id, make_memo("s", BIG, "0001"))
    assert not aws.store.commit_memo(run.run_id, make_memo("s", BIG + "loser", "0002"))
    assert not aws.store.commit_memo(run.run_id, make_memo("s", BIG, "0003"))

    assert aws.store.load_run(run.run_id).memo_map() == {"s": {"data": BIG}}


def test_s3_failures_are_store_errors_and_nothing_is_half_written(aws, run):
    store = aws.store
    s3_client = aws.clients["s3"]
    with Stubber(s3_client) as stub:
        stub.add_client_error("put_object", service_error_code="SlowDown", http_status_code=503)
        with pytest.raises(StoreError, match="SlowDown"):
            store.commit_memo(run.run_id, make_memo("s", BIG, "0001"))
    assert not store.load_run(run.run_id).has_memo("s")

    # A reference whose object is gone is a broken store, never a silently missing value.
    store.commit_memo(run.run_id, make_memo("s", BIG, "0002"))
    key = raw_item(aws, f"RUN#{run.run_id}", "STEP#s")["memo_value"]["M"]["s3"]["S"]
    client, bucket = s3(aws)
    client.delete_object(Bucket=bucket, Key=key)
    other = DynamoStore(aws.clients["dynamodb"], aws.names.table_name, PayloadStore(client, bucket))
    state = other.load_run(run.run_id)  # a container without a copy of it
    with pytest.raises(StoreError, match="GetObject"):
        state.memo_map()  # fetched when used


def test_provisioned_bucket_is_private_and_encrypted(aws):
    client, bucket = s3(aws)
    assert bucket == "stepline-payloads"
    rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    block = client.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    # Provisioning again keeps the bucket and what is in it.
    client.put_object(Bucket=bucket, Key="keep.json", Body=b"{}")
    provision(AwsNames.for_prefix("stepline"), aws.session, clients=aws.clients)
    assert client.get_object(Bucket=bucket, Key="keep.json")["Body"].read() == b"{}"


def test_the_bucket_name_comes_from_the_settings():
    names = AwsNames.from_env({"STEPLINE_TABLE_NAME": "t", "STEPLINE_PAYLOAD_BUCKET": "my-payloads"})
    assert names.payload_bucket == "my-payloads"
    assert Settings(**names.settings_values()).to_env()["STEPLINE_PAYLOAD_BUCKET"] == "my-payloads"
    assert AwsNames.from_settings(Settings(table_name="t")).payload_bucket == ""


def test_without_a_bucket_nothing_goes_to_s3(aws, calls, run):
    """A store with no payload bucket keeps small and mid-sized values inline, as before."""
    inline = DynamoStore(aws.clients["dynamodb"], aws.names.table_name)
    _, counts = calls.during(inline.commit_memo, run.run_id, make_memo("mid", BIG, "0001"))
    assert counts == {"UpdateItem": 1}
    assert "S" in raw_item(aws, f"RUN#{run.run_id}", "STEP#mid")["memo_value"]
    assert aws.store.load_run(run.run_id).memo_map() == {"mid": {"data": BIG}}


def test_payload_store_resolves_several_references_at_once(aws):
    client, bucket = s3(aws)
    payloads = PayloadStore(client, bucket)
    items = [
        {"a": payloads.offload({"S": json.dumps("v" * 100_000 + str(i))}, f"test/{i}"), "b": {"N": "1"}}
        for i in range(5)
    ]
    assert all("M" in item["a"] for item in items)
    payloads.resolve(items)
    assert [json.loads(item["a"]["S"]) for item in items] == ["v" * 100_000 + str(i) for i in range(5)]
    assert all(item["b"] == {"N": "1"} for item in items)
    payloads.close()


def test_the_container_cache_is_bounded_and_drops_the_least_recently_used():
    cache = ObjectCache(max_bytes=100)
    for name in "abc":
        cache.put(name, b"x" * 25)
    assert cache.get("a") == b"x" * 25  # a is now the most recent
    cache.put("d", b"y" * 25)
    cache.put("e", b"z" * 25)  # over 100 bytes: b, the least recently used, goes
    assert cache.get("b") is None and cache.get("a") and cache.get("e")
    cache.put("huge", b"h" * 26)  # over a quarter of the cache: never kept
    assert cache.get("huge") is None
