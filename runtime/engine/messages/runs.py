"""The messages about one run: a call to the app (and its place in a concurrency line, if it
waits in one), the wake-ups of its waiting steps, a model request, its timeout and its erasure.

Each reads the body it writes: bodies keep the field names they have always had, so messages
already on a queue, in a timer or in the dead-letter store read the same after an upgrade."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from stepline.engine.messages.kinds import Envelope, Fields, Kind
from stepline.protocol.opcodes import DISCOVERY_STEP_ID


@dataclass(frozen=True, kw_only=True)
class RunMessage(Envelope):
    """A message about the run ``run_id``, and nothing more unless a kind says so."""

    run_id: str

    def _fields(self) -> dict[str, Any]:
        return {"run_id": self.run_id}

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        return cls(run_id=fields.required("run_id", str), not_before=not_before)


@dataclass(frozen=True)
class LinePlace:
    """A call's place in a concurrency line (stepline.engine.flow.concurrency): its entry at
    ``position`` in the line of ``key`` (limit ``limit``), the limits it needs (``limits``:
    (key, limit) pairs; None in bodies written before they were carried), how many times this
    copy came back (``waits``), whether it is a wake made from the line (``woken``), and the
    entries it saw ahead of it that could have taken a free slot (``ahead``).

    On the wire: ``line`` {key, pos, limit, limits}, ``waits``, ``woken``, ``ahead``."""

    key: str
    position: str
    limit: int = 1
    limits: tuple[tuple[str, int], ...] | None = None
    waits: int = 0
    woken: bool = False
    ahead: tuple[str, ...] = ()

    def fields(self) -> dict[str, Any]:
        line: dict[str, Any] = {"key": self.key, "pos": self.position, "limit": self.limit}
        if self.limits is not None:
            line["limits"] = [[key, limit] for key, limit in self.limits]
        out: dict[str, Any] = {"line": line, "waits": self.waits}
        if self.woken:
            out["woken"] = True
        if self.ahead:
            out["ahead"] = list(self.ahead)
        return out

    @classmethod
    def read(cls, fields: Fields) -> LinePlace | None:
        """The place a body carries; None without one. A line no join ever wrote (without its
        key or position, or with limits that are not numbers) is none either: the call then
        queues anew, which no body is refused for."""
        line = fields.loose("line", dict)
        if line is None or not line.get("key") or not line.get("pos"):
            return None
        limits = line.get("limits")
        ahead = fields.loose("ahead", list) or []
        try:
            return cls(
                key=str(line["key"]),
                position=str(line["pos"]),
                limit=int(line.get("limit") or 1),
                limits=tuple((str(k), int(n)) for k, n in limits) if isinstance(limits, list) else None,
                waits=fields.loose("waits", int) or 0,
                woken=fields.flag("woken"),
                ahead=tuple(p for p in ahead if isinstance(p, str)),
            )
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True, kw_only=True)
class Call(RunMessage):
    """Call the app for a run: discovery, or one step at an attempt.

    ``busy`` counts the times this copy found the run taken (for its backoff); ``failures`` are
    the step's failed attempts so far, carried to the attempt that settles it, which keeps them
    in its memo for operators (stepline.engine.attempts); ``claim`` is the claim a step's retry
    carries through its backoff (stepline.engine.leases); ``join`` marks a parallel group's
    join, queued because the run was busy when a branch finished: it calls the app only if the
    group has nothing left out by then (docs/protocol.md §7.5). ``place`` is its place in a
    concurrency line while it waits in one."""

    kind: ClassVar[Kind] = Kind.CALL
    step: str = DISCOVERY_STEP_ID
    attempt: int = 0
    busy: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    claim: str | None = None
    join: bool = False
    place: LinePlace | None = None

    @property
    def discovery(self) -> bool:
        return self.step == DISCOVERY_STEP_ID

    def _fields(self) -> dict[str, Any]:
        body: dict[str, Any] = {"run_id": self.run_id, "step": self.step, "attempt": self.attempt}
        if self.busy:
            body["busy"] = self.busy
        if self.failures:
            body["failures"] = self.failures
        if self.claim:
            body["claim"] = self.claim
        if self.join:
            body["join"] = True
        if self.place is not None:
            body.update(self.place.fields())
        return body

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        run_id = fields.required("run_id", str)
        failures = fields.optional("failures", list) or []
        return cls(
            run_id=run_id,
            step=fields.optional("step", str) or DISCOVERY_STEP_ID,
            attempt=fields.optional("attempt", int) or 0,
            busy=fields.optional("busy", int) or 0,
            failures=[f for f in failures if isinstance(f, dict)],
            claim=fields.loose("claim", str) or None,
            join=fields.flag("join"),
            place=LinePlace.read(fields),
            not_before=not_before,
        )

    def when_busy(self) -> Call:
        """The copy to try again after finding the run (or the step) taken: a fresh call, out of
        any concurrency line and due at once, counting one more time it found it busy."""
        return dataclasses.replace(self, busy=self.busy + 1, place=None, not_before=None)

    def work(self) -> Call:
        """What the call asks for, without what belongs to one copy of it (its place in a line,
        its due time, its count of busy runs): two copies of the same work compare equal."""
        return dataclasses.replace(self, place=None, not_before=None, busy=0)

    def out_of_line(self) -> Call:
        """The call without its place in a concurrency line: sent again later, it is a fresh
        call that queues anew. (Its ``not_before`` stays: a sleep must not end early.)"""
        return dataclasses.replace(self, place=None)


@dataclass(frozen=True, kw_only=True)
class _StepMessage(RunMessage):
    """A message about one step of a run."""

    step: str

    def _fields(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "step": self.step}

    @classmethod
    def _read(cls, fields: Fields, not_before: int | None) -> Self:
        run_id = fields.required("run_id", str)
        return cls(run_id=run_id, step=fields.required("step", str), not_before=not_before, **cls._more(fields))

    @classmethod
    def _more(cls, fields: Fields) -> dict[str, Any]:
        """The fields a kind of step message adds, read from the body."""
        return {}


@dataclass(frozen=True, kw_only=True)
class Wake(_StepMessage):
    """A sleep is over (or a signal's wait timed out): its step's result is null."""

    kind: ClassVar[Kind] = Kind.WAKE


@dataclass(frozen=True, kw_only=True)
class InvokeTimeout(_StepMessage):
    """An invoked child did not finish in time: the invoking step fails."""

    kind: ClassVar[Kind] = Kind.INVOKE_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class WaitTimeout(_StepMessage):
    """A wait for ``event`` expired: its step's result is null, unless an event won it first.
    ``match_key`` is the waiter's bucket (stepline.engine.waiter_index), None when unkeyed."""

    kind: ClassVar[Kind] = Kind.WAIT_TIMEOUT
    event: str = ""
    match_key: str | None = None

    def _fields(self) -> dict[str, Any]:
        body = {**super()._fields(), "event": self.event}
        if self.match_key is not None:
            body["match_key"] = self.match_key
        return body

    @classmethod
    def _more(cls, fields: Fields) -> dict[str, Any]:
        return {"event": fields.loose("event", str) or "", "match_key": fields.loose("match_key", str)}


@dataclass(frozen=True, kw_only=True)
class AiCall(_StepMessage):
    """Make a step.ai.infer model request (stepline.engine.ops.ai) at ``attempt``; ``claim``:
    the claim a retry keeps on its op through the backoff."""

    kind: ClassVar[Kind] = Kind.AI_CALL
    attempt: int = 0
    claim: str | None = None

    def _fields(self) -> dict[str, Any]:
        body = {**super()._fields(), "attempt": self.attempt}
        if self.claim:
            body["claim"] = self.claim
        return body

    @classmethod
    def _more(cls, fields: Fields) -> dict[str, Any]:
        return {"attempt": fields.optional("attempt", int) or 0, "claim": fields.loose("claim", str) or None}


@dataclass(frozen=True, kw_only=True)
class RunTimeout(RunMessage):
    """The run's ``timeouts.finish`` passed: it is cancelled if it is still going."""

    kind: ClassVar[Kind] = Kind.RUN_TIMEOUT


@dataclass(frozen=True, kw_only=True)
class Erase(RunMessage):
    """Erase a run once more, after a call in flight when it was erased (stepline.engine.erasure)."""

    kind: ClassVar[Kind] = Kind.ERASE
