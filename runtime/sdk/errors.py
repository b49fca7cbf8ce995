"""Errors users raise and catch inside functions, and how each one travels on the wire.

The server decides what to do with a failure from the HTTP status and two headers only
(docs/protocol.md §6.1): ``x-inngest-no-retry: true`` fails the run at once, ``retry-after`` sets the
next attempt's time, anything else is retried with backoff. Each error class here carries the
``code`` the Python SDKs put in the error body, so a dashboard shows the same words.
"""

from __future__ import annotations

import datetime
import math
import traceback
from typing import Any

from stepline.protocol.durations import parse_duration_ms


class SdkError(Exception):
    """Misuse of the SDK found before anything reaches the wire (bad config, bad step args)."""


class NonRetriableError(Exception):
    """Raise to fail the run now: retrying cannot help (bad input, a permanent refusal)."""

    code = "non_retriable_error"

    def __init__(self, message: str = "", *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        if cause is not None:
            self.__cause__ = cause


class RetryAfterError(Exception):
    """Raise to be retried no earlier than ``retry_after``.

    ``retry_after`` is a duration (``"30s"``, a timedelta: counted on the server's clock) or
    an aware datetime (an instant; a naive one is read as UTC).
    """

    code = "retry_after_error"

    def __init__(self, message: str, retry_after: str | datetime.timedelta | datetime.datetime) -> None:
        super().__init__(message)
        self.message = message
        if isinstance(retry_after, str):
            retry_after = datetime.timedelta(milliseconds=parse_duration_ms(retry_after))
        if not isinstance(retry_after, (datetime.timedelta, datetime.datetime)):
            raise SdkError("retry_after: expected a duration string, a timedelta or a datetime")
        self.retry_after = retry_after

    def header_value(self) -> str:
        """Seconds for a duration (the server adds them to its own clock), ISO for an instant.

        Servers read up to 7 characters as seconds and anything longer as a date (Go's rule).
        """
        if isinstance(self.retry_after, datetime.timedelta):
            seconds = max(0, math.ceil(self.retry_after.total_seconds()))
            if seconds < 10_000_000:
                return str(seconds)
            instant = datetime.datetime.now(datetime.UTC) + self.retry_after
        else:
            instant = self.retry_after
        return iso_utc(instant)


class StepError(Exception):
    """A step that failed for good, raised where its result was expected.

    Catch it to recover (compensate, notify, take another path); left uncaught it fails the
    run without further retries, since the step's own retries are already spent.
    """

    code = "step_errored"

    def __init__(self, message: str, *, name: str = "Error", stack: str | None = None, step_id: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.stack = stack
        self.step_id = step_id


class CodedError(Exception):
    """An SDK-side failure with a wire code (``step_unexpected``, ``function_not_found``…)."""

    def __init__(self, code: str, message: str, *, retriable: bool = True) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retriable = retriable


def iso_utc(instant: datetime.datetime) -> str:
    """``2026-11-22T21:28:24.215Z``: the Python SDK's instant format (naive means UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=datetime.UTC)
    utc = instant.astimezone(datetime.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def error_code(err: BaseException) -> str:
    code = getattr(err, "code", None)
    return code if isinstance(code, str) else "unknown"


def is_retriable(err: BaseException) -> bool:
    if isinstance(err, (NonRetriableError, StepError)):
        return False
    if isinstance(err, CodedError):
        return err.retriable
    return True


def error_name(err: BaseException) -> str:
    if isinstance(err, StepError):
        return err.name
    return type(err).__name__


def error_message(err: BaseException) -> str:
    message = getattr(err, "message", None)
    return message if isinstance(message, str) else str(err)


def error_stack(err: BaseException) -> str:
    if isinstance(err, StepError) and err.stack:
        return err.stack
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


def error_body(err: BaseException) -> dict[str, Any]:
    """The error object of a failed call or step: ``{code, message, name, stack}``."""
    return {
        "code": error_code(err),
        "message": error_message(err),
        "name": error_name(err),
        "stack": error_stack(err),
    }


class SendEventsError(Exception):
    """The Event API refused the events (or stayed unreachable through every retry).

    ``ids`` holds the ids of events the server accepted before the failure, if it said.
    """

    code = "send_event_failed"

    def __init__(self, message: str, ids: list[str] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.ids = ids or []
        self.status = status
