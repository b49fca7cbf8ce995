"""Answering a call with a checkpoint stream (docs/protocol.md §17.2): status 200 at once, then
one line per finished step as the function runs, then the call's answer as the last line.

The server stores each step as its line arrives, while the function goes on to the next one.
A sync function runs on a thread of its own while the server's thread writes the lines (WSGI);
an async one runs on the server's loop (ASGI). Either way, when the server stops reading (it
closed the connection: it could not store a step, or it lost the run), the function stops at
its next step, and the server calls again from the last step it stored.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from stepline.protocol.checkpoint import H_CHECKPOINT, STREAM, STREAM_CONTENT_TYPE, result_line
from stepline.sdk.checkpointing import CallAborted, Checkpointer, LoopStream, Mode, ThreadStream

log = logging.getLogger("stepline.sdk")

Outcome = Any  # stepline.sdk.execution.Outcome (status, body, headers)


def stream_headers(base: dict[str, str]) -> dict[str, str]:
    headers = {k: v for k, v in base.items() if k.lower() != "content-type"}
    headers["content-type"] = STREAM_CONTENT_TYPE
    headers[H_CHECKPOINT] = STREAM
    # A proxy that buffers the body would hold every step until the call ends.
    headers["x-accel-buffering"] = "no"
    headers["cache-control"] = "no-store"
    return headers


def _last(outcome: Outcome) -> bytes:
    return result_line(outcome.status, dict(outcome.headers), outcome.body)


def _crashed(err: BaseException) -> Outcome:
    from stepline.sdk.execution import Outcome

    message = f"the call failed while streaming: {type(err).__name__}: {err}"
    return Outcome(500, {"name": "StreamError", "message": message, "stack": ""})


def stream_sync(run: Callable[[Checkpointer], Outcome], budget_s: float) -> Iterator[bytes]:
    """The lines of a call whose function runs on its own thread; ``run(checkpointer)`` runs the
    function and returns its outcome."""
    sink = ThreadStream()
    checkpointer = Checkpointer(Mode.STREAM, sink, budget_s)
    # The function sees the request's context variables (a framework's request context), as it
    # would on the server's thread.
    context = contextvars.copy_context()

    def work() -> None:
        try:
            outcome = context.run(run, checkpointer)
        except CallAborted:
            return  # the server stopped reading: nobody to answer
        except BaseException as err:  # noqa: BLE001 - the server must still get an answer
            outcome = _crashed(err)
        try:
            sink.end(_last(outcome))
        except CallAborted:
            pass

    thread = threading.Thread(target=work, name="stepline-checkpoint-call", daemon=True)
    thread.start()
    return sink.lines()


async def stream_async(run: Callable[[Checkpointer], Awaitable[Outcome]], budget_s: float) -> AsyncIterator[bytes]:
    """The lines of a call on an event loop: the function runs as a task beside the reader."""
    sink = LoopStream(asyncio.get_running_loop())
    checkpointer = Checkpointer(Mode.STREAM, sink, budget_s)

    async def work() -> None:
        try:
            outcome = await run(checkpointer)
        except CallAborted:
            return
        except Exception as err:  # noqa: BLE001
            outcome = _crashed(err)
        await sink.end(_last(outcome))

    # Not cancelled when the reader stops: like the threaded form, the function stops at its
    # next step (CallAborted), never in the middle of one.
    task = asyncio.create_task(work())
    async for line in sink.lines():
        yield line
    del task


def no_delay(sock: Any) -> None:
    """Send each line as it is written. Without it, a line written while the previous one is
    unacknowledged waits for the peer's delayed ack (tens of milliseconds on Linux)."""
    if isinstance(sock, socket.socket):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            log.debug("could not set TCP_NODELAY on the call's socket", exc_info=True)
