"""Event API bodies (docs/protocol.md §11): ``POST /e/<event_key>``.

Both SDKs send a JSON array; the Go server also takes a single object, and so do we. Every
problem is reported with the index of the event and the field, so a client sending a batch of
hundreds learns which one was wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator

from stepline.protocol.errors import ProtocolError, from_validation_error
from stepline.protocol.jsoncanon import loads

DEFAULT_MAX_EVENTS = 5000
DEFAULT_MAX_BYTES = 3 * 1024 * 1024
# Inngest's largest event, measured as compact JSON.
DEFAULT_MAX_EVENT_BYTES = 3 * 1024 * 1024
RESERVED_PREFIX = "inngest/"
# Names and ids become parts of store keys (DynamoDB takes at most 2,048 bytes in a partition
# key, 1,024 in a sort key): bounded here, they fit whatever prefix a key puts before them.
# Register holds app ids, function ids and trigger names to the same limit.
MAX_NAME_BYTES = 512
MAX_ID_BYTES = 512
# The official Python SDK refuses a call request nested deeper than about 200 levels (its JSON
# parser's limit), and the request wraps an event's data in a few levels of its own: deeper data
# would be accepted here only to fail every run it starts.
MAX_DEPTH = 100
# 9999-12-31T23:59:59.999Z: later times cannot be shown as dates (Python's datetime and
# DynamoDB's 38-digit numbers both stop well before a number JSON can still carry).
MAX_TS_MS = 253_402_300_799_999


class EventPayload(BaseModel):
    """One event as a client sent it. ``id`` and ``ts`` stay None until the server fills them."""

    model_config = ConfigDict(extra="ignore")

    name: str
    data: dict[str, Any] = {}
    id: str | None = None
    ts: int | None = None
    user: dict[str, Any] = {}
    v: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _name_is_string(cls, v: Any) -> Any:
        if not isinstance(v, str) or not v.strip():
            raise ValueError("must be a non-empty string")
        return at_most_bytes(v, MAX_NAME_BYTES)

    @field_validator("data", "user", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any) -> Any:
        # SDKs and users send "data": null for "no data"; users of the event expect an object.
        if v is None:
            return {}
        if not isinstance(v, dict):
            raise ValueError("must be an object")
        return v

    @field_validator("id", "v", mode="before")
    @classmethod
    def _optional_string(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, str):
            raise ValueError("must be a string")
        return v if v is None else at_most_bytes(v, MAX_ID_BYTES)

    @field_validator("ts", mode="before")
    @classmethod
    def _ms_integer(cls, v: Any) -> Any:
        # Timestamps are integer ms: the Python SDK's strict model refuses a float ``ts`` when
        # we hand the event back in a call request, so refuse it at the door instead.
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError("must be an integer (ms since the epoch)")
        if isinstance(v, float):
            if not v.is_integer():
                raise ValueError("must be an integer (ms since the epoch)")
            v = int(v)
        if v < 0:
            raise ValueError("must not be negative")
        if v > MAX_TS_MS:
            raise ValueError(f"must be at most {MAX_TS_MS} (ms since the epoch, before the year 10000)")
        return v

    def to_dict(self) -> dict[str, Any]:
        """The event as stored and sent to functions: absent optional fields left out, nested
        nulls inside ``data`` kept as the user wrote them."""
        out: dict[str, Any] = {"name": self.name, "data": dict(self.data), "user": dict(self.user)}
        if self.id is not None:
            out["id"] = self.id
        if self.ts is not None:
            out["ts"] = self.ts
        if self.v is not None:
            out["v"] = self.v
        return out


def at_most_bytes(value: str, limit: int) -> str:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ValueError(f"{size} bytes exceeds the limit of {limit}")
    return value


@dataclass(frozen=True)
class EventBatch:
    """An Event API body read in order, as Inngest reads it: the events before the first one
    that cannot be accepted, and why that one cannot (None when all can). The events from the
    refused one on are not read at all (docs/protocol.md §11)."""

    accepted: list[EventPayload]
    refusal: ProtocolError | None = None


def parse_event_batch(
    body: bytes,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> list[EventPayload]:
    """Validate an Event API body, all or nothing. Raises ProtocolError (400, or 413 for size
    limits: the whole body, the number of events, or one event, named by its index)."""
    batch = read_event_batch(body, max_events=max_events, max_bytes=max_bytes, max_event_bytes=max_event_bytes)
    if batch.refusal is not None:
        raise batch.refusal
    return batch.accepted


def read_event_batch(
    body: bytes,
    *,
    max_events: int = DEFAULT_MAX_EVENTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> EventBatch:
    """Read an Event API body event by event, stopping at the first event that cannot be
    accepted. Raises ProtocolError for a body that is wrong as a whole (too large, not JSON, not
    events, too many of them): then nothing is accepted."""
    if len(body) > max_bytes:
        raise ProtocolError(f"body: {len(body)} bytes exceeds the limit of {max_bytes}", 413)
    if not body.strip():
        raise ProtocolError("body: no events sent")
    raw = loads(body)
    if isinstance(raw, dict):
        raw = [raw]
    elif not isinstance(raw, list):
        raise ProtocolError("body: must be an event object or an array of events")
    if not raw:
        raise ProtocolError("body: no events sent")
    if len(raw) > max_events:
        raise ProtocolError(f"body: {len(raw)} events exceeds the limit of {max_events}", 413)
    # Both checks are cheap on the whole body; only when it could fail one is each event measured.
    sizes = len(body) > max_event_bytes
    depths = _nesting(body) > MAX_DEPTH
    accepted: list[EventPayload] = []
    for index, item in enumerate(raw):
        try:
            if sizes:
                _check_size(item, index, max_event_bytes)
            if depths:
                _check_depth(item, index)
            accepted.append(_parse_one(item, index))
        except ProtocolError as refusal:
            return EventBatch(accepted, refusal)
    return EventBatch(accepted)


def _check_size(item: Any, index: int, max_event_bytes: int) -> None:
    size = _json_bytes(item)
    if size > max_event_bytes:
        raise ProtocolError(f"events[{index}]: {size} bytes exceeds the per-event limit of {max_event_bytes}", 413)


def _check_depth(item: Any, index: int) -> None:
    for field in ("data", "user"):
        if isinstance(item, dict) and _depth(item.get(field)) > MAX_DEPTH:
            raise ProtocolError(f"events[{index}].{field}: nested more than {MAX_DEPTH} levels deep")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_TO_PARENS = bytes.maketrans(b"[{]}", b"(())")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nesting(body: bytes) -> int:
    """How deep ``body`` nests arrays and objects, less the batch and event levels: an upper
    bound on the depth of any event's data, or MAX_DEPTH + 1 for anything deeper. Each pass
    deletes the innermost pairs, so the number of passes is the depth (all done in C)."""
    if body.count(b"{") + body.count(b"[") <= MAX_DEPTH:
        return 0
    brackets = _STRING.sub(b"", body).translate(_TO_PARENS, _NOT_BRACKETS)
    wrapping = 2 if brackets[:1] == b"(" else 1
    for passes in range(MAX_DEPTH + wrapping + 1):
        if not brackets:
            return passes - wrapping
        brackets = brackets.replace(b"()", b"")
    return MAX_DEPTH + 1


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in item)
    return deepest


def _json_bytes(value: Any) -> int:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


def _parse_one(item: Any, index: int) -> EventPayload:
    where = f"events[{index}]"
    if not isinstance(item, dict):
        raise ProtocolError(f"{where}: must be an object")
    try:
        event = EventPayload.model_validate(item)
    except pydantic.ValidationError as err:
        raise from_validation_error(err, where) from None
    if event.name.startswith(RESERVED_PREFIX):
        raise ProtocolError(f"{where}.name: names starting with '{RESERVED_PREFIX}' are reserved")
    # `_inngest` carries server-set metadata (invoke correlation, lifecycle status); a client
    # must not be able to forge it.
    event.data.pop("_inngest", None)
    return event
