"""Checkpointing: running consecutive steps inline in one call and reporting each result as it
finishes, instead of ending the call after every step (docs/steps/checkpointing.md).

The server says what it takes on each call request (docs/protocol.md §17):

* ``x-stepline-checkpoint: stream`` (Stepline): the answer becomes a stream of lines on the
  call's own connection, one per finished step, then the call's answer. Nothing else travels:
  no extra request per step. Used when the serve adapter can stream (WSGI, Flask, ASGI).
* ``ctx.fn_id`` with ``ctx.qi_id`` (Stepline, and Inngest's servers, for the TypeScript SDK):
  each step is POSTed to ``/v1/checkpoint/{run_id}/async`` before the next one starts. Used
  when the adapter cannot stream (AWS Lambda), or the server offers no stream.
* neither: one step per call, as before.

Only a discovery call on its first attempt runs steps inline (a retried or targeted step runs
alone, as the server asked); the call ends at the first step that is not a plain success (a
sleep, wait, invoke, parallel group, or a failed step, whose retry the server schedules) and
when its time budget is spent. ``Client(checkpointing=False)`` or
``@client.function(..., checkpointing=False)`` turns it off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stepline.protocol.checkpoint import H_CHECKPOINT, H_CHECKPOINT_BUDGET, STREAM, CheckpointOp, step_line

if TYPE_CHECKING:
    from stepline.sdk.client import Client

# Inngest's limit on one step's output (the server refuses larger ones): a step over it ends the
# call and is reported in the answer, where the server turns it into the step's error.
MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024
# Without a budget from the server, a checkpointing call stops starting steps after this long
# (what the TypeScript SDK does for HTTP calls).
DEFAULT_BUDGET_S = 10.0
# A checkpoint through the API is retried this many times before the call falls back to
# answering with the step (which the server then stores itself).
API_ATTEMPTS = 3
API_BACKOFF_S = 0.05
API_TIMEOUT_S = 10.0
STALE_DISPATCH = "StaleDispatchError"


class Mode(enum.Enum):
    STREAM = "stream"
    API = "api"


class CallAborted(BaseException):
    """The call cannot go on: its connection is gone, or the server said it is stale. A
    ``BaseException``, so a user's ``except Exception`` cannot swallow it."""

    def __init__(self, message: str, *, stale: bool = False) -> None:
        super().__init__(message)
        self.stale = stale


class NotCheckpointed(Exception):
    """This step could not be checkpointed (too large, or the API kept failing): the call ends
    and its answer carries the step, which the server stores."""


class Sink:
    """Where finished steps go. ``emit`` may block (back-pressure); ``emit_async`` from async
    functions. Both raise ``CallAborted`` when the call cannot go on."""

    def emit(self, op: dict[str, Any], line: bytes) -> None:
        raise NotImplementedError

    async def emit_async(self, op: dict[str, Any], line: bytes) -> None:
        self.emit(op, line)


class Checkpointer:
    """One call's checkpointing: where steps go, and when to stop starting new ones."""

    def __init__(self, mode: Mode, sink: Sink, budget_s: float) -> None:
        self.mode = mode
        self.sink = sink
        self.budget_s = budget_s
        self.started = time.monotonic()
        self.count = 0  # steps reported in this call

    def over_budget(self) -> bool:
        """Whether to stop before the next step (never before the first: every call moves)."""
        return self.count > 0 and time.monotonic() - self.started >= self.budget_s

    def end_op(self, planned: dict[str, Any]) -> dict[str, Any]:
        """The op that ends a call at its budget, ahead of the step ``planned`` would run:
        Stepline is asked to call again; other servers are told the step is planned."""
        if self.mode is Mode.STREAM:
            return {"id": f"budget-{planned['id']}", "op": CheckpointOp.DISCOVERY_REQUEST.value, "data": None}
        return planned

    def _encoded(self, op: dict[str, Any]) -> bytes:
        line = step_line(op)
        if len(line) > MAX_STEP_OUTPUT_BYTES:
            size = len(json.dumps(op.get("data"), separators=(",", ":")).encode("utf-8"))
            if size > MAX_STEP_OUTPUT_BYTES:
                raise NotCheckpointed(f"step output is {size} bytes")
        return line

    def record(self, op: dict[str, Any]) -> None:
        self.sink.emit(op, self._encoded(op))
        self.count += 1

    async def record_async(self, op: dict[str, Any]) -> None:
        await self.sink.emit_async(op, self._encoded(op))
        self.count += 1


# -- deciding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """What the server offered on this call."""

    stream: bool
    budget_s: float | None
    fn_id: str | None
    qi_id: str | None


def offer_of(header: Any, ctx: Any) -> Offer:
    """``header(name)`` reads a request header; ``ctx`` is the parsed call ``ctx``."""
    budget_s: float | None = None
    raw = header(H_CHECKPOINT_BUDGET)
    if raw:
        try:
            budget_s = max(0.0, int(raw) / 1000)
        except ValueError:
            budget_s = None
    return Offer(
        stream=(header(H_CHECKPOINT) or "").strip().lower() == STREAM,
        budget_s=budget_s,
        fn_id=getattr(ctx, "fn_id", None) or None,
        qi_id=getattr(ctx, "qi_id", None) or None,
    )


