"""The Inngest SDK wire protocol: what the official SDKs send and expect (docs/protocol.md).

Pure functions and models only: no I/O, no clock (callers pass ``now``), no storage.

The package exports the names below, each imported from its module on first use: a user of the
SDK needs signing and durations, not the call and sync models a server parses with, and a module
imported here is paid for by every process that imports any part of the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stepline.protocol.calls import (
        CallResult,
        Opcode,
        build_call_request,
        call_headers,
        call_url,
        memo_data,
        memo_error,
        parse_call_response,
    )
    from stepline.protocol.cron import CronSpec, parse_cron
    from stepline.protocol.durations import (
        format_duration,
        parse_duration_ms,
        parse_instant_ms,
        parse_retry_after_ms,
        parse_sleep_until_ms,
    )
    from stepline.protocol.errors import ProtocolError
    from stepline.protocol.events import EventPayload, parse_event_batch
    from stepline.protocol.jsoncanon import canonical_json
    from stepline.protocol.register import (
        AppSync,
        FunctionConfig,
        Trigger,
        parse_register,
    )
    from stepline.protocol.signing import (
        bearer_matches,
        hash_event_key,
        hash_signing_key,
        sign,
        strip_key_prefix,
        verify_signature,
    )
    from stepline.protocol.urls import set_query_param, strip_query_param

# The public name → the module (in this package) that defines it.
_EXPORTS: dict[str, str] = {
    "CallResult": "calls",
    "Opcode": "calls",
    "build_call_request": "calls",
    "call_headers": "calls",
    "call_url": "calls",
    "memo_data": "calls",
    "memo_error": "calls",
    "parse_call_response": "calls",
    "CronSpec": "cron",
    "parse_cron": "cron",
    "format_duration": "durations",
    "parse_duration_ms": "durations",
    "parse_instant_ms": "durations",
    "parse_retry_after_ms": "durations",
    "parse_sleep_until_ms": "durations",
    "ProtocolError": "errors",
    "EventPayload": "events",
    "parse_event_batch": "events",
    "canonical_json": "jsoncanon",
    "AppSync": "register",
    "FunctionConfig": "register",
    "Trigger": "register",
    "parse_register": "register",
    "bearer_matches": "signing",
    "hash_event_key": "signing",
    "hash_signing_key": "signing",
    "sign": "signing",
    "strip_key_prefix": "signing",
    "verify_signature": "signing",
    "set_query_param": "urls",
    "strip_query_param": "urls",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "AppSync",
    "CallResult",
    "CronSpec",
    "EventPayload",
    "FunctionConfig",
    "Opcode",
    "ProtocolError",
    "Trigger",
    "bearer_matches",
    "build_call_request",
    "call_headers",
    "call_url",
    "canonical_json",
    "format_duration",
    "hash_event_key",
    "hash_signing_key",
    "memo_data",
    "memo_error",
    "parse_call_response",
    "parse_cron",
    "parse_duration_ms",
    "parse_event_batch",
    "parse_instant_ms",
    "parse_register",
    "parse_retry_after_ms",
    "parse_sleep_until_ms",
    "set_query_param",
    "sign",
    "strip_key_prefix",
    "strip_query_param",
    "verify_signature",
]
