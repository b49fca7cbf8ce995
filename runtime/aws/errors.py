"""How AWS failures become engine errors.

The engine knows two outcomes besides success: a lost conditional write (the adapter returns
False) and ``StoreError`` (the message is retried by the queue). Everything boto3 can raise is
mapped onto one of those here, so no ``botocore`` exception type leaks past ``stepline.aws``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from stepline.engine.ports import StoreError

CONDITION_FAILED = "ConditionalCheckFailedException"


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return str(exc) or type(exc).__name__


@contextmanager
def translated(action: str, *, ignore: tuple[str, ...] = ()) -> Iterator[None]:
    """Run an AWS call, turning its failures into ``StoreError``.

    ``ignore`` names error codes that mean "already in the wanted state" for this call (a
    deleted schedule that is deleted again); they are swallowed.
    """
    try:
        yield
    except ClientError as exc:
        if error_code(exc) in ignore:
            return
        raise StoreError(f"{action} failed: {describe(exc)}") from exc
    except BotoCoreError as exc:
        raise StoreError(f"{action} failed: {describe(exc)}") from exc
