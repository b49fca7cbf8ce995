"""Calls an app in the same account with ``lambda:Invoke``: no public endpoint at all.

The request the HTTP path would POST (Inngest signature included) goes as a function-URL event
(``stepline.aws.lambda_events``); the answer comes back as the HTTP reply a function URL would
give. What Lambda itself refuses becomes the status a function URL answers for the same cause,
with the cause named in the body (``name``/``message``, which become the run's error), so the
executor applies the same retry rules it applies to HTTP failures (docs/deploy.md):

====================================  ======  =============================================
Lambda says                           status  in the run's error
====================================  ======  =============================================
TooManyRequestsException (throttled)  429     LambdaThrottled
FunctionError (crash, timeout, OOM)   502     LambdaFunctionError: <errorType>: <message>
RequestTooLargeException (> 6 MB)     413     LambdaPayloadTooLarge
AccessDeniedException                 403     LambdaInvokeDenied
ResourceNotFoundException             404     LambdaFunctionNotFound
any other Lambda error                its own LambdaError: <code>: <message>
====================================  ======  =============================================

No answer at all (connection reset, read timeout) raises ``CallFailed``, as over HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from stepline.aws.errors import describe, error_code
from stepline.aws.lambda_events import LambdaReply, reply_from_payload, request_event
from stepline.engine.app_targets import H_EXECUTED_VERSION, H_PIN_GONE, invoked_arn, without_pin
from stepline.engine.http import CallFailed, HttpResponse, whole_body_lines
from stepline.protocol.checkpoint import H_CHECKPOINT, STREAM

log = logging.getLogger(__name__)

# Lambda's limit on a synchronous invoke's request (and response) payload.
MAX_INVOKE_PAYLOAD_BYTES = 6 * 1024 * 1024

# Lambda error codes by the status and error name a function URL gives the same cause.
_BY_CODE: dict[str, tuple[int, str]] = {
    "TooManyRequestsException": (429, "LambdaThrottled"),
    "RequestTooLargeException": (413, "LambdaPayloadTooLarge"),
    "AccessDeniedException": (403, "LambdaInvokeDenied"),
    "AccessDenied": (403, "LambdaInvokeDenied"),
    "ResourceNotFoundException": (404, "LambdaFunctionNotFound"),
}


def lambda_client(session: Any, region: str | None, timeout_s: float) -> Any:
    """A Lambda client for app calls: one attempt (the executor owns retries) and a read timeout
    just past the call's, so the executor's own deadline decides."""
    config = Config(
        read_timeout=int(timeout_s) + 5,
        connect_timeout=10,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return session.client("lambda", region_name=region, config=config)


class LambdaInvokeCaller:
    """``HttpCaller`` for invoke URLs (``stepline.engine.app_targets``). ``client_for_region``
    gives the Lambda client for a region (the function's own)."""

    def __init__(self, client_for_region: Callable[[str], Any]) -> None:
        self._client_for_region = client_for_region

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        return self.send("POST", url, body, headers, timeout_s)

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        arn, pin = invoked_arn(url)
        payload = json.dumps(request_event(method, without_pin(url), body, headers)).encode()
        if len(payload) > MAX_INVOKE_PAYLOAD_BYTES:
            # Refused here rather than by Lambda: the same answer, without a round trip.
            return _failure(
                413, "LambdaPayloadTooLarge", f"the request is {len(payload)} bytes; Lambda takes at most 6 MB"
            )
        client = self._client_for_region(arn.region)
        try:
            answer = client.invoke(FunctionName=str(arn), InvocationType="RequestResponse", Payload=payload)
        except ClientError as exc:
            if pin is not None and error_code(exc) == "ResourceNotFoundException":
                # The version this run is pinned to is gone: run on the registered target, and
                # say so (stepline.engine.pinning records the version that ran instead).
                log.warning("%s is gone; calling %s instead", arn, without_pin(url))
                response = self.send(method, without_pin(url), body, headers, timeout_s)
                response.headers[H_PIN_GONE] = pin
                return response
            return _client_error(exc, str(arn))
        except BotoCoreError as exc:
            raise CallFailed(f"invoking {arn}: {describe(exc)}") from exc
        return _response(answer, str(arn))


def _failure(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    body = json.dumps({"name": name, "message": message, "stack": ""}).encode()
    return HttpResponse(status, body, {"content-type": "application/json", **(headers or {})})


def _client_error(exc: ClientError, arn: str) -> HttpResponse:
    code = error_code(exc)
    status, name = _BY_CODE.get(code, (0, "LambdaError"))
    if status == 0:
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 502)
    return _failure(status, name, f"invoking {arn}: {describe(exc)}")


def _response(answer: dict[str, Any], arn: str) -> HttpResponse:
    raw = answer["Payload"].read()
    version = str(answer.get("ExecutedVersion") or "")
    extra = {H_EXECUTED_VERSION: version} if version else {}
    if answer.get("FunctionError"):
        # The function crashed, timed out, ran out of memory or answered over 6 MB.
        try:
            detail = json.loads(raw)
        except ValueError:
            detail = {}
        kind = str(detail.get("errorType") or answer["FunctionError"]) if isinstance(detail, dict) else "Error"
        said = str(detail.get("errorMessage") or "") if isinstance(detail, dict) else ""
        return _failure(502, "LambdaFunctionError", f"{arn} failed: {kind}: {said}".rstrip(": "), extra)
    reply: LambdaReply = reply_from_payload(raw)
    headers = {**reply.headers, **extra}
    if reply.status == 200 and headers.get(H_CHECKPOINT) == STREAM:
        # A buffered answer that is a checkpoint stream: its lines, all arrived already.
        return HttpResponse(reply.status, b"", headers, whole_body_lines(reply.body))
    return HttpResponse(reply.status, reply.body, headers)
