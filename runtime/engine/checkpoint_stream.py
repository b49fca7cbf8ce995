"""Reading a checkpoint stream: step results that arrive on the call's own connection
(docs/protocol.md §17.2), each stored the moment its line is read.

The app does not wait for the store: it writes a step's line and starts the next step at once,
so storing and running overlap. The executor stores each step in order; when one cannot be
stored as reported (its output is over a limit and becomes an error, another writer got there
first, the run ended, the lease is gone) it stops reading and drops the connection. The app's
next write then fails and it stops; whatever it ran after the last stored step runs again on
the next call. A stream that breaks before its last line is a failed call, retried like any
other, from the last stored step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stepline.engine.checkpoint import STALE_DISPATCH
from stepline.engine.http import CallFailed, LineStream
from stepline.engine.ports import Clock
from stepline.protocol.calls import MALFORMED, CallResult, Opcode, parse_call_response
from stepline.protocol.checkpoint import CheckpointOp
from stepline.protocol.checkpoint_requests import parse_stream_line
from stepline.protocol.errors import ProtocolError


class StopReading(Exception):
    """The run may not go on in this call (it ended, or the executor lost it)."""


class RefuseStep(Exception):
    """A step the run may not take (a limit): the call fails, and so does the run."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


@dataclass
class StreamHooks:
    """What the executor does for the stream.

    ``store(op)`` stores one step: True when this reply's value is now the step's memo, False
    when it is not (the app went on with a value the run does not have). ``check()`` raises
    ``StopReading`` when the call may not go on; ``store`` raises ``RefuseStep`` for a step the
    run may not take (a limit). ``check`` is called before each store and reads the
    run only now and then (``stepline.engine.checkpoint_calls.LIVENESS_CHECK_MS``). ``hold()``
    keeps the call's lease alive (a clock check; a write only when the lease nears expiry)."""

    store: Callable[[Opcode], bool]
    check: Callable[[], None]
    hold: Callable[[], None]


def read_stream(lines: LineStream, hooks: StreamHooks, clock: Clock) -> tuple[CallResult, int]:
    """Store each step of the stream; the call's answer, and how many steps were stored.

    The answer is the app's last line. When reading stops early it is a ``DiscoveryRequest``
    (call again: the stored steps stand, the next call replays from them), a stale-call error
    (the executor lets the run go), or a retriable error (the stream broke or was garbled).
    """
    stored = 0
    try:
        for raw in lines:
            try:
                line = parse_stream_line(raw)
            except ProtocolError as err:
                lines.close()
                return _failed(MALFORMED, f"{err.message} (after {stored} steps)"), stored
            if line.step is None:
                return parse_call_response(line.status, line.headers or {}, line.body, clock.now_ms()), stored
            hooks.check()
            hooks.hold()
            if not hooks.store(line.step):
                lines.close()
                return _call_again(line.step.id), stored
            stored += 1
    except StopReading as stop:
        lines.close()
        return _failed(STALE_DISPATCH, str(stop), no_retry=True), stored
    except RefuseStep as refused:
        lines.close()
        return _failed(refused.name, refused.message, no_retry=True), stored
    except CallFailed as exc:
        return _failed("CallFailed", f"the checkpoint stream broke after {stored} steps: {exc}"), stored
    except BaseException:
        # A store failure or a crash of this invocation: hang up, so the app stops at its next
        # step rather than run on into a connection nobody reads.
        lines.close()
        raise
    return _failed("CallFailed", f"the checkpoint stream ended after {stored} steps without the call's answer"), stored


def _call_again(after: str) -> CallResult:
    op = Opcode(id=f"after-{after}", op=CheckpointOp.DISCOVERY_REQUEST.value)
    return CallResult(kind="ops", ops=[op], status=206)


def _failed(name: str, message: str, *, no_retry: bool = False) -> CallResult:
    return CallResult(kind="error", error={"name": name, "message": message, "stack": ""}, no_retry=no_retry)
