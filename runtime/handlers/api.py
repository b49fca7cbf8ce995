"""API Lambda: the Event API, /fn/register, and the REST API, behind API Gateway (HTTP API, v2).

A synchronous Lambda answers at most 6 MB: an answer that would be larger is replaced by a 500
that says so (in the ``{"error", "status"}`` shape the SDKs parse), rather than failing the
invocation into API Gateway's bare 502. Run states are capped so that ``/v0/runs/{id}/actions``
fits (``stepline.engine.payload_policy``); this is the backstop."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

from stepline.api.app import build_api
from stepline.engine.core import Engine
from stepline.engine.payload_policy import LAMBDA_RESPONSE_MAX_BYTES
from stepline.handlers.tracing import traced
from stepline.handlers.wiring import engine_from_env
from stepline.telemetry.logs import install_json

SERVICE = "stepline-api"
logger = Logger(service=SERVICE)
install_json(logger)  # the runtime's lines as this logger's JSON, with run id, function id, trace id


def make_handler(engine: Engine):
    resolver = build_api(engine)

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            response = resolver.resolve(event, context)
        finally:
            engine.telemetry.flush()  # runs started (and checkpointed steps) by this request
        size = len(json.dumps(response).encode())
        if size <= LAMBDA_RESPONSE_MAX_BYTES:
            return response
        message = (
            f"the answer would be {size} bytes, over the {LAMBDA_RESPONSE_MAX_BYTES} bytes a Lambda may answer"
            " (a run's state past the deployed limit: RunStateTooLarge)"
        )
        logger.error(message)
        return {
            "statusCode": 500,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"error": message, "status": 500}),
            "isBase64Encoded": False,
        }

    return handle


_handler = None


@logger.inject_lambda_context(clear_state=True)
@traced(SERVICE)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = make_handler(engine_from_env())
    return _handler(event, context)
