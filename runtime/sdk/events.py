"""Events as functions see them, and typed event payloads.

``EventData`` subclasses bind a pydantic model to an event name::

    class UserSignedUp(EventData, name="user/signed.up"):
        user_id: str

An instance is validated when it is built (so before it is sent), and a function triggered by
``UserSignedUp`` receives ``ctx.event.data`` as a validated ``UserSignedUp``. A plain dict sent
under a bound name is validated against the model too, so a typo fails in the sender, not in a
run three services away.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar, Generic, TypeGuard, TypeVar

import pydantic
from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from stepline.sdk.errors import NonRetriableError, SdkError

RESERVED_PREFIX = "inngest/"

DataT = TypeVar("DataT")

# Event name -> the model bound to it, for validating dicts sent under that name.
_BOUND: dict[str, type[EventData]] = {}


class EventData(BaseModel):
    """Base class of typed event payloads: ``class X(EventData, name="app/thing.happened")``."""

    __event_name__: ClassVar[str | None] = None

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is not None:
            if not isinstance(name, str) or not name.strip():
                raise SdkError(f"{cls.__name__}: the event name must be a non-empty string")
            cls.__event_name__ = name
            _BOUND[name] = cls

    def to_event(self, *, id: str | None = None, ts: int | None = None) -> Event[Any]:
        """This payload as an event, with an optional idempotency ``id`` and timestamp."""
        return Event(name=event_name_of(type(self)), data=self, id=id, ts=ts)


def event_name_of(model: type[EventData]) -> str:
    name = getattr(model, "__event_name__", None)
    if not name:
        raise SdkError(
            f"{model.__name__} is not bound to an event name: declare it as "
            f"class {model.__name__}(EventData, name='app/event.name')"
        )
    return name


def is_event_model(value: Any) -> TypeGuard[type[EventData]]:
    return isinstance(value, type) and issubclass(value, EventData)


@dataclasses.dataclass
class Event(Generic[DataT]):
    """One event. ``data`` is a validated model when the event's name is bound to one the
    function knows (its typed triggers, a typed ``wait_for_event``), else a dict."""

    name: str
    data: DataT = dataclasses.field(default_factory=dict)  # type: ignore[assignment]
    id: str | None = None
    ts: int | None = None
    user: dict[str, Any] | None = None
    v: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return to_wire_event(self)


def _data_dict(name: str, data: Any) -> dict[str, Any]:
    if isinstance(data, EventData):
        return data.model_dump(mode="json")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SdkError(f"event {name!r}: data must be a dict or an EventData model, got {type(data).__name__}")
    bound = _BOUND.get(name)
    if bound is not None:
        try:
            bound.model_validate(data)
        except pydantic.ValidationError as err:
            raise SdkError(f"event {name!r}: data does not match {bound.__name__}: {_first_error(err)}") from None
    try:
        return to_jsonable_python(data)
    except PydanticSerializationError as err:
        raise SdkError(f"event {name!r}: data is not JSON-serializable: {err}") from None


def to_wire_event(event: Any, *, allow_reserved: bool = False) -> dict[str, Any]:
    """An ``Event``, an ``EventData`` instance or a dict, checked and shaped for the Event API.

    ``ts`` is filled in here (ms), as the official SDKs do, so a retried send carries the same
    body.
    """
    if isinstance(event, EventData):
        event = event.to_event()
    if isinstance(event, Event):
        raw: dict[str, Any] = {
            "name": event.name,
            "data": event.data,
            "id": event.id,
            "ts": event.ts,
            "user": event.user,
            "v": event.v,
        }
    elif isinstance(event, dict):
        raw = dict(event)
    else:
        raise SdkError(f"cannot send {type(event).__name__}: expected an Event, an EventData model or a dict")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SdkError("event name must be a non-empty string")
    if name.startswith(RESERVED_PREFIX) and not allow_reserved:
        raise SdkError(f"event {name!r}: names starting with {RESERVED_PREFIX!r} are reserved")
    out: dict[str, Any] = {"name": name, "data": _data_dict(name, raw.get("data"))}
    if raw.get("id") is not None:
        if not isinstance(raw["id"], str) or not raw["id"]:
            raise SdkError(f"event {name!r}: id must be a non-empty string")
        out["id"] = raw["id"]
    ts = raw.get("ts")
    if ts is None:
        ts = time.time_ns() // 1_000_000
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise SdkError(f"event {name!r}: ts must be an integer (ms since the epoch)")
    out["ts"] = ts
    if raw.get("user"):
        out["user"] = raw["user"]
    if raw.get("v") is not None:
        out["v"] = raw["v"]
    return out


def from_wire_event(raw: Any, models: dict[str, type[EventData]] | None = None) -> Event[Any]:
    """An event from a call request, its data validated when ``models`` binds its name.

    Data that does not match its model can never succeed on a retry, so it is non-retriable.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise NonRetriableError("received an event without a name")
    name = raw["name"]
    data: Any = raw.get("data")
    if data is None:
        data = {}
    model = (models or {}).get(name)
    if model is not None:
        try:
            data = model.model_validate(data)
        except pydantic.ValidationError as err:
            raise NonRetriableError(f"event {name!r} does not match {model.__name__}: {_first_error(err)}") from None
    ts = raw.get("ts")
    return Event(
        name=name,
        data=data,
        id=raw.get("id") if isinstance(raw.get("id"), str) else None,
        ts=ts if isinstance(ts, int) and not isinstance(ts, bool) else None,
        user=raw.get("user") if isinstance(raw.get("user"), dict) else None,
        v=raw.get("v") if isinstance(raw.get("v"), str) else None,
    )


def _first_error(err: pydantic.ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first.get("loc", ())) or "data"
    return f"{loc}: {first.get('msg', 'invalid')}"
