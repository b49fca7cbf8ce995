"""The messages that start runs or keep the engine tidy rather than move one run on: a cron
fire, the end of a debounce window or of a batch's timeout, a large request's stored events,
the rest of an event's waiters, and the sweep and expiry passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from stepline.engine.messages.kinds import Envelope, Fields, Kind


@dataclass(frozen=True, kw_only=True)
class CronFire(Envelope):
    """A cron trigger ``cron`` of ``fn_id`` fired: start the function's run for that minute.
    When it was due travels as ``at`` (epoch ms, the local timer driver's, or a jittered fire's)
    or ``scheduled_time`` (ISO 8601, EventBridge Scheduler's placeholder); ``jittered`` marks
    the fire that was put off by the trigger's jitter, to start the run when it comes back."""

    kind: ClassVar[Kind] = Kind.CRON
    fn_id: str
    cron: str
    at: int | None = None
    scheduled_time: str | None = None
    jittered: bool = False

    def _fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"fn_id": self.fn_id, "cron": self.cron}
        if self.at is not None:
            body["at"] = self.at
        if self.scheduled_time is not None:
            body["scheduled_time"] = self.scheduled_time
        if self.jittered:
            body["jittered"] = True
        return body

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        fn_id, cron = fields.required("fn_id", str), fields.required("cron", str)
        return cls(
            fn_id=fn_id,
            cron=cron,
            at=fields.optional("at", int),
            scheduled_time=fields.optional("scheduled_time", str),
            jittered=fields.flag("jittered"),
            not_before=not_before,
        )


@dataclass(frozen=True, kw_only=True)
class _KeyedTimer(Envelope):
    """A flow-control timer of ``key`` (of ``fn_id``) due at ``at``; ``step`` names its
    Scheduler timer (see ``timer_name``)."""

    key: str
    at: int
    fn_id: str | None = None
    step: str | None = None

    def _fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"key": self.key, "at": self.at}
        if self.fn_id is not None:
            body["fn_id"] = self.fn_id
        if self.step is not None:
            body["step"] = self.step
        return body

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        key, at = fields.required("key", str), fields.required("at", int)
        return cls(
            key=key,
            at=at,
            fn_id=fields.loose("fn_id", str),
            step=fields.optional("step", str),
            not_before=not_before,
            **cls._more(fields),
        )

    @classmethod
    def _more(cls, fields: Fields) -> dict[str, Any]:
        """The fields a kind of timer adds, read from the body."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Debounce(_KeyedTimer):
    """The debounce window of ``key`` may be over at ``at``: start its run if the window still
    ends then (stepline.engine.flow.debounce). One timer per key, so each event replaces the
    window's schedule."""

    kind: ClassVar[Kind] = Kind.DEBOUNCE


@dataclass(frozen=True, kw_only=True)
class BatchTimeout(_KeyedTimer):
    """The batch ``batch_id`` of ``key`` timed out at ``at``: start its run unless it already ran
    (stepline.engine.flow.batching)."""

    kind: ClassVar[Kind] = Kind.BATCH
    batch_id: str | None = None

    def _fields(self) -> dict[str, Any]:
        body = super()._fields()
        if self.batch_id is not None:
            body["batch_id"] = self.batch_id
        return body

    @classmethod
    def _more(cls, fields: Fields) -> dict[str, Any]:
        return {"batch_id": fields.loose("batch_id", str)}


@dataclass(frozen=True, kw_only=True)
class Start(Envelope):
    """A large Event API request's stored events (``event_ids``, internal ids): start the runs
    they trigger and resume their waiters (stepline.engine.ingest). ``duplicates`` are those
    the store already had, for flow control's idempotency (docs/protocol.md §9)."""

    kind: ClassVar[Kind] = Kind.START
    event_ids: list[str]
    duplicates: list[str] = field(default_factory=list)

    def _fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event_ids": self.event_ids}
        if self.duplicates:
            body["duplicates"] = self.duplicates
        return body

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        event_ids = fields.required("event_ids", list)
        duplicates = fields.loose("duplicates", list) or []
        return cls(
            event_ids=[e for e in event_ids if isinstance(e, str)],
            duplicates=[e for e in duplicates if isinstance(e, str)],
            not_before=not_before,
        )


@dataclass(frozen=True, kw_only=True)
class MatchWaiters(Envelope):
    """Go on matching the stored event ``event`` (internal id) against its waiters: the buckets
    left (keys; None for the unkeyed one), from ``after`` in the first, as of ``now``."""

    kind: ClassVar[Kind] = Kind.MATCH_WAITERS
    event: str
    buckets: list[str | None]
    after: str | None = None
    now: int | None = None

    def _fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"event": self.event, "buckets": self.buckets, "after": self.after}
        if self.now is not None:
            body["now"] = self.now
        return body

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        event, buckets = fields.required("event", str), fields.required("buckets", list)
        return cls(
            event=event,
            buckets=[b if isinstance(b, str) else None for b in buckets],
            after=fields.loose("after", str),
            now=fields.loose("now", int),
            not_before=not_before,
        )


@dataclass(frozen=True, kw_only=True)
class _Bare(Envelope):
    """A message that is no more than its kind."""

    def _fields(self) -> dict[str, Any]:
        return {}

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        return cls(not_before=not_before)


@dataclass(frozen=True, kw_only=True)
class Sweep(_Bare):
    """Find stalled runs and re-arm them (stepline.engine.sweeper), then expire what is due."""

    kind: ClassVar[Kind] = Kind.SWEEP


@dataclass(frozen=True, kw_only=True)
class Expire(_Bare):
    """Erase ended runs and events past their retention (stepline.engine.retention)."""

    kind: ClassVar[Kind] = Kind.EXPIRE
