"""One call request, start to answer: parse the body, replay the function, shape the reply.

Everything the server needs to know about the outcome is in the status and two headers
(docs/protocol.md §6): 206 + ops, 200 + output, or an error status whose ``x-inngest-no-retry`` and
``retry-after`` headers say whether and when to try again.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from stepline.sdk.checkpointing import STALE_DISPATCH, CallAborted, Checkpointer
from stepline.sdk.context import AsyncContext, Context
from stepline.sdk.errors import (
    CodedError,
    RetryAfterError,
    SdkError,
    error_body,
    is_retriable,
)
from stepline.sdk.events import from_wire_event
from stepline.sdk.function import Function
from stepline.sdk.steps import AsyncSteps, Steps
from stepline.sdk.steps.core import Execution, Interrupt, Sender, Skip, decode_memo, to_json_value

H_NO_RETRY = "x-inngest-no-retry"
H_RETRY_AFTER = "retry-after"

T = TypeVar("T")


class _CallCtx(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    attempt: int = 0
    max_attempts: int | None = None
    disable_immediate_execution: bool = False
    use_api: bool = False
    # What a server that takes checkpoints through its API sends (stepline.sdk.checkpointing).
    fn_id: str | None = None
    qi_id: str | None = None


class CallBody(BaseModel):
    """The call-request body (docs/protocol.md §5.2), read leniently: what we need, nothing more."""

    model_config = ConfigDict(extra="ignore")

    ctx: _CallCtx
    event: dict[str, Any]
    events: list[dict[str, Any]] = []
    steps: dict[str, Any] | None = None
    use_api: bool = False


@dataclasses.dataclass
class Outcome:
    status: int
    body: Any
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_body(raw: Any) -> CallBody:
    try:
        return CallBody.model_validate(raw)
    except pydantic.ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise CodedError("bad_request", f"call request {where}: {first.get('msg')}", retriable=True) from None


def _prepare(
    fn: Function,
    body: CallBody,
    target: str | None,
    sender: Sender,
    mocks: dict[str, Any] | None,
    logger: logging.Logger,
    fetch=None,
    checkpoint: Checkpointer | None = None,
    traceparent: str | None = None,
):
    events, steps = body.events, body.steps or {}
    if (body.use_api or body.ctx.use_api) and fetch is not None:
        # The body was too large to carry them; the event itself still comes from the body.
        events, steps = fetch(body.ctx.run_id)
    ex = Execution(
        run_id=body.ctx.run_id,
        app_id=fn.app_id,
        attempt=body.ctx.attempt,
        max_attempts=body.ctx.max_attempts,
        memos={k: decode_memo(v) for k, v in steps.items()},
        target=target,
        disable_immediate=body.ctx.disable_immediate_execution,
        sender=sender,
        mocks=mocks,
    )
    ex.checkpoint = checkpoint
    ex.traceparent = traceparent
    event = from_wire_event(body.event, fn.event_models)
    all_events = [from_wire_event(e, fn.event_models) for e in (events or [body.event])]
    common: dict[str, Any] = dict(
        event=event,
        events=all_events,
        run_id=body.ctx.run_id,
        attempt=body.ctx.attempt,
        function_id=fn.composite_id,
        logger=logger,
    )
    if fn.is_async:
        return ex, AsyncContext(**common, step=AsyncSteps(ex))
    return ex, Context(**common, step=Steps(ex))


def call(
    fn: Function,
    body: CallBody,
    target: str | None,
    sender: Sender,
    *,
    mocks: dict[str, Any] | None = None,
    logger: logging.Logger | None = None,
    fetch=None,
    checkpoint: Checkpointer | None = None,
    traceparent: str | None = None,
) -> Outcome:
    """Run one call of a sync or async function from a sync caller. With ``checkpoint``, steps
    run inline and each is reported to it as it finishes."""
    if fn.is_async:
        return run_blocking(
            call_async(
                fn,
                body,
                target,
                sender,
                mocks=mocks,
                logger=logger,
                fetch=fetch,
                checkpoint=checkpoint,
                traceparent=traceparent,
            )
        )
    log = logger or logging.getLogger("stepline.sdk")
    try:
        _, ctx = _prepare(fn, body, target, sender, mocks, log, fetch, checkpoint, traceparent)
        output = fn.handler(ctx)
    except BaseException as err:  # noqa: BLE001 - every way out of user code is an answer
        return _failure(err, log, fn)
    return _success(output)


async def call_async(
    fn: Function,
    body: CallBody,
    target: str | None,
    sender: Sender,
    *,
    mocks: dict[str, Any] | None = None,
    logger: logging.Logger | None = None,
    fetch=None,
    checkpoint: Checkpointer | None = None,
    traceparent: str | None = None,
) -> Outcome:
    """Run one call from an async caller; a sync function runs in a worker thread so that it
    never blocks the event loop."""
    import asyncio  # already loaded: a loop is running

    if not fn.is_async:
        return await asyncio.to_thread(
            call,
            fn,
            body,
            target,
            sender,
            mocks=mocks,
            logger=logger,
            fetch=fetch,
            checkpoint=checkpoint,
            traceparent=traceparent,
        )
    log = logger or logging.getLogger("stepline.sdk")
    try:
        if fetch is not None and (body.use_api or body.ctx.use_api):
            events, steps = await asyncio.to_thread(fetch, body.ctx.run_id)
            body = body.model_copy(update={"events": events, "steps": steps, "use_api": False})
            body.ctx.use_api = False
        _, ctx = _prepare(fn, body, target, sender, mocks, log, None, checkpoint, traceparent)
        output = await fn.handler(ctx)
    except BaseException as err:  # noqa: BLE001
        return _failure(err, log, fn)
    return _success(output)


def _success(output: Any) -> Outcome:
    try:
        return Outcome(200, to_json_value(output, "the function's return value"))
    except SdkError as err:
        body = {**error_body(err), "code": "output_unserializable"}
        return Outcome(500, body, {H_NO_RETRY: "true"})


def _failure(err: BaseException, log: logging.Logger, fn: Function) -> Outcome:
    if isinstance(err, Interrupt):
        return Outcome(206, err.ops, {H_NO_RETRY: "true"} if err.no_retry else {})
    if isinstance(err, CallAborted) and err.stale:
        # The server refused a checkpoint: another call holds the run, or it ended. Say so
        # the way the TypeScript SDK does; the server lets the run go rather than fail it.
        body = {"name": STALE_DISPATCH, "message": str(err), "stack": ""}
        return Outcome(400, body, {H_NO_RETRY: "true"})
    if isinstance(err, Skip):
        # The code met a step the server did not ask for: it changed under this run, or it is
        # not deterministic. Retriable: a redeploy may bring the old code back.
        message = f'found step "{err.step_id}" when targeting a different step'
        return Outcome(
            500, {"code": "step_unexpected", "message": message, "name": "StepUnexpectedError", "stack": None}
        )
    if not isinstance(err, Exception):
        raise err  # KeyboardInterrupt, SystemExit: not ours to answer
    headers: dict[str, str] = {}
    if isinstance(err, SdkError):
        # A misuse of the SDK fails the same way on every attempt.
        headers[H_NO_RETRY] = "true"
    elif not is_retriable(err):
        headers[H_NO_RETRY] = "true"
    if isinstance(err, RetryAfterError):
        headers[H_RETRY_AFTER] = err.header_value()
    body = error_body(err)
    if isinstance(err, SdkError):
        body["code"] = "sdk_misuse"
    log.log(
        logging.WARNING if H_NO_RETRY in headers else logging.INFO,
        "%s: %s: %s",
        fn.composite_id,
        body["name"],
        body["message"],
    )
    return Outcome(500, body, headers)


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even when this thread already has a loop
    running (a notebook, a sync view inside an async server)."""
    import asyncio  # here, not at the top: an app of sync functions never needs it

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            result["error"] = err

    thread = threading.Thread(target=target, name="stepline-async-call")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]
