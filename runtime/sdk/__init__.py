"""Stepline's Python SDK: durable functions over the Inngest SDK wire protocol.

Everything public is exported here (and from ``stepline``); the modules behind it are internal.
"""

from stepline.sdk.client import Client
from stepline.sdk.config import (
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
from stepline.sdk.context import AsyncContext, Context, Failure
from stepline.sdk.errors import (
    NonRetriableError,
    RetryAfterError,
    SdkError,
    SendEventsError,
    StepError,
)
from stepline.sdk.events import Event, EventData
from stepline.sdk.function import Function
from stepline.sdk.serve import (
    lambda_handler,
    serve_asgi,
    serve_fastapi,
    serve_flask,
    serve_starlette,
    serve_wsgi,
)
from stepline.sdk.steps import AsyncSteps, Signal, Steps
from stepline.sdk.triggers import CronTrigger, EventTrigger, cron, on

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
    "Signal",
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
