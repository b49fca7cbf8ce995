"""Faults in the AWS calls themselves, for the AWS adapters on moto.

A handler on each client's ``before-send`` (ahead of moto's) answers some requests itself:

* ``ThrottlingException`` (400) or ``InternalServerError`` (500) without moto seeing the
  request: the write did not happen;
* ``InternalServerError`` AFTER letting moto apply the request: the write happened and its
  response was lost.

Both go through botocore's real retry machinery (the adapters' standard mode). A retried write
whose first try applied is exactly how DynamoDB produces a genuine
``ConditionalCheckFailedException`` for a write that in fact succeeded, and how SQS delivers a
message twice; so these faults test the adapters' handling of both, as production would.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse
from moto.core.models import botocore_stubber

from stepline.engine.ports import Backend
from tests.faults.plan import FaultPlan

FAULTED_SERVICES = ("dynamodb", "sqs", "scheduler")
# A receive whose response is lost hides its messages for a whole visibility timeout (minutes):
# real SQS does the same, and it delays work without losing it. Left out so a chaos run's
# timings stay bounded; throttling and errors still apply to receives.
NOT_LOST = ("ReceiveMessage",)


def _error(request: Any, status: int, code: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": f"injected {code}"}).encode()
    headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


def install_aws_faults(backend: Backend, plan: FaultPlan, *, throttle: float, internal: float, lost: float) -> None:
    """Fault the backend's DynamoDB, SQS and Scheduler clients at the given per-request rates."""

    def before_send(request: Any, event_name: str = "", **kwargs: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        fault = plan.choose([("throttle", throttle), ("internal", internal),
                             ("lost", 0.0 if operation in NOT_LOST else lost)])
        if fault is None:
            return None
        if fault == "throttle":
            plan.note("aws_throttled")
            return _error(request, 400, "ThrottlingException")
        if fault == "internal":
            plan.note("aws_internal_error")
            return _error(request, 500, "InternalServerError")
        botocore_stubber(event_name=event_name, request=request)  # moto applies it ...
        plan.note("aws_response_lost")
        return _error(request, 500, "InternalServerError")  # ... and botocore retries it

    clients = backend.clients
    for service in FAULTED_SERVICES:
        clients[service].meta.events.register_first(f"before-send.{_event_name(clients[service])}", before_send)


def _event_name(client: Any) -> str:
    return client.meta.service_model.service_id.hyphenize()
