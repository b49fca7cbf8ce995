"""Stepline's Python SDK: durable functions over the Inngest SDK wire protocol.

Everything public is exported here (and from ``runtime``); the modules behind it are internal.
"""

from runtime.sdk.client import Client
from runtime.sdk.config import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
)
from runtime.sdk.context import AsyncContext, Context, Failure
from runtime.sdk.errors import (
    NonRetriableError,
    RetryAfterError,
    SdkError,
    SendEventsError,
    StepError,
)
from runtime.sdk.events import Event, EventData
from runtime.sdk.function import Function
from runtime.sdk.serve import (
    lambda_handler,
    serve_asgi,
    serve_fastapi,
    serve_flask,
    serve_starlette,
    serve_wsgi,
)
from runtime.sdk.steps import AsyncSteps, Steps
from runtime.sdk.triggers import CronTrigger, EventTrigger, cron, on

__all__ = [
    "AsyncContext",
    "AsyncSteps",
    "Batch",
    "Cancel",
    "Client",
    "Concurrency",
    "Context",
    "CronTrigger",
    "Debounce",
    "Event",
    "EventData",
    "EventTrigger",
    "Failure",
    "Function",
    "NonRetriableError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "SdkError",
    "SendEventsError",
    "Singleton",
    "StepError",
    "Steps",
    "Throttle",
    "Timeouts",
    "cron",
    "lambda_handler",
    "on",
    "serve_asgi",
    "serve_fastapi",
    "serve_flask",
    "serve_starlette",
    "serve_wsgi",
]
