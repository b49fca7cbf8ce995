"""The kinds of work-queue message, and the few rules every body follows: how a received text
becomes a body, and how a body's fields are read with the reason a bad one is refused."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Self


class Kind(StrEnum):
    CALL = "call"  # call the SDK for a run: discovery (DISCOVERY_STEP_ID) or a targeted step
    WAKE = "wake"  # a sleep is over: memoize it, then run discovery
    WAIT_TIMEOUT = "wait_timeout"  # a wait_for_event expired: memoize null unless an event won
    INVOKE_TIMEOUT = "invoke_timeout"  # an invoked child did not finish in time
    AI_CALL = "ai_call"  # make a step.ai.infer model request (stepline.engine.ops.ai)
    RUN_TIMEOUT = "run_timeout"  # timeouts.finish: cancel the run if it is still going
    CRON = "cron"  # a cron trigger fired: start the function's run for that minute
    DEBOUNCE = "debounce"  # a debounce window may be over: start its run with the last event
    BATCH = "batch"  # a batch's timeout passed: start its run with the events it holds
    START = "start"  # a large Event API request's stored events: start their runs, resume waiters
    SWEEP = "sweep"  # find stalled runs and re-arm them (stepline.engine.sweeper); no run of its own
    MATCH_WAITERS = "match_waiters"  # the rest of one event's waiters, past one request's budget
    ERASE = "erase"  # erase a run once more, after a call in flight when it was erased (engine.erasure)
    EXPIRE = "expire"  # erase ended runs and events past their retention (stepline.engine.retention)


# What a queue adapter hands over for a body that is not a JSON object: the text as received,
# under this one key, so the delivery can dead-letter it instead of a worker crashing on it.
INVALID_BODY = "invalid_body"


def parse_body(text: str) -> dict[str, Any]:
    """A received message's body: the JSON object, or ``{INVALID_BODY: text}`` for anything else."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {INVALID_BODY: text}


def kind_of(body: dict[str, Any]) -> str:
    """The message's kind for operators: "unknown" when it has none that is a string."""
    kind = body.get("kind")
    return kind if isinstance(kind, str) and kind else "unknown"


class Malformed(ValueError):
    """A body that can never be handled: not JSON, an unknown kind, a field missing or of the
    wrong type. ``reason`` says which, for the dead-letter store; ``run_id`` is the run the body
    names, when it names one (a run whose message can never succeed ends Failed)."""

    def __init__(self, reason: str, run_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.run_id = run_id


_MISSING = object()


class Fields:
    """One body's fields, read with the checks every message makes: a field a kind cannot do
    without must be there; a field with a type must have it, and not be a bool standing for an
    int nor an empty string. Fields a kind does not check are read as absent when malformed."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def _checked(self, name: str, want: type, value: Any) -> Any:
        if not isinstance(value, want) or isinstance(value, bool) or value == "":
            raise Malformed(f"{name}: expected a non-empty {want.__name__}, got {value!r}")
        return value

    def required(self, name: str, want: type) -> Any:
        value = self.body.get(name, _MISSING)
        if value is _MISSING:
            raise Malformed(f"{name}: missing")
        return self._checked(name, want, value)

    def optional(self, name: str, want: type) -> Any:
        """The value, checked, or None when the body has no such field."""
        value = self.body.get(name, _MISSING)
        return None if value is _MISSING else self._checked(name, want, value)

    def loose(self, name: str, want: type) -> Any:
        """The value when it has the type, else None (a field no body was ever refused for)."""
        value = self.body.get(name)
        return value if isinstance(value, want) and not isinstance(value, bool) else None

    def flag(self, name: str) -> bool:
        return self.body.get(name) is True


@dataclass(frozen=True, kw_only=True)
class Envelope:
    """What any message may carry besides its work: ``not_before``, the time before which it
    must not be handled (a timer fires a far-off message early; stepline.engine.scheduling puts
    it back until then). Each kind writes its own fields (``_fields``) and reads them
    (``_read``); the kind and the envelope are written and read here."""

    kind: ClassVar[Kind]
    not_before: int | None = None

    def _fields(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        raise NotImplementedError

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value, **self._fields()}
        if self.not_before is not None:
            body["not_before"] = self.not_before
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        """The message a body of this kind holds; ``Malformed`` with the reason when it holds none."""
        fields = Fields(body)
        return cls._read(fields, fields.optional("not_before", int))
