"""Signals on the wire (docs/protocol.md §10.4): the ``WaitForSignal`` op TypeScript's
``step.waitForSignal`` (and Stepline's ``step.wait_for_signal``) reports, and the body of
``POST /v1/signals`` that ``inngest.sendSignal`` / ``step.sendSignal`` send.

The op: ``{"op": "WaitForSignal", "name": <signal>, "opts": {"signal": <signal>, "timeout":
"5m", "conflict": "fail" | "replace"}}``; ``conflict`` may be absent (TypeScript sends
``undefined`` when the caller gives no ``onConflict``), which means ``fail``.
The body: ``{"signal": <signal>, "data": <any JSON>}``; ``data`` may be absent (null).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Protocol

from stepline.protocol.errors import ProtocolError
from stepline.protocol.events import MAX_DEPTH, MAX_NAME_BYTES, _depth


class SignalOp(Protocol):
    """What these checks read of a WaitForSignal op (``stepline.protocol.calls.Opcode``, which
    imports this module: a structural type keeps the two from importing each other)."""

    @property
    def name(self) -> str: ...

    @property
    def options(self) -> dict[str, Any]: ...


# A signal name becomes part of a store key, like an event name.
MAX_SIGNAL_BYTES = MAX_NAME_BYTES
# What one signal carries to the run: the step's memo, bounded like one event's data.
MAX_SIGNAL_BODY_BYTES = 3 * 1024 * 1024


class OnConflict(StrEnum):
    """What a wait does when another run already waits for its signal."""

    FAIL = "fail"  # the new wait's step fails with SignalConflict (the default)
    REPLACE = "replace"  # the new wait takes the signal; the other run waits on until its timeout


def signal_problem(signal: Any, where: str) -> str | None:
    """Why ``signal`` cannot name a signal, or None."""
    if not isinstance(signal, str) or not signal:
        return f"{where}: the signal name is missing (a non-empty string)"
    if len(signal.encode("utf-8")) > MAX_SIGNAL_BYTES:
        return f"{where}: the signal name is longer than {MAX_SIGNAL_BYTES} bytes"
    return None


def op_signal(op: SignalOp) -> str:
    """A WaitForSignal's signal: ``opts.signal`` if present, else ``name``."""
    signal = op.options.get("signal")
    return signal if isinstance(signal, str) and signal else op.name


def op_conflict(op: SignalOp) -> OnConflict:
    raw = op.options.get("conflict")
    return OnConflict(raw) if raw else OnConflict.FAIL


def check_signal_op(op: SignalOp) -> None:
    """The WaitForSignal checks the reply parser runs (a ValueError names the field)."""
    where = "opts.signal" if op.options.get("signal") else "name"
    problem = signal_problem(op_signal(op), where)
    if problem is not None:
        raise ValueError(problem)
    raw = op.options.get("conflict")
    if raw not in (None, "") and raw not in {c.value for c in OnConflict}:
        raise ValueError(f"opts.conflict: must be 'fail' or 'replace', got {json.dumps(raw)[:40]}")


def parse_signal_body(body: Any) -> tuple[str, Any]:
    """``(signal, data)`` from a parsed ``POST /v1/signals`` body; ProtocolError names the field."""
    if not isinstance(body, dict):
        raise ProtocolError("body: must be an object with signal and data")
    problem = signal_problem(body.get("signal"), "signal")
    if problem is not None:
        raise ProtocolError(problem)
    data = body.get("data")
    if _depth(data) > MAX_DEPTH:
        raise ProtocolError(f"data: nested more than {MAX_DEPTH} levels deep")
    return body["signal"], data
