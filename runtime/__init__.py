"""Stepline: durable execution in your own AWS account.

The names below are the Python SDK (``stepline.sdk``); ``stepline.testing`` runs one function
in-process for unit tests. The rest of the package is the runtime itself.

The SDK is imported on the first use of one of its names (``from stepline import Client``), not
by ``import stepline`` itself: the runtime's own modules (the Lambda handlers, ``stepline dev``,
the CLI) live in this package too, and importing any of them runs this file first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepline.sdk import (
        AsyncContext,
        AsyncSteps,
        Batch,
        Cancel,
        Client,
        Concurrency,
        Context,
        CronTrigger,
        Debounce,
        Event,
        EventData,
        EventTrigger,
        Failure,
        Function,
        NonRetriableError,
        Priority,
        RateLimit,
        RetryAfterError,
        SdkError,
        SendEventsError,
        Signal,
        Singleton,
        StepError,
        Steps,
        Throttle,
        Timeouts,
        cron,
        lambda_handler,
        on,
        serve_asgi,
        serve_fastapi,
        serve_flask,
        serve_starlette,
        serve_wsgi,
    )

# The SDK's public surface is the package's (tests/test_package_layout.py keeps the two lists equal).
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


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import stepline.sdk

    value = getattr(stepline.sdk, name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
