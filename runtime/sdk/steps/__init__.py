"""Step tools: ``ctx.step`` in sync functions (``Steps``) and async ones (``AsyncSteps``).

Each durable operation lives in its own module; these classes are the user-facing surface.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from stepline.sdk.events import Event, EventData
from stepline.sdk.steps import invoke as _invoke
from stepline.sdk.steps import parallel as _parallel
from stepline.sdk.steps import run as _run
from stepline.sdk.steps import send as _send
from stepline.sdk.steps import signal as _signal
from stepline.sdk.steps import sleep as _sleep
from stepline.sdk.steps import wait as _wait
from stepline.sdk.steps.core import Execution
from stepline.sdk.steps.signal import OnConflict, Signal

T = TypeVar("T")

Duration = str | datetime.timedelta


class Steps:
    """Durable step tools for ``def`` functions."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, output_type: Any = None, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` once, retried on failure; replays return its memoized result
        (as JSON data, or validated as ``output_type``)."""
        return _run.run_sync(self._ex, step_id, fn, args, kwargs, output_type)

    def sleep(self, step_id: str, duration: Duration) -> None:
        """Pause the run for ``duration`` (``"24h"``, ``"30m"``, a timedelta)."""
        return _sleep.sleep(self._ex, step_id, duration)

    def sleep_until(self, step_id: str, until: datetime.datetime | str) -> None:
        """Pause the run until ``until`` (an aware datetime or an ISO 8601 string)."""
        return _sleep.sleep_until(self._ex, step_id, until)

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | type[EventData],
        timeout: Duration,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[Any] | None:
        """The first matching event to arrive, or None after ``timeout``; with ``lookback``
        (``"5m"``, at most 24 h), also one that arrived that long before the wait began."""
        return _wait.wait_for_event(self._ex, step_id, event, timeout, if_, lookback)

    def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: Duration, on_conflict: OnConflict = "fail"
    ) -> Signal | None:
        """The signal sent to ``signal`` (``client.send_signal``, ``POST /v1/signals``), or None
        after ``timeout``."""
        return _signal.wait_for_signal(self._ex, step_id, signal, timeout, on_conflict)

    def send_event(self, step_id: str, events: Any) -> list[str]:
        """Send one event or a list, once per run; returns the event ids."""
        return _send.send_event_sync(self._ex, step_id, events)

    def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: dict[str, Any] | EventData | None = None,
        timeout: Duration | None = None,
        app_id: str | None = None,
        output_type: Any = None,
    ) -> Any:
        """Run ``function`` (a Function or an id) with ``data`` as its event data; returns its result."""
        return _invoke.invoke(self._ex, step_id, function, data, timeout, app_id, output_type)

    def parallel(self, *callables: Callable[[], Any]) -> tuple[Any, ...]:
        """Run the callables' steps concurrently; returns their results in order."""
        return _parallel.parallel_sync(self._ex, callables)


class AsyncSteps:
    """Durable step tools for ``async def`` functions: the same tools, awaited."""

    def __init__(self, execution: Execution) -> None:
        self._ex = execution

    async def run(
        self, step_id: str, fn: Callable[..., T | Awaitable[T]], *args: Any, output_type: Any = None, **kwargs: Any
    ) -> T:
        return await _run.run_async(self._ex, step_id, fn, args, kwargs, output_type)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        return _sleep.sleep(self._ex, step_id, duration)

    async def sleep_until(self, step_id: str, until: datetime.datetime | str) -> None:
        return _sleep.sleep_until(self._ex, step_id, until)

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | type[EventData],
        timeout: Duration,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[Any] | None:
        return _wait.wait_for_event(self._ex, step_id, event, timeout, if_, lookback)

    async def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: Duration, on_conflict: OnConflict = "fail"
    ) -> Signal | None:
        return _signal.wait_for_signal(self._ex, step_id, signal, timeout, on_conflict)

    async def send_event(self, step_id: str, events: Any) -> list[str]:
        return await _send.send_event_async(self._ex, step_id, events)

    async def invoke(
        self,
        step_id: str,
        *,
        function: Any,
        data: dict[str, Any] | EventData | None = None,
        timeout: Duration | None = None,
        app_id: str | None = None,
        output_type: Any = None,
    ) -> Any:
        return _invoke.invoke(self._ex, step_id, function, data, timeout, app_id, output_type)

    async def parallel(self, *callables: Callable[[], Awaitable[Any]]) -> tuple[Any, ...]:
        return await _parallel.parallel_async(self._ex, callables)


__all__ = ["AsyncSteps", "Execution", "Signal", "Steps"]
