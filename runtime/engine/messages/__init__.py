"""Work-queue messages, typed. Every message is idempotent: handling one twice, late or after
the run moved on is harmless, because the executor checks it against the run's stored state.

A received body is read once, by ``parse``: the typed message of its kind, or ``Malformed``
with the reason it can never be handled (delivery dead-letters it). Each message writes its body
with ``to_body``; bodies keep the field names and shapes they have always had, so messages
already on a queue, in a timer or in the dead-letter store read the same after an upgrade.

What rides on any message besides its work is typed too: ``not_before`` (on every message,
``Envelope``) and a call's place in a concurrency line (``Call.place``, a ``LinePlace``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Self, TypeAlias, cast

from stepline.engine.messages.kinds import INVALID_BODY, Envelope, Fields, Kind, Malformed, kind_of, parse_body
from stepline.engine.messages.runs import (
    AiCall,
    Call,
    Erase,
    InvokeTimeout,
    LinePlace,
    RunMessage,
    RunTimeout,
    WaitTimeout,
    Wake,
)
from stepline.engine.messages.starts import BatchTimeout, CronFire, Debounce, Expire, MatchWaiters, Start, Sweep
from stepline.protocol.opcodes import DISCOVERY_STEP_ID

__all__ = [
    "INVALID_BODY",
    "AiCall",
    "BatchTimeout",
    "Call",
    "CronFire",
    "Debounce",
    "Envelope",
    "Erase",
    "Expire",
    "InvokeTimeout",
    "Kind",
    "LinePlace",
    "Malformed",
    "MatchWaiters",
    "Message",
    "Other",
    "RunMessage",
    "RunTimeout",
    "Start",
    "Sweep",
    "WaitTimeout",
    "Wake",
    "kind_of",
    "parse",
    "parse_body",
]

# The kinds by their old names (handlers are registered by these).
CALL = Kind.CALL
WAKE = Kind.WAKE
WAIT_TIMEOUT = Kind.WAIT_TIMEOUT
INVOKE_TIMEOUT = Kind.INVOKE_TIMEOUT
AI_CALL = Kind.AI_CALL
RUN_TIMEOUT = Kind.RUN_TIMEOUT
CRON = Kind.CRON
DEBOUNCE = Kind.DEBOUNCE
BATCH = Kind.BATCH
START = Kind.START
SWEEP = Kind.SWEEP
MATCH_WAITERS = Kind.MATCH_WAITERS
ERASE = Kind.ERASE
EXPIRE = Kind.EXPIRE

# One class per kind.
_BY_KIND: dict[Kind, type[Envelope]] = {
    cls.kind: cls
    for cls in (
        Call,
        Wake,
        WaitTimeout,
        InvokeTimeout,
        AiCall,
        RunTimeout,
        CronFire,
        Debounce,
        BatchTimeout,
        Start,
        Sweep,
        MatchWaiters,
        Erase,
        Expire,
    )
}


@dataclass(frozen=True, kw_only=True)
class Other:
    """A message of a kind the engine does not know but one of the executor's extra handlers
    does: handed to it as received (its fields are that handler's to read), with the envelope."""

    kind: str
    body: dict[str, Any]
    not_before: int | None = None

    def to_body(self) -> dict[str, Any]:
        body = {name: value for name, value in self.body.items() if name != "not_before"}
        if self.not_before is not None:
            body["not_before"] = self.not_before
        return body

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Self:
        return cls(kind=body["kind"], body=body, not_before=Fields(body).optional("not_before", int))


Message: TypeAlias = (
    Call
    | Wake
    | WaitTimeout
    | InvokeTimeout
    | AiCall
    | RunTimeout
    | CronFire
    | Debounce
    | BatchTimeout
    | Start
    | Sweep
    | MatchWaiters
    | Erase
    | Expire
    | Other
)


def parse(body: dict[str, Any], handled: Collection[str] = ()) -> Message:
    """The message a received body holds. Raises ``Malformed`` with the reason when it can never
    be handled: not JSON, an unknown kind, a field missing or of the wrong type. Kinds in
    ``handled`` (the executor's extra handlers) are known too, as ``Other``."""
    if INVALID_BODY in body:
        raise Malformed(f"the body is not a JSON object: {str(body[INVALID_BODY])[:200]!r}")
    kind = body.get("kind")
    try:
        if isinstance(kind, str) and kind in _BY_KIND:
            # Each class in the table is one of Message's (mypy cannot see it from the table).
            return cast(Message, _BY_KIND[Kind(kind)].from_body(body))
        if isinstance(kind, str) and kind in handled:
            return Other.from_body(body)
        raise Malformed(f"unknown message kind {kind!r}")
    except Malformed as refusal:
        run_id = body.get("run_id")
        raise Malformed(refusal.reason, run_id if isinstance(run_id, str) and run_id else None) from None


def run_id_of(message: Message) -> str | None:
    """The run a message is about, if any."""
    if isinstance(message, RunMessage):
        return message.run_id
    run_id = message.body.get("run_id") if isinstance(message, Other) else None
    return run_id if isinstance(run_id, str) and run_id else None


def with_not_before(message: Message, not_before: int | None) -> Message:
    return dataclasses.replace(message, not_before=not_before)


def out_of_line(message: Message) -> Message:
    """The message without a call's place in a concurrency line (see ``Call.out_of_line``)."""
    return message.out_of_line() if isinstance(message, Call) else message


def timer_name(message: Message) -> str:
    """A schedule name unique per (kind, run, step, attempt) within Scheduler's 64 characters.
    (Read by name: the kinds without a run, a step or an attempt name none.)"""
    body = message.to_body()
    step = body.get("step") or DISCOVERY_STEP_ID
    kind = str(body["kind"]).replace("_", "")[:8]
    return f"{kind}-{body.get('run_id', '')}-{step[:16]}-{body.get('attempt', 0)}"


# The bodies, as most senders want them.
def call(
    run_id: str, step: str = DISCOVERY_STEP_ID, attempt: int = 0, busy: int = 0, failures: list[Any] | None = None
) -> dict[str, Any]:
    return Call(run_id=run_id, step=step, attempt=attempt, busy=busy, failures=failures or []).to_body()


def wake(run_id: str, step: str) -> dict[str, Any]:
    return Wake(run_id=run_id, step=step).to_body()


def wait_timeout(run_id: str, step: str, event: str, match_key: str | None = None) -> dict[str, Any]:
    return WaitTimeout(run_id=run_id, step=step, event=event, match_key=match_key).to_body()


def invoke_timeout(run_id: str, step: str) -> dict[str, Any]:
    return InvokeTimeout(run_id=run_id, step=step).to_body()


def ai_call(run_id: str, step: str, attempt: int = 0, claim: str | None = None) -> dict[str, Any]:
    return AiCall(run_id=run_id, step=step, attempt=attempt, claim=claim).to_body()


def run_timeout(run_id: str) -> dict[str, Any]:
    return RunTimeout(run_id=run_id).to_body()


def match_waiters(event: str, buckets: list[str | None], after: str | None, now_ms: int) -> dict[str, Any]:
    return MatchWaiters(event=event, buckets=buckets, after=after, now=now_ms).to_body()


def cron(fn_id: str, expression: str) -> dict[str, Any]:
    return CronFire(fn_id=fn_id, cron=expression).to_body()


def sweep() -> dict[str, Any]:
    return Sweep().to_body()


def erase(run_id: str) -> dict[str, Any]:
    return Erase(run_id=run_id).to_body()


def expire() -> dict[str, Any]:
    return Expire().to_body()
