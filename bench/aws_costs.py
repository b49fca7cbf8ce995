"""AWS requests counted with botocore's event hooks, and priced with AWS list prices.

The adapters' boto3 clients get a ``before-call`` hook that counts every request by operation
(and a batch write by its items, which is how it is billed). ``dollars_per_million_steps`` turns
requests per step into dollars per million steps, with what runs around them on AWS: the
executor Lambda billed while it waits on the app, and, for checkpoints sent to the API, an API
Gateway request and an API Lambda invocation each.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

from stepline.aws import AwsBackend

# AWS list prices, us-east-1, as published on 2026-11-01. Per request unless noted.
PRICES_AS_OF = "2026-11-01"
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1_000_000  # on-demand, per WRU (1 KB)
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1_000_000  # on-demand, per RRU (4 KB strongly consistent)
SQS_REQUEST = 0.40 / 1_000_000  # standard queue, per 64 KB chunk
SCHEDULER_INVOCATION = 1.00 / 1_000_000
LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000166667  # x86
API_GATEWAY_HTTP_REQUEST = 1.00 / 1_000_000  # HTTP API, first 300 million a month
EXECUTOR_MEMORY_GB = 0.5  # the executor Lambda's default memory size
API_MEMORY_GB = 0.5  # the API Lambda's

DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DDB_READS = {"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"}
SQS_OPS = {"SendMessage", "SendMessageBatch", "DeleteMessage", "ChangeMessageVisibility"}
# Calls only the local driver makes: on AWS the Lambda event source mapping receives from SQS
# (batched, long-polled) and Scheduler fires timers by itself. Reported apart, not priced per step.
DRIVER_ONLY_OPS = {"ReceiveMessage", "ListSchedules", "GetSchedule"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AwsRequestCounter:
    """Counts AWS API calls by operation through botocore's `before-call` event on every client
    the backend holds."""

    def __init__(self, backend: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        for client in _boto_clients(backend):
            client.meta.events.register("before-call.*.*", self._count)
            client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._count_items)

    def _count(self, model: Any, **_: Any) -> None:
        if self.active:
            self.counts[model.name] += 1

    def _count_items(self, params: dict, **_: Any) -> None:
        # A batch write costs one write unit per item, not per request.
        if self.active:
            self.counts["BatchWriteItem.items"] += sum(len(v) for v in params.get("RequestItems", {}).values())


def _boto_clients(backend: Any) -> list[Any]:
    return list(backend.clients.values()) if isinstance(backend, AwsBackend) else []


def writes(counts: dict[str, float]) -> float:
    """DynamoDB write requests (a batch write's items counted one by one)."""
    total = sum(v for op, v in counts.items() if op in DDB_WRITES and op != "BatchWriteItem")
    return total + counts.get("BatchWriteItem.items", 0.0)


def reads(counts: dict[str, float]) -> float:
    return sum(v for op, v in counts.items() if op in DDB_READS)


def dollars_per_million_steps(
    per_step: dict[str, float],
    executor_seconds_per_step: float,
    *,
    api_requests_per_step: float = 0.0,
    api_seconds_per_step: float = 0.0,
    executor_invocations_per_step: float = 0.0,
) -> dict[str, float]:
    """Dollars per million steps, by service. ``per_step``: AWS requests per step by operation
    (each write and read taken as one unit: items stay under 1 KB and 4 KB here)."""
    sqs = sum(v for op, v in per_step.items() if op in SQS_OPS)
    costs = {
        "dynamodb": writes(per_step) * DYNAMODB_WRITE_REQUEST_UNIT + reads(per_step) * DYNAMODB_READ_REQUEST_UNIT,
        "sqs": sqs * SQS_REQUEST,
        "scheduler": per_step.get("CreateSchedule", 0.0) * SCHEDULER_INVOCATION,
        # The executor Lambda is billed while it waits on the app.
        "executor": executor_seconds_per_step * EXECUTOR_MEMORY_GB * LAMBDA_GB_SECOND
        + executor_invocations_per_step * LAMBDA_REQUEST,
        # Checkpoints sent to the API: one API Gateway request and one API Lambda invocation each.
        "api": api_requests_per_step * (API_GATEWAY_HTTP_REQUEST + LAMBDA_REQUEST)
        + api_seconds_per_step * API_MEMORY_GB * LAMBDA_GB_SECOND,
    }
    return {k: v * 1_000_000 for k, v in costs.items()}
