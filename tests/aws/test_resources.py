"""Provisioning, names from the environment, the moto lock and Lambda records."""

from __future__ import annotations

import json
import time

import pytest

from stepline.aws import AwsNames, message_from_lambda_record, open_aws_backend, provision
from stepline.aws.moto_env import install_moto_lock
from stepline.aws.resources import queue_arn_from_url
from stepline.settings import Settings
from tests.contract.helpers import make_run


def test_provisioned_resources(aws):
    names = aws.names
    clients = aws.clients
    attrs = clients["sqs"].get_queue_attributes(QueueUrl=names.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["MaximumMessageSize"] == "262144"
    assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == names.dlq_arn
    ttl = clients["dynamodb"].describe_time_to_live(TableName=names.table_name)
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    table = clients["dynamodb"].describe_table(TableName=names.table_name)["Table"]
    indexes = {g["IndexName"]: g for g in table["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["gsi1", "gsi2"]
    # The sweeper's index holds keys only: lease writes and large attributes never reach it.
    assert indexes["gsi2"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_provision_again_keeps_data_and_schedules(aws, clock):
    aws.timers.schedule("keep", clock.now_ms() + 1000, {"n": 1})
    aws.queue.send({"n": 2})
    run = make_run(clock)
    aws.store.create_run(run)

    again = provision(AwsNames.for_prefix("stepline"), aws.session)

    assert again == aws.names
    assert aws.store.get_run(run.run_id) == run
    assert aws.timers.fire_due(clock.now_ms() + 1000) == 1
    assert sorted(m.body["n"] for m in aws.queue.receive(10, 30)) == [1, 2]


def test_names_round_trip_through_settings(aws):
    names = aws.names
    assert AwsNames.from_settings(Settings(**names.settings_values())) == names
    env = Settings(**names.settings_values()).to_env()
    assert AwsNames.from_env(env) == names


def test_names_from_minimal_settings():
    url = "https://sqs.eu-west-1.amazonaws.com/111122223333/app-work"
    names = AwsNames.from_settings(Settings(table_name="app", queue_url=url))
    assert names.queue_arn == "arn:aws:sqs:eu-west-1:111122223333:app-work"
    assert names.region == "eu-west-1"
    assert (names.schedule_group, names.cron_group) == ("app", "app-cron")
    assert queue_arn_from_url("") == ""
    with pytest.raises(ValueError, match="STEPLINE_TABLE_NAME"):
        AwsNames.from_settings(Settings())


def test_backend_without_a_clock_uses_the_system_clock(aws):
    backend = open_aws_backend(aws.names, None, aws.session)
    assert abs(backend.clock.now_ms() - time.time() * 1000) < 5_000
    backend.close()


def test_moto_lock_is_installed_once():
    from moto.core.botocore_stubber import BotocoreStubber

    lock = install_moto_lock()
    wrapped = BotocoreStubber.process_request
    assert install_moto_lock() is lock
    assert BotocoreStubber.process_request is wrapped
    assert wrapped.__serialized_by__ is lock


def test_lambda_sqs_record():
    record = {
        "messageId": "m-1",
        "receiptHandle": "handle-1",
        "body": '{"kind":"run","run_id":"r1","n":9007199254740991}',
        "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1"},
        "eventSource": "aws:sqs",
    }
    msg = message_from_lambda_record(record)
    assert (msg.handle, msg.receive_count) == ("handle-1", 3)
    assert msg.body == {"kind": "run", "run_id": "r1", "n": 2**53 - 1}
    assert message_from_lambda_record({**record, "body": "not json"}).body == {
        "invalid_body": "not json"
    }


def test_the_adapters_implement_every_port(aws):
    from stepline.engine.ports import Store, Timers, WorkQueue

    assert aws.name == "aws"
    assert isinstance(aws.store, Store)
    assert isinstance(aws.queue, WorkQueue)
    assert isinstance(aws.timers, Timers)
