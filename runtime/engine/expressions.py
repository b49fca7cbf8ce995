"""CEL expressions as Inngest writes them (`event.data.x == 'y'`, `async.data.id == event.data.id`).

Compiled programs are cached by source: trigger expressions are evaluated for every event.
"""

from __future__ import annotations

import threading
from typing import Any

from stepline.protocol import cel_library as cel

_cache: dict[str, Any] = {}
_lock = threading.Lock()


class ExpressionError(ValueError):
    pass


def compile_expression(source: str) -> Any:
    program = _cache.get(source)
    if program is None:
        try:
            program = cel.compile(source)
        except ValueError as exc:
            raise ExpressionError(f"invalid expression {source!r}: {exc}") from exc
        with _lock:
            _cache[source] = program
    return program


def evaluate(source: str, context: dict[str, Any]) -> Any:
    return compile_expression(source).execute(context)


def matches(source: str | None, context: dict[str, Any]) -> bool:
    """True when there is no expression or it evaluates to true.

    A reference to a missing field, or an evaluation error, means "no match", never an
    exception: one event with an unexpected shape must not break ingest for the others.
    """
    if not source:
        return True
    try:
        return evaluate(source, context) is True
    except ExpressionError:
        return False
    except Exception:  # noqa: BLE001 - CEL raises KeyError/TypeError/RuntimeError on bad data
        return False
