"""The one error type of the protocol layer.

Every parser here reports bad input as a ``ProtocolError`` whose message starts with the path
of the offending field (``events[1].name: ...``), so an HTTP handler can answer a 4xx that tells
the sender exactly what to fix, without knowing anything about the parser that failed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydantic


class ProtocolError(ValueError):
    """Input that does not follow the wire protocol. ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"ProtocolError({self.message!r}, status={self.status})"


def join_path(prefix: str, loc: Iterable[Any]) -> str:
    """``("functions", 2, "triggers", 0)`` under ``"body"`` → ``"functions[2].triggers[0]"``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif path:
            path += f".{part}"
        else:
            path = str(part)
    return path or "body"


# pydantic error types → the short, field-level wording we answer with.
_MESSAGES = {
    "missing": "is required",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "int_parsing": "must be an integer",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
}


def from_validation_error(err: pydantic.ValidationError, prefix: str = "") -> ProtocolError:
    """The first problem pydantic found, as a ProtocolError naming its path.

    Only the first one: a client fixes one field at a time, and a long list of cascading union
    mismatches helps nobody.
    """
    first = err.errors(include_url=False)[0]
    loc = [p for p in first.get("loc", ()) if not _is_union_tag(p)]
    path = join_path(prefix, loc)
    kind = first.get("type", "")
    ctx = first.get("ctx") or {}
    if kind == "value_error":
        # Our validators raise ValueError (or ProtocolError) phrased for the field; pydantic's
        # own msg would prefix it with "Value error, ".
        ctx_err = ctx.get("error")
        if isinstance(ctx_err, ProtocolError):
            return ProtocolError(f"{path}: {ctx_err.message}", ctx_err.status)
        message = str(ctx_err) if ctx_err is not None else first.get("msg", "invalid value")
    elif kind == "greater_than_equal":
        message = f"must be at least {ctx.get('ge')}"
    elif kind == "less_than_equal":
        message = f"must be at most {ctx.get('le')}"
    elif kind == "literal_error":
        message = f"must be one of {ctx.get('expected')}"
    else:
        message = _MESSAGES.get(kind, first.get("msg", "invalid value"))
    return ProtocolError(f"{path}: {message}")


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the member type name ("int", "list[...]") into loc for union members.
    return isinstance(part, str) and ("[" in part or part in {"int", "str", "dict", "list"})
