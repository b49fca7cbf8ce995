"""JSON in and out, the way the wire needs it.

Call-request bodies are serialized with JCS (RFC 8785) because both SDKs verify the request
signature against the JCS form of the body they parsed, never against the raw bytes. Sending JCS
bytes makes the raw body and its canonical form the same thing (docs/protocol.md §3.2).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jcs

from stepline.protocol.errors import ProtocolError


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 bytes for ``obj``: sorted keys, no whitespace, ECMAScript number format.

    Raises ValueError for values JSON cannot carry (NaN, infinities, non-string keys).
    """
    try:
        return jcs.canonicalize(obj)
    except (AttributeError, TypeError) as err:
        # jcs reports a non-string object key as an AttributeError on int/None.
        raise ValueError(f"value cannot be canonicalized as JSON: {err}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # 1e400 parses to infinity, which JCS (and so signing and storage) cannot write back.
        raise ValueError(f"number {text[:40]} is out of range")
    return value


# Only a number with a long run of digits or a three-digit exponent can overflow a double: the
# checking hooks cost a Python call per number, so they run only when the text holds one.
_BIG_NUMBER = re.compile(r"\d{300}|[eE][+-]?\d{3}")


def _bounded_int(text: str) -> int:
    value = int(text)
    if len(text) > 300:
        try:
            float(value)  # JCS writes numbers as IEEE doubles: a larger one cannot be sent on
        except OverflowError:
            raise ValueError(f"number {text[:40]}... is out of range") from None
    return value


# Bytes are decoded strictly as UTF-8, so a surrogate reaches a parsed string only through a
# \uD800-\uDFFF escape; json pairs the valid ones, so any left is a lone one. The cheap scan of
# the text decides whether the parsed value needs walking at all.
_MAYBE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate_at(value: Any) -> str | None:
    """The path of the first string (key or value) holding a lone surrogate, or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path or "(top level)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if _SURROGATE.search(key):
                    escaped = key.encode("utf-8", "backslashreplace").decode()
                    return f"{path}.{escaped}" if path else escaped
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


def loads(body: bytes | str, where: str = "body") -> Any:
    """Parse JSON strictly: NaN, Infinity, numbers beyond a double's range and lone surrogates
    are refused (JCS cannot re-serialize them, and neither SQLite's UTF-8 nor DynamoDB can store
    the last, so a body holding one could never be signed or stored faithfully)."""
    try:
        text = body.decode("utf-8") if isinstance(body, (bytes, bytearray)) else body
        if _BIG_NUMBER.search(text):
            value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_bounded_int)
        else:
            value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"{where}: invalid JSON: {err}") from None
    except RecursionError:
        # Deep nesting exhausts the parser's stack: a client error, never a crash of ours.
        raise ProtocolError(f"{where}: invalid JSON: nested too deeply") from None
    if _MAYBE_SURROGATE.search(text):
        path = _lone_surrogate_at(value)
        if path is not None:
            raise ProtocolError(
                f"{where}: invalid JSON: the string at {path} holds a lone surrogate (not valid Unicode)"
            )
    return value
