"""The AWS adapter family: DynamoDB (one table), SQS, EventBridge Scheduler and S3 (values too
large for a table item) behind the engine's ports. The only package that imports boto3."""

from __future__ import annotations

import threading
from collections.abc import Callable
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


SERVICES = ("dynamodb", "sqs", "scheduler", "s3")
# A boto3 session is not safe for concurrent client creation; clients built on first use may be
# first used by two threads at once.
_CLIENT_LOCK = threading.Lock()


def make_clients(session: Any, region: str = "", *, lazy: bool = False) -> dict[str, Any]:
    """The clients the adapters use (boto3 clients are safe to share across threads).
    An empty region leaves the choice to the session. ``lazy``: each client is built at its
    first use (``LazyClient``)."""

    def build(service: str) -> Any:
        return session.client(service, region_name=region or None, config=CLIENT_CONFIG)

    if lazy:
        return {service: LazyClient(service, build) for service in SERVICES}
    return {service: build(service) for service in SERVICES}


class LazyClient:
    """A boto3 client built at its first use, and used through this object from then on.

    Building a client loads its service model (the first one also loads botocore's endpoint
    rules): tens of milliseconds each on a Lambda's share of a CPU. A cold Lambda builds only the
    clients the request in hand needs: the API answering a read never builds SQS's or
    Scheduler's, the executor never builds S3's unless a value is too large for a table item.
    """

    def __init__(self, service: str, build: Callable[[str], Any]) -> None:
        self.service = service
        self._build = build
        self._client: Any = None

    @property
    def built(self) -> bool:
        return self._client is not None

    def client(self) -> Any:
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = self._build(self.service)
        return self._client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not the client's: an attribute of ours not set yet (a copy)
            raise AttributeError(name)
        return getattr(self.client(), name)

    def close(self) -> None:
        """Close the client if it was ever built (closing is no reason to build it)."""
        if self._client is not None:
            self._client.close()

    def __repr__(self) -> str:
        return f"LazyClient({self.service!r}, built={self.built})"


@dataclass(kw_only=True)
class AwsBackend(Backend):
    """The ports on DynamoDB, SQS, EventBridge Scheduler and S3, with what they were wired from
    (for provisioning, the moto pump and tests that look at the resources themselves)."""

    names: AwsNames
    # boto3 clients by service name: dynamodb, sqs, scheduler, s3 (LazyClients when the backend
    # was wired from names alone)
    clients: dict[str, Any]
    clock: Clock  # the clock the timers date cron schedules by
    session: Any = None  # the boto3 session the clients came from, when one was given


def open_aws_backend(
    names: AwsNames,
    clock: Clock | None = None,
    session: Any = None,
    *,
    clients: dict[str, Any] | None = None,
    dlq_wait_seconds: int = 1,
    retention_ms: int | None = None,
) -> AwsBackend:
    """Wire the AWS adapters for the resources in ``names``.

    ``clock`` is the engine's clock: the timers read it to date new cron schedules (for the pump
    on moto); the store takes times as arguments and SQS keeps its own real-time clock.
    None means the system clock (deployed Lambdas). ``dlq_wait_seconds`` is how long reads of
    the dead-letter queue long-poll (see ``SqsDeadLetters``). Without ``clients``, each is built
    at its first use. ``retention_ms``: how long ended runs and stored events are kept (None: for
    ever; ``stepline.engine.stores.RunEraser``).
    """
    clock = clock or SystemClock()
    if clients is None:
        session = session or boto3.Session(region_name=names.region or None)
        clients = make_clients(session, names.region, lazy=True)
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
        store=DynamoStore(ddb, names.table_name, payloads, retention_ms=retention_ms),
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
    "LazyClient",
    "PayloadStore",
    "SchedulerTimers",
    "SqsDeadLetters",
    "SqsWorkQueue",
    "make_clients",
    "message_from_lambda_record",
    "open_aws_backend",
    "provision",
]
