"""The Inngest SDK wire protocol: what the official SDKs send and expect (docs/protocol.md).

Pure functions and models only: no I/O, no clock (callers pass ``now``), no storage.
"""

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
