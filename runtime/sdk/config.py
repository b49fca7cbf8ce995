"""Function options as the server reads them: flow control, cancellation and timeouts.

Each class knows its wire form (docs/protocol.md §4.1 "Function config schema"). Durations accept a
string (``"10s"``, ``"1h30m"``) or a timedelta and are written in the Python SDK's single-unit
form. Keys, conditions and priorities are CEL expressions over ``event`` (and ``async`` for the
cancelling event); they are compiled when the function is declared, so a typo fails at import.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any, Literal

from stepline.protocol.durations import format_duration, parse_duration_ms
from stepline.protocol.errors import ProtocolError
from stepline.sdk.errors import SdkError
from stepline.sdk.events import EventData, event_name_of, is_event_model

DurationLike = str | datetime.timedelta


def duration_ms(value: DurationLike, what: str) -> int:
    if isinstance(value, datetime.timedelta):
        ms = int(value / datetime.timedelta(milliseconds=1))
    elif isinstance(value, str):
        try:
            ms = parse_duration_ms(value)
        except ProtocolError as err:
            raise SdkError(f"{what}: {err.message}") from None
    else:
        raise SdkError(f"{what}: expected a duration string like '30s' or a timedelta, got {value!r}")
    if ms < 0:
        raise SdkError(f"{what}: must not be negative")
    return ms


def duration_str(value: DurationLike, what: str) -> str:
    return format_duration(duration_ms(value, what))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Concurrency:
    """At most ``limit`` steps running at once, per ``key`` value when given."""

    limit: int
    key: str | None = None
    scope: Literal["fn", "env", "account"] | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"limit": self.limit, "key": self.key, "scope": self.scope})


@dataclasses.dataclass(frozen=True)
class Throttle:
    """At most ``limit`` run starts per ``period``; extra starts wait their turn."""

    limit: int
    period: DurationLike
    key: str | None = None
    burst: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "limit": self.limit,
                "period": duration_str(self.period, "throttle.period"),
                "key": self.key,
                "burst": self.burst,
            }
        )


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` runs per ``period``; extra events start nothing."""

    limit: int
    period: DurationLike
    key: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {"limit": self.limit, "period": duration_str(self.period, "rate_limit.period"), "key": self.key}
        )


@dataclasses.dataclass(frozen=True)
class Debounce:
    """Run once ``period`` after the last event (per key), at the latest after ``timeout``."""

    period: DurationLike
    key: str | None = None
    timeout: DurationLike | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "period": duration_str(self.period, "debounce.period"),
                "key": self.key,
                "timeout": duration_str(self.timeout, "debounce.timeout") if self.timeout is not None else None,
            }
        )


@dataclasses.dataclass(frozen=True)
class Batch:
    """Start one run per ``max_size`` events, or after ``timeout`` with fewer (``ctx.events``)."""

    max_size: int
    timeout: DurationLike
    key: str | None = None
    if_: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "maxSize": self.max_size,
                "timeout": duration_str(self.timeout, "batch_events.timeout"),
                "key": self.key,
                "if": self.if_,
            }
        )


@dataclasses.dataclass(frozen=True)
class Priority:
    """``run``: CEL giving seconds (-600..600) by which this run jumps the queue."""

    run: str

    def to_wire(self) -> dict[str, Any]:
        return {"run": self.run}


@dataclasses.dataclass(frozen=True)
class Singleton:
    """One run at a time per key: a new one is skipped, or cancels the running one."""

    mode: Literal["skip", "cancel"]
    key: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none({"mode": self.mode, "key": self.key})


@dataclasses.dataclass(frozen=True)
class Cancel:
    """Cancel a run when ``event`` arrives and ``if_`` holds (``event`` is the run's trigger,
    ``async`` the cancelling event), within ``timeout`` of the run's start."""

    event: str | type[EventData]
    if_: str | None = None
    timeout: DurationLike | None = None

    def to_wire(self) -> dict[str, Any]:
        name = event_name_of(self.event) if is_event_model(self.event) else self.event
        return _drop_none(
            {
                "event": name,
                "if": self.if_,
                "timeout": duration_str(self.timeout, "cancel_on.timeout") if self.timeout is not None else None,
            }
        )


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """``start``: longest wait in the queue before the run starts; ``finish``: longest run."""

    start: DurationLike | None = None
    finish: DurationLike | None = None

    def to_wire(self) -> dict[str, Any]:
        return _drop_none(
            {
                "start": duration_str(self.start, "timeouts.start") if self.start is not None else None,
                "finish": duration_str(self.finish, "timeouts.finish") if self.finish is not None else None,
            }
        )


def concurrency_list(value: int | Concurrency | list[int | Concurrency] | None) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            item = Concurrency(limit=item)
        if not isinstance(item, Concurrency):
            raise SdkError(f"concurrency: expected an int or Concurrency(...), got {item!r}")
        out.append(item.to_wire())
    if len(out) > 2:
        raise SdkError("concurrency: at most two limits per function")
    return out


def cancel_list(value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for item in items:
        if isinstance(item, str) or is_event_model(item):
            item = Cancel(event=item)
        if not isinstance(item, Cancel):
            raise SdkError(f"cancel_on: expected an event name, an EventData model or Cancel(...), got {item!r}")
        out.append(item.to_wire())
    return out
