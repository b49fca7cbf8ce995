"""A declared function: its handler, triggers and options, and its register entry."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pydantic

from stepline.protocol.errors import from_validation_error
from stepline.protocol.urls import set_query_param
from stepline.sdk import config as cfg
from stepline.sdk.errors import SdkError
from stepline.sdk.events import EventData
from stepline.sdk.triggers import EventTrigger, Trigger

DEFAULT_RETRIES = 3
FAILED_EVENT = "inngest/function.failed"
_PLACEHOLDER_URL = "http://localhost/api/inngest"


def _typed(value: Any, kind: type, what: str) -> Any:
    if value is not None and not isinstance(value, kind):
        raise SdkError(f"{what}: expected {kind.__name__}(...), got {value!r}")
    return value


def build_options(
    *,
    concurrency: Any = None,
    throttle: cfg.Throttle | None = None,
    rate_limit: cfg.RateLimit | None = None,
    debounce: cfg.Debounce | None = None,
    batch_events: cfg.Batch | None = None,
    priority: str | cfg.Priority | None = None,
    singleton: cfg.Singleton | None = None,
    idempotency: str | None = None,
    cancel_on: Any = None,
    timeouts: cfg.Timeouts | None = None,
) -> dict[str, Any]:
    """The wire fields of the flow-control options that are set."""
    if isinstance(priority, str):
        priority = cfg.Priority(run=priority)
    parts: dict[str, Any] = {
        "concurrency": cfg.concurrency_list(concurrency),
        "throttle": _typed(throttle, cfg.Throttle, "throttle"),
        "rateLimit": _typed(rate_limit, cfg.RateLimit, "rate_limit"),
        "debounce": _typed(debounce, cfg.Debounce, "debounce"),
        "batchEvents": _typed(batch_events, cfg.Batch, "batch_events"),
        "priority": _typed(priority, cfg.Priority, "priority"),
        "singleton": _typed(singleton, cfg.Singleton, "singleton"),
        "timeouts": _typed(timeouts, cfg.Timeouts, "timeouts"),
        "cancel": cfg.cancel_list(cancel_on),
    }
    out = {k: (v.to_wire() if hasattr(v, "to_wire") else v) for k, v in parts.items() if v is not None}
    if idempotency is not None:
        if not isinstance(idempotency, str) or not idempotency.strip():
            raise SdkError("idempotency: expected a CEL key expression, e.g. 'event.data.order_id'")
        out["idempotency"] = idempotency
    return out


class Function:
    """A function declared with ``@client.function``. Call ``.handler`` to reach the plain code."""

    def __init__(
        self,
        *,
        app_id: str,
        fn_id: str,
        handler: Callable[..., Any],
        triggers: list[Trigger],
        name: str | None = None,
        retries: int | None = None,
        options: dict[str, Any] | None = None,
        on_failure: Callable[..., Any] | None = None,
        checkpointing: bool = True,
    ) -> None:
        if not isinstance(fn_id, str) or not fn_id.strip():
            raise SdkError("function id: must be a non-empty string")
        if not callable(handler):
            raise SdkError(f"function {fn_id!r}: the handler must be callable")
        # The sync models are imported on the first declaration rather than with the SDK: they take
        # a while to build, and a process that only sends events never declares a function.
        from stepline.protocol.register import MAX_RETRIES

        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES
        ):
            raise SdkError(f"function {fn_id!r}: retries must be an integer from 0 to {MAX_RETRIES}")
        self.app_id = app_id
        self.id = fn_id
        self.handler = handler
        self.triggers = triggers
        self.name = name or fn_id
        self.retries = retries
        self.options = options or {}
        # Whether a call may run consecutive steps inline (stepline.sdk.checkpointing).
        self.checkpointing = bool(checkpointing)
        self.is_async = inspect.iscoroutinefunction(handler)
        self.event_models: dict[str, type[EventData]] = {
            t.event: t.model for t in triggers if isinstance(t, EventTrigger) and t.model is not None
        }
        self.failure_function: Function | None = None
        if on_failure is not None:
            self.failure_function = Function(
                app_id=app_id,
                fn_id=f"{fn_id}-failure",
                handler=on_failure,
                triggers=[EventTrigger(event=FAILED_EVENT, if_=f"event.data.function_id == '{self.composite_id}'")],
                name=f"{self.name} (failure)",
                retries=0,
                checkpointing=checkpointing,
            )
        self._validate()

    @property
    def composite_id(self) -> str:
        """``<app id>-<function id>``: how servers name this function (``fnId`` on calls)."""
        return f"{self.app_id}-{self.id}"

    @property
    def max_attempts(self) -> int:
        return (DEFAULT_RETRIES if self.retries is None else self.retries) + 1

    def with_failure_handler(self) -> list[Function]:
        return [self] + ([self.failure_function] if self.failure_function is not None else [])

    def config(self, app_url: str) -> dict[str, Any]:
        """This function's entry in the register body (the Python SDK's shape, docs/protocol.md §4.1)."""
        step: dict[str, Any] = {
            "id": "step",
            "name": "step",
            "runtime": {
                "type": "ws" if app_url.startswith("wss:") else "http",
                "url": set_query_param(set_query_param(app_url, "fnId", self.composite_id), "stepId", "step"),
            },
        }
        if self.retries is not None:
            step["retries"] = {"attempts": self.retries}
        return {
            "id": self.composite_id,
            "name": self.name,
            "triggers": [t.to_wire() for t in self.triggers],
            "steps": {"step": step},
            **self.options,
        }

    def _validate(self) -> None:
        # The server's own parser: expressions compile, crons parse, durations and limits are
        # sane. A mistake fails here, at import, in front of whoever wrote it.
        from stepline.protocol.register import FunctionConfig  # see __init__

        try:
            FunctionConfig.model_validate(self.config(_PLACEHOLDER_URL))
        except pydantic.ValidationError as err:
            problem = from_validation_error(err)
            raise SdkError(f"function {self.id!r}: {problem.message}") from None

    def __repr__(self) -> str:
        return f"Function({self.composite_id!r})"
