"""The AWS adapter family: DynamoDB (one table), SQS, EventBridge Scheduler and S3 (values too
large for a table item) behind the engine's ports. The only package that imports boto3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from stepline.aws.dead_letters import SqsDeadLetters
from stepline.aws.payloads import PayloadStore
from stepline.aws.queue import SqsWorkQueue, message_from_lambda_record
from stepline.aws.resources import AwsNames, provision
from stepline.aws.scheduler import SchedulerTimers
from stepline.aws.table import DynamoStore
from stepline.engine.clock import SystemClock
from stepline.engine.ports import Backend, Clock

# Standard mode retries throttling and 5xx with backoff before anything reaches the engine.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


def make_clients(session: Any, region: str = "") -> dict[str, Any]:
    """The clients the adapters use (boto3 clients are safe to share across threads).
    An empty region leaves the choice to the session."""
    return {
        service: session.client(service, region_name=region or None, config=CLIENT_CONFIG)
        for service in ("dynamodb", "sqs", "scheduler", "s3")
    }


@dataclass(kw_only=True)
class AwsBackend(Backend):
    """The ports on DynamoDB, SQS, EventBridge Scheduler and S3, with what they were wired from
    (for provisioning, the moto pump and tests that look at the resources themselves)."""

    names: AwsNames
    clients: dict[str, Any]  # boto3 clients by service name: dynamodb, sqs, scheduler, s3
    clock: Clock  # the clock the timers date cron schedules by
    session: Any = None  # the boto3 session the clients came from, when one was given


def open_aws_backend(
    names: AwsNames,
    clock: Clock | None = None,
    session: Any = None,
    *,
    clients: dict[str, Any] | None = None,
    dlq_wait_seconds: int = 1,
) -> AwsBackend:
    """Wire the AWS adapters for the resources in ``names``.

    ``clock`` is the engine's clock: the timers read it to date new cron schedules (for the pump
    on moto); the store takes times as arguments and SQS keeps its own real-time clock.
    None means the system clock (deployed Lambdas). ``dlq_wait_seconds`` is how long reads of
    the dead-letter queue long-poll (see ``SqsDeadLetters``).
    """
    clock = clock or SystemClock()
    if clients is None:
        session = session or boto3.Session(region_name=names.region or None)
        clients = make_clients(session, names.region)
    ddb, sqs, scheduler = clients["dynamodb"], clients["sqs"], clients["scheduler"]
    payloads = None
    if names.payload_bucket:
        if "s3" not in clients:
            clients["s3"] = (session or boto3.Session(region_name=names.region or None)).client(
                "s3", region_name=names.region or None, config=CLIENT_CONFIG
            )
        payloads = PayloadStore(clients["s3"], names.payload_bucket)

    def close() -> None:
        if payloads is not None:
            payloads.close()
        for client in clients.values():
            client.close()

    return AwsBackend(
        store=DynamoStore(ddb, names.table_name, payloads),
        queue=SqsWorkQueue(sqs, names.queue_url),
        timers=SchedulerTimers(scheduler, sqs, names, clock),
        dead_letters=SqsDeadLetters(sqs, names.dlq_url, names.queue_url, wait_seconds=dlq_wait_seconds),
        name="aws",
        closer=close,
        names=names,
        clients=clients,
        clock=clock,
        session=session,
    )


__all__ = [
    "AwsBackend",
    "AwsNames",
    "DynamoStore",
    "PayloadStore",
    "SchedulerTimers",
    "SqsDeadLetters",
    "SqsWorkQueue",
    "make_clients",
    "message_from_lambda_record",
    "open_aws_backend",
    "provision",
]
