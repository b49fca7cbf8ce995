"""What a function receives: its event(s), run identity and the step tools."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Generic, TypeVar

from stepline.sdk.events import Event, from_wire_event
from stepline.sdk.steps import AsyncSteps, Steps

T = TypeVar("T")

FAILED_EVENT = "inngest/function.failed"


@dataclasses.dataclass
class Failure:
    """What an ``on_failure`` handler is told about the run that failed."""

    function_id: str
    run_id: str
    error: dict[str, Any]
    event: Event[Any]

    @property
    def message(self) -> str:
        return str(self.error.get("message", ""))

    @property
    def name(self) -> str:
        return str(self.error.get("name", "Error"))


@dataclasses.dataclass
class _ContextBase(Generic[T]):
    event: Event[T]
    events: list[Event[T]]
    run_id: str
    attempt: int
    function_id: str
    logger: logging.Logger

    @property
    def failure(self) -> Failure | None:
        """Set in ``on_failure`` handlers (their event is ``inngest/function.failed``)."""
        if self.event.name != FAILED_EVENT or not isinstance(self.event.data, dict):
            return None
        data = self.event.data
        original = data.get("event")
        return Failure(
            function_id=str(data.get("function_id", "")),
            run_id=str(data.get("run_id", "")),
            error=error if isinstance(error := data.get("error"), dict) else {},
            event=from_wire_event(original)
            if isinstance(original, dict) and "name" in original
            else Event(name="", data={}),
        )


@dataclasses.dataclass
class Context(_ContextBase[T]):
    """The context of a ``def`` function: ``ctx.step.run(...)`` and friends return directly."""

    step: Steps = None  # type: ignore[assignment]


@dataclasses.dataclass
class AsyncContext(_ContextBase[T]):
    """The context of an ``async def`` function: ``await ctx.step.run(...)``."""

    step: AsyncSteps = None  # type: ignore[assignment]
