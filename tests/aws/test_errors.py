"""AWS failures reach the engine as ``StoreError`` (or False for a lost condition), never as a
botocore exception."""

from __future__ import annotations

from dataclasses import replace

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from stepline.aws import open_aws_backend
from stepline.aws.queue import SqsWorkQueue
from stepline.aws.table import DynamoStore
from stepline.engine.ports import StoreError
from tests.contract.helpers import make_event, make_memo, make_run


def stubbed(service: str):
    client = boto3.client(service, region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
    return client, Stubber(client)


@pytest.mark.parametrize(
    "code", ["ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"]
)
def test_throttling_and_server_errors_become_store_errors(code, clock):
    client, stub = stubbed("dynamodb")
    stub.add_client_error("update_item", service_error_code=code, http_status_code=400)
    stub.add_client_error("query", service_error_code=code, http_status_code=500)
    store = DynamoStore(client, "t")
    with stub:
        with pytest.raises(StoreError, match=code):
            store.commit_memo("r1", make_memo("s", 1, "0001"))
        with pytest.raises(StoreError, match=code):
            store.load_run("r1")


def test_a_lost_condition_is_false_not_an_error(clock):
    client, stub = stubbed("dynamodb")
    stub.add_client_error("update_item", service_error_code="ConditionalCheckFailedException")
    stub.add_client_error("put_item", service_error_code="ConditionalCheckFailedException")
    store = DynamoStore(client, "t")
    with stub:
        assert store.commit_memo("r1", make_memo("s", 1, "0001")) is False
        assert store.create_run(make_run(clock, event_ids=[])) is False


def test_missing_table_is_a_store_error(aws, clock):
    names = aws.names
    broken = open_aws_backend(replace(names, table_name="no-such-table"), clock, aws.session)
    with pytest.raises(StoreError, match="ResourceNotFound"):
        broken.store.get_run("r1")
    with pytest.raises(StoreError):
        broken.store.save_events([make_event(clock)], clock.now_ms())
    broken.close()


def test_unreachable_endpoint_is_a_store_error():
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StoreError, match="DynamoDB GetItem failed"):
        DynamoStore(client, "t").get_run("r1")


def test_queue_errors(aws):
    missing = SqsWorkQueue(aws.clients["sqs"], aws.names.queue_url + "-gone")
    with pytest.raises(StoreError, match="SendMessage"):
        missing.send({"n": 1})
    with pytest.raises(StoreError, match="SendMessageBatch"):
        missing.send_many([{"n": 1}])
    with pytest.raises(StoreError, match="262144"):
        aws.queue.send({"blob": "x" * 262_144})
    with pytest.raises(ValueError):
        aws.queue.send({"n": 1}, delay_seconds=901)
    with pytest.raises(ValueError):
        aws.queue.send_many([{"n": 1}], delay_seconds=-1)


def test_acknowledging_twice_is_harmless(aws):
    aws.queue.send({"n": 1})
    (msg,) = aws.queue.receive(1, 30)
    aws.queue.ack(msg.handle)
    aws.queue.ack(msg.handle)
    aws.queue.retry_later(msg.handle, 0)
    assert aws.queue.receive(10, 30) == []


def test_batch_failures_reported_by_sqs(clock):
    client, stub = stubbed("sqs")
    entry_fault = {"Id": "0", "SenderFault": True, "Code": "InvalidParameterValue", "Message": "bad"}
    stub.add_response("send_message_batch", {"Successful": [], "Failed": [entry_fault]})
    server_fault = {"Id": "0", "SenderFault": False, "Code": "InternalError", "Message": "oops"}
    stub.add_response("send_message_batch", {"Successful": [], "Failed": [server_fault]})
    stub.add_response(
        "send_message_batch",
        {"Successful": [{"Id": "0", "MessageId": "m", "MD5OfMessageBody": "x"}], "Failed": []},
    )
    queue = SqsWorkQueue(client, "https://sqs.us-east-1.amazonaws.com/123456789012/q")
    with stub:
        with pytest.raises(StoreError, match="InvalidParameterValue"):
            queue.send_many([{"n": 1}])
        queue.send_many([{"n": 1}])  # SQS's own failure: retried once, then fine
        stub.assert_no_pending_responses()
