"""What starts a function: events (by name, optionally filtered by a CEL ``if``) and crons."""

from __future__ import annotations

import dataclasses
from typing import Any

from stepline.sdk.errors import SdkError
from stepline.sdk.events import EventData, event_name_of, is_event_model


@dataclasses.dataclass(frozen=True)
class EventTrigger:
    event: str
    if_: str | None = None
    model: type[EventData] | None = None  # validates ``ctx.event.data`` when set

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event}
        if self.if_:
            out["expression"] = self.if_
        return out


@dataclasses.dataclass(frozen=True)
class CronTrigger:
    cron: str  # five or six fields, optionally prefixed with "TZ=Europe/Paris "

    def to_wire(self) -> dict[str, Any]:
        return {"cron": self.cron}


Trigger = EventTrigger | CronTrigger


def on(event: str | type[EventData], if_: str | None = None) -> EventTrigger:
    """Trigger on ``event`` (a name or an ``EventData`` model), when the CEL ``if_`` holds,
    e.g. ``on(OrderPlaced, if_="event.data.amount_cents > 10000")``."""
    if is_event_model(event):
        return EventTrigger(event=event_name_of(event), if_=if_, model=event)
    if not isinstance(event, str) or not event.strip():
        raise SdkError("trigger: the event must be a non-empty name or an EventData model")
    return EventTrigger(event=event, if_=if_)


def cron(expression: str) -> CronTrigger:
    """Trigger on a schedule, e.g. ``cron("0 9 * * *")`` or ``cron("TZ=Europe/Paris 0 9 * * 1")``."""
    if not isinstance(expression, str) or not expression.strip():
        raise SdkError("cron: expected a cron expression")
    return CronTrigger(cron=expression.strip())


def normalize_triggers(trigger: Any) -> list[Trigger]:
    """One trigger or a list: names, ``EventData`` models, ``on(...)`` and ``cron(...)``.

    None (or an empty list) declares a function that only runs when invoked.
    """
    if trigger is None:
        return []
    items = list(trigger) if isinstance(trigger, (list, tuple)) else [trigger]
    out: list[Trigger] = []
    for item in items:
        if isinstance(item, (EventTrigger, CronTrigger)):
            out.append(item)
        elif isinstance(item, str) or is_event_model(item):
            out.append(on(item))
        else:
            raise SdkError(f"trigger: expected an event name, an EventData model, on(...) or cron(...), got {item!r}")
    return out
