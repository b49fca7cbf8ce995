"""JSON in and out, the way the wire needs it.

Call-request bodies are serialized with JCS (RFC 8785) because both SDKs verify the request
signature against the JCS form of the body they parsed, never against the raw bytes. Sending JCS
bytes makes the raw body and its canonical form the same thing (PROTOCOL §3.2).
"""

from __future__ import annotations

import json
from typing import Any

import jcs

from runtime.protocol.errors import ProtocolError


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


def loads(body: bytes | str, where: str = "body") -> Any:
    """Parse JSON strictly: NaN and Infinity are refused (JCS cannot re-serialize them, so a
    body holding one could never be signed or stored faithfully)."""
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProtocolError(f"{where}: invalid JSON: {err}") from None
    except RecursionError:
        # Deep nesting exhausts the parser's stack: a client error, never a crash of ours.
        raise ProtocolError(f"{where}: invalid JSON: nested too deeply") from None