def choose(offer: Offer, *, enabled: bool, inline: bool, can_stream: bool) -> Mode | None:
    """The mode for this call, or None for one step per call. ``inline``: the call may run
    steps inline at all (discovery, first attempt, not told to plan)."""
    if not enabled or not inline:
        return None
    if offer.stream and can_stream:
        return Mode.STREAM
    if offer.fn_id and offer.qi_id:
        return Mode.API
    return None


def budget_for(mode: Mode, offer: Offer) -> float:
    if mode is Mode.STREAM and offer.budget_s is not None:
        return offer.budget_s
    # Through the API nothing reaches the server until the call ends: stay well inside its
    # read timeout whatever budget it named.
    return min(offer.budget_s if offer.budget_s is not None else DEFAULT_BUDGET_S, DEFAULT_BUDGET_S)


# -- the checkpoint API (what the TypeScript SDK does) ------------------------------------------------


class ApiSink(Sink):
    """Each step POSTed to ``/v1/checkpoint/{run_id}/async`` before the next one starts."""

    def __init__(self, client: Client, run_id: str, fn_id: str, qi_id: str) -> None:
        self.client = client
        self.run_id = run_id
        self.fn_id = fn_id
        self.qi_id = qi_id
        self.started_ms = int(time.time() * 1000)

    def emit(self, op: dict[str, Any], line: bytes) -> None:
        from stepline.sdk.transport import TransportError

        body = {
            "run_id": self.run_id,
            "fn_id": self.fn_id,
            "qi_id": self.qi_id,
            "request_started_at": self.started_ms,
            "steps": [op],
            "ts": int(time.time() * 1000),
        }
        raw = json.dumps(body, separators=(",", ":")).encode("utf-8")
        last = ""
        for attempt in range(API_ATTEMPTS):
            if attempt:
                time.sleep(API_BACKOFF_S * 2 ** (attempt - 1))
            try:
                reply = self.client.api_request("POST", f"/v1/checkpoint/{self.run_id}/async", raw)
            except TransportError as err:
                last = str(err)
                continue
            if reply.status == 409:
                raise CallAborted(f"checkpoint of run {self.run_id}: the call is stale", stale=True)
            if 200 <= reply.status < 300:
                return
            last = f"HTTP {reply.status}: {reply.body[:200]!r}"
            if reply.status < 500 and reply.status != 429:
                break  # refused for good (too large, malformed): the answer carries the step
        raise NotCheckpointed(f"checkpoint of run {self.run_id} failed: {last}")

    async def emit_async(self, op: dict[str, Any], line: bytes) -> None:
        await asyncio.to_thread(self.emit, op, line)


# -- the checkpoint stream ----------------------------------------------------------------------------


_END = object()
# How often a producer waiting on the server looks whether the stream is gone.
_POLL_S = 0.5


class ThreadStream(Sink):
    """Lines from a function running on a thread of its own, read by the server's thread as an
    iterator (WSGI).

    A hand-off, not a buffer: ``emit`` returns once the server has written the line and asks
    for the next one, so a step never starts before the previous one's line has left the
    process (a process killed after step k has sent steps 1..k). Closing the iterator (the
    server saw the connection go) aborts the call at its next step."""

    def __init__(self) -> None:
        self._lines: queue.Queue[Any] = queue.Queue(1)
        self._written = threading.Semaphore(0)
        self._gone = threading.Event()

    def emit(self, op: dict[str, Any], line: bytes) -> None:
        self._put(line)
        while not self._written.acquire(timeout=_POLL_S):
            if self._gone.is_set():
                raise CallAborted("the server closed the checkpoint stream")

    def _put(self, item: Any) -> None:
        while True:
            if self._gone.is_set():
                raise CallAborted("the server closed the checkpoint stream")
            try:
                self._lines.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def end(self, last: bytes) -> None:
        self._put(last)
        self._put(_END)

    def lines(self) -> Iterator[bytes]:
        try:
            while True:
                item = self._lines.get()
                if item is _END:
                    return
                yield item
                self._written.release()  # asked for more: the server wrote that line
        finally:
            self._gone.set()


class LoopStream(Sink):
    """Lines for an async server (ASGI): produced on its event loop by async functions, or from
    a worker thread by sync ones, and read as an async iterator. A hand-off like
    ``ThreadStream``: a step starts once the previous line was sent."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lines: asyncio.Queue[Any] = asyncio.Queue(1)
        self._written = asyncio.Semaphore(0)
        self._gone = False

    def emit(self, op: dict[str, Any], line: bytes) -> None:  # from a worker thread
        sent = asyncio.run_coroutine_threadsafe(self.emit_async(op, line), self._loop)
        while True:
            try:
                sent.result(timeout=_POLL_S)
                return
            except concurrent.futures.TimeoutError:
                if self._gone:
                    sent.cancel()
                    raise CallAborted("the server closed the checkpoint stream") from None

    async def emit_async(self, op: dict[str, Any], line: bytes) -> None:
        if self._gone:
            raise CallAborted("the server closed the checkpoint stream")
        await self._lines.put(line)
        while not self._gone:
            try:
                await asyncio.wait_for(self._written.acquire(), _POLL_S)
                return
            except TimeoutError:
                continue
        raise CallAborted("the server closed the checkpoint stream")

    async def end(self, last: bytes) -> None:
        await self._lines.put(last)
        await self._lines.put(_END)

    async def lines(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self._lines.get()
                if item is _END:
                    return
                yield item
                self._written.release()
        finally:
            self._gone = True
            while not self._lines.empty():  # wake a producer blocked on a full queue
                self._lines.get_nowait()
