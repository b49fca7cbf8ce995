"""API Lambda: the Event API, /fn/register, and the REST API, behind API Gateway (HTTP API, v2)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from stepline.api.app import build_api
from stepline.engine.core import Engine
from stepline.handlers.tracing import traced
from stepline.handlers.wiring import engine_from_env

SERVICE = "stepline-api"
logger = Logger(service=SERVICE)


def make_handler(engine: Engine):
    resolver = build_api(engine)

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return resolver.resolve(event, context)

    return handle


_handler = None


@logger.inject_lambda_context(clear_state=True)
@traced(SERVICE)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        _handler = make_handler(engine_from_env())
    return _handler(event, context)
