"""``step.run``: a retried, memoized unit of work."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from stepline.sdk.errors import NonRetriableError, RetryAfterError
from stepline.sdk.steps.core import Execution, NestedStep, StepRef, validate_as
from stepline.sdk.tracing import step_span

# These end the whole run (or set its retry time), as in the official SDK: a step cannot
# retry its way out of "never retry", and "retry after" is about the function's next attempt.
_FUNCTION_LEVEL = (NonRetriableError, RetryAfterError)


def _start(ex: Execution, step_id: str, output_type: Any) -> tuple[StepRef, bool, Any]:
    """(ref, done, value): done when the memo answers and the body must not run."""
    ref = ex.ref(step_id)
    if ref.memo is not None:
        return ref, True, validate_as(ref.value(), output_type)
    ex.claim_execution(ref)
    return ref, False, None


def _mocked(ex: Execution, ref: StepRef) -> None:
    has_mock, value = ex.mock_for(ref)
    if not has_mock:
        return
    if isinstance(value, BaseException):
        if isinstance(value, _FUNCTION_LEVEL):
            raise value
        ex.failed(ref, value)
    ex.succeeded(ref, value)


def run_sync(
    ex: Execution, step_id: str, fn: Callable[..., Any], args: tuple, kwargs: dict, output_type: Any = None
) -> Any:
    ref, done, value = _start(ex, step_id, output_type)
    if done:
        return value
    _mocked(ex, ref)
    try:
        with ex.inside_step(), step_span(ex.traceparent, ex.run_id, ref.user_id, ex.attempt):
            output = fn(*args, **kwargs)
            if inspect.isawaitable(output):
                raise TypeError(
                    f"step {step_id!r} returned an awaitable: declare the function "
                    "`async def` to await steps, or pass a plain callable"
                )
    except _FUNCTION_LEVEL:
        raise
    except NestedStep:
        ex.nested(ref)
    except Exception as err:  # noqa: BLE001 - any failure of the body is the step's failure
        ex.failed(ref, err)
    return validate_as(ex.settle(ref, output), output_type)


async def run_async(
    ex: Execution, step_id: str, fn: Callable[..., Any], args: tuple, kwargs: dict, output_type: Any = None
) -> Any:
    ref, done, value = _start(ex, step_id, output_type)
    if done:
        return value
    _mocked(ex, ref)
    try:
        with ex.inside_step(), step_span(ex.traceparent, ex.run_id, ref.user_id, ex.attempt):
            output = fn(*args, **kwargs)
            if inspect.isawaitable(output):
                output = await output
    except _FUNCTION_LEVEL:
        raise
    except NestedStep:
        ex.nested(ref)
    except Exception as err:  # noqa: BLE001
        ex.failed(ref, err)
    return validate_as(await ex.settle_async(ref, output), output_type)
