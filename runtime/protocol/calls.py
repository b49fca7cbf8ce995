"""Call requests to the SDK and its answers (docs/protocol.md §5–8, §12, §15).

The request shape is dictated by the strictest reader: the Python SDK validates the body with a
strict pydantic model (an ``attempt`` of ``"0"`` or a float ``ts`` is a 500), reads ``use_api``
only at the top level, while TS reads it only in ``ctx``. TS3 falls back to a legacy protocol on
``version: 0``, so that is never sent. ``ctx.fn_id`` and ``ctx.qi_id`` let the TS SDK checkpoint
(docs/protocol.md §17.1): it runs steps inline and reports them to ``/v1/checkpoint``.

Responses are parsed without ever raising: whatever the app answers becomes a ``CallResult`` the
executor can act on, a garbled body included (a retriable error).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepline.protocol.durations import MAX_LOOKBACK_MS, parse_duration_ms, parse_retry_after_ms, parse_sleep_until_ms
from stepline.protocol.errors import ProtocolError, from_validation_error
from stepline.protocol.jsoncanon import loads
from stepline.protocol.opcodes import DISCOVERY_STEP_ID, Op
from stepline.protocol.register import check_cel
from stepline.protocol.signals import check_signal_op
from stepline.protocol.signing import sign
from stepline.protocol.urls import set_query_param

MALFORMED = "MalformedResponse"
# Longest step id accepted in a reply (the SDKs send 40-character hashes).
MAX_STEP_ID_BYTES = 512

H_SIGNATURE = "X-Inngest-Signature"
H_SERVER_KIND = "X-Inngest-Server-Kind"
H_REQUEST_ID = "X-Request-Id"
H_NO_RETRY = "x-inngest-no-retry"
H_RETRY_AFTER = "retry-after"
H_REQ_VERSION = "x-inngest-req-version"


# -- requests ---------------------------------------------------------------------------------


def _wire_event(event: dict[str, Any], where: str) -> dict[str, Any]:
    """The event as the strictest SDK accepts it: string ``id``, integer ``ts``, object ``data``.

    A missing ``id``/``ts`` is fine for every SDK (they become ""/0), a null one is a 500 in
    Python, so nulls are dropped rather than sent.
    """
    if not isinstance(event, dict) or not isinstance(event.get("name"), str):
        raise ValueError(f"{where}: must be an event object with a string name")
    out = dict(event)
    if out.get("data") is None:
        out["data"] = {}
    if out.get("id") is None:
        out.pop("id", None)
    elif not isinstance(out["id"], str):
        out["id"] = str(out["id"])
    ts = out.get("ts")
    if ts is None:
        out.pop("ts", None)
    elif isinstance(ts, float):
        out["ts"] = int(ts)
    return out


def build_call_request(
    *,
    run_id: str,
    attempt: int,
    max_attempts: int,
    events: list[dict],
    steps: dict[str, dict],
    stack: list[str],
    disable_immediate: bool,
    use_api: bool,
    version: int,
    step_id: str = DISCOVERY_STEP_ID,
    fn_id: str | None = None,
    qi_id: str = "",
) -> dict:
    """The call-request body of §5.2. Serialize it with ``canonical_json`` and sign those bytes.

    ``fn_id`` (the run's function) and ``qi_id`` (the token of the call holding the run) let a
    TS SDK checkpoint; ``steps`` is used as given, not copied (callers hand over a map they do
    not change while the body is built)."""
    if not events:
        raise ValueError("events: a call request needs at least the triggering event")
    wire_events = [_wire_event(e, f"events[{i}]") for i, e in enumerate(events)]
    stack_list = stack if isinstance(stack, list) else list(stack)
    use_api = bool(use_api)
    ctx: dict[str, Any] = {
        "attempt": int(attempt),
        "disable_immediate_execution": bool(disable_immediate),
        "env": "",
        "max_attempts": int(max_attempts),
        "qi_id": qi_id,
        "run_id": run_id,
        "stack": {"current": len(stack_list), "stack": stack_list},
        "step_id": step_id,
        "use_api": use_api,
    }
    if fn_id:
        ctx["fn_id"] = fn_id
    return {
        "ctx": ctx,
        "event": wire_events[0],
        "events": wire_events,
        "steps": steps if isinstance(steps, dict) else dict(steps),
        "use_api": use_api,
        # 0 selects the legacy V0 protocol in TS3 and is an error in TS4: "let the SDK decide".
        "version": int(version) if version and version > 0 else -1,
    }


def call_url(function_url: str, step_id: str) -> str:
    """The registered call URL aimed at ``step_id`` (``DISCOVERY_STEP_ID`` for discovery)."""
    return set_query_param(function_url, "stepId", step_id)


def call_headers(
    body: bytes,
    *,
    signing_key: str | None,
    now_s: int,
    server_kind: str | None = None,
    request_id: str | None = None,
) -> dict[str, str]:
    """Headers for a call request. ``server_kind`` must match the SDK's mode, or be left out."""
    headers = {"Content-Type": "application/json"}
    if signing_key:
        headers[H_SIGNATURE] = sign(body, signing_key, now_s)
    if server_kind:
        headers[H_SERVER_KIND] = server_kind
    if request_id:
        headers[H_REQUEST_ID] = request_id
    return headers


# -- memos ------------------------------------------------------------------------------------


def memo_data(value: Any) -> dict:
    """A success memo. Exactly one key: ``{"data": …, "error": null}`` breaks TS."""
    return {"data": value}


def memo_error(err: dict | None) -> dict:
    """A failure memo: exactly ``name``, ``message`` and ``stack``, all strings.

    Python takes an error with a missing or non-string ``name``/``message`` as raw data instead
    of raising it, and extra keys (Python's ``code``, TS's ``__serialized``) serve no reader.
    """
    src = err if isinstance(err, dict) else {}

    def text(key: str, default: str) -> str:
        value = src.get(key)
        return value if isinstance(value, str) else default

    return {
        "error": {
            "name": text("name", "Error"),
            "message": text("message", "unknown error"),
            "stack": text("stack", ""),
        }
    }


# -- responses --------------------------------------------------------------------------------


class Opcode(BaseModel):
    """One element of a 206 reply. Only ``id`` and ``op`` are always meaningful; ``wire_op`` is
    the op's name as the app sent it (the same text as ``op``, unless ``op`` is ``UNKNOWN``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    op: Op
    wire_op: str = ""
    name: str = ""
    display_name: str | None = Field(default=None, alias="displayName")
    opts: dict[str, Any] | None = None
    data: Any = None
    error: dict[str, Any] | None = None
    userland: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _read_op(cls, raw: Any) -> Any:
        # Any non-empty name is an op: one this runtime does not know fails its step, so the
        # reply as a whole is still usable (see ``stepline.protocol.opcodes``).
        if isinstance(raw, dict) and isinstance(raw.get("op"), str) and raw["op"]:
            raw = {**raw, "op": Op.read(raw["op"]), "wire_op": raw["op"]}
        return raw

    @field_validator("id", "op", mode="before")
    @classmethod
    def _required_text(cls, v: Any) -> Any:
        if not isinstance(v, str) or not v:
            raise ValueError("must be a non-empty string")
        return v

    @field_validator("id")
    @classmethod
    def _id_fits_a_key(cls, v: str) -> str:
        # Both SDKs send a 40-character hash; the id becomes part of the store's keys.
        if len(v.encode("utf-8")) > MAX_STEP_ID_BYTES:
            raise ValueError(f"must be at most {MAX_STEP_ID_BYTES} bytes (step ids are hashes)")
        return v

    @field_validator("name", mode="before")
    @classmethod
    def _name_text(cls, v: Any) -> Any:
        return "" if v is None else v

    @model_validator(mode="after")
    def _options_usable(self) -> Opcode:
        # What the engine acts on is checked here: a bad value makes the whole reply malformed
        # (retried, then the run fails naming the op and field) rather than failing the engine
        # halfway through starting the op.
        check = _OPTION_CHECKS.get(self.op)
        if check is not None:
            check(self)
        return self

    @field_validator("error", mode="before")
    @classmethod
    def _error_object(cls, v: Any) -> Any:
        # A thrown non-Error value may serialize as a bare string; keep its text.
        if v is None or isinstance(v, dict):
            return v
        return {"name": "Error", "message": v if isinstance(v, str) else json.dumps(v)}

    @property
    def display(self) -> str:
        """What a person calls this step: ``displayName``, else ``userland.id``, else ``name``
        (TS names every sendEvent step ``"sendEvent"``)."""
        if self.display_name:
            return self.display_name
        user_id = (self.userland or {}).get("id")
        if isinstance(user_id, str) and user_id:
            return user_id
        return self.name

    @property
    def options(self) -> dict[str, Any]:
        """``opts`` with null read as empty (Python sends null, TS ``{}``)."""
        return self.opts or {}

    @property
    def sleep_value(self) -> str:
        """A Sleep's duration or date: ``opts.duration`` if present, else ``name`` (§6.4)."""
        duration = self.options.get("duration")
        return duration if isinstance(duration, str) and duration else self.name

    @property
    def wait_event(self) -> str:
        """A WaitForEvent's event name: ``opts.event`` if present, else ``name`` (§6.4)."""
        event = self.options.get("event")
        return event if isinstance(event, str) and event else self.name

    @property
    def parallel_mode(self) -> str | None:
        mode = self.options.get("parallelMode")
        return mode if isinstance(mode, str) else None


def _check_sleep(op: Opcode) -> None:
    duration = op.options.get("duration")
    where = "opts.duration" if isinstance(duration, str) and duration else "name"
    try:
        parse_sleep_until_ms(op.sleep_value, 0)
    except ProtocolError as err:
        raise ValueError(f"{where}: {err.message}") from None


def _check_timeout(op: Opcode) -> None:
    timeout = op.options.get("timeout")
    if not timeout:
        return  # none, or "" (already expired: TS sends it for negative durations)
    if not isinstance(timeout, str):
        raise ValueError(f"opts.timeout: must be a duration string, got {json.dumps(timeout)[:40]}")
    try:
        parse_duration_ms(timeout)
    except ProtocolError as err:
        raise ValueError(f"opts.timeout: {err.message}") from None


def wait_lookback_ms(op: Opcode) -> int:
    """A WaitForEvent's look-back in ms (0 when it has none)."""
    lookback = op.options.get("lookback")
    return parse_duration_ms(lookback) if isinstance(lookback, str) and lookback else 0


def _check_wait(op: Opcode) -> None:
    if not op.wait_event:
        raise ValueError("opts.event: the event to wait for is missing (in opts.event or name)")
    _check_timeout(op)
    lookback = op.options.get("lookback")
    if lookback not in (None, ""):
        if not isinstance(lookback, str):
            raise ValueError(f"opts.lookback: must be a duration string, got {json.dumps(lookback)[:40]}")
        try:
            lookback_ms = parse_duration_ms(lookback)
        except ProtocolError as err:
            raise ValueError(f"opts.lookback: {err.message}") from None
        if lookback_ms > MAX_LOOKBACK_MS:
            raise ValueError(f"opts.lookback: {lookback} is longer than the most a wait may look back, 24h")
    expression = op.options.get("if")
    if expression is None or expression == "":
        return
    if not isinstance(expression, str):
        raise ValueError("opts.if: must be a CEL expression string")
    try:
        check_cel(expression)
    except ValueError as err:
        raise ValueError(f"opts.if: {err}") from None


def _check_invoke(op: Opcode) -> None:
    _check_timeout(op)
    payload = op.options.get("payload")
    if payload is None:
        return
    if not isinstance(payload, dict):
        raise ValueError("opts.payload: must be an object (the event to send)")
    for key, kind, what in (("data", dict, "an object"), ("id", str, "a string"), ("v", str, "a string")):
        if payload.get(key) is not None and not isinstance(payload[key], kind):
            raise ValueError(f"opts.payload.{key}: must be {what}")


def _check_signal(op: Opcode) -> None:
    check_signal_op(op)
    _check_timeout(op)


_OPTION_CHECKS = {
    Op.SLEEP: _check_sleep,
    Op.WAIT_FOR_EVENT: _check_wait,
    Op.WAIT_FOR_SIGNAL: _check_signal,
    Op.INVOKE_FUNCTION: _check_invoke,
}


@dataclass
class CallResult:
    kind: Literal["complete", "ops", "error"]
    output: Any = None
    ops: list[Opcode] = field(default_factory=list)
    error: dict | None = None
    no_retry: bool = False
    retry_at_ms: int | None = None
    req_version: int | None = None
    status: int = 0


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _req_version(value: str | None) -> int | None:
    """The execution version the SDK echoes (1 or 2 today); None when absent or not a small
    integer, which the run would store and send back on every call."""
    try:
        version = int(value) if value is not None else None
    except ValueError:
        return None
    return version if version is not None and abs(version) < 2**31 else None


def _malformed(status: int, req_version: int | None, retry_at: int | None, why: str) -> CallResult:
    # Retriable: a truncated or proxied reply says nothing about the user's code.
    return CallResult(
        kind="error",
        error={"name": MALFORMED, "message": why, "stack": ""},
        no_retry=False,
        retry_at_ms=retry_at,
        req_version=req_version,
        status=status,
    )


def parse_call_response(status: int, headers: Mapping[str, str], body: bytes, now_ms: int) -> CallResult:
    """What the SDK answered, by status: 200 done, 206 ops, 201 stream envelope, else error."""
    return _parse(status, _lower(headers), body, now_ms, streamed=False)


def _parse(status: int, h: dict[str, str], body: bytes, now_ms: int, streamed: bool) -> CallResult:
    no_retry = h.get(H_NO_RETRY, "").strip().lower() == "true"
    retry_after = h.get(H_RETRY_AFTER)
    retry_at = parse_retry_after_ms(retry_after, now_ms) if retry_after is not None else None
    req_version = _req_version(h.get(H_REQ_VERSION))

    if status == 201:
        if streamed:
            return _malformed(status, req_version, retry_at, "stream envelope: nested 201 status")
        return _parse_stream(h, body, now_ms, req_version, retry_at)

    if status == 200:
        if not body.strip():
            output = None
        else:
            try:
                output = loads(body)
            except ProtocolError as err:
                return _malformed(status, req_version, retry_at, f"200 {err.message}")
        return CallResult(kind="complete", output=output, req_version=req_version, status=status)

    if status == 206:
        try:
            ops = _parse_ops(body)
        except ProtocolError as err:
            return _malformed(status, req_version, retry_at, f"206 {err.message}")
        return CallResult(
            kind="ops",
            ops=ops,
            no_retry=no_retry,
            retry_at_ms=retry_at,
            req_version=req_version,
            status=status,
        )

    return CallResult(
        kind="error",
        error=_error_object(status, body),
        # TS answers NonRetriableError with 400; a 400 never succeeds on a retry anyway.
        no_retry=no_retry or status == 400,
        retry_at_ms=retry_at,
        req_version=req_version,
        status=status,
    )


def _parse_ops(body: bytes) -> list[Opcode]:
    if not body.strip():
        raise ProtocolError("body: empty, expected an array of opcodes")
    raw = loads(body)
    if raw is None:
        return []
    if isinstance(raw, dict):  # very old SDKs send one bare op
        raw = [raw]
    if not isinstance(raw, list):
        raise ProtocolError("body: must be an array of opcodes")
    ops: list[Opcode] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ProtocolError(f"ops[{index}]: must be an object")
        try:
            ops.append(Opcode.model_validate(item))
        except pydantic.ValidationError as err:
            raise from_validation_error(err, f"ops[{index}]") from None
    return ops


def _parse_stream(
    h: dict[str, str], body: bytes, now_ms: int, req_version: int | None, retry_at: int | None
) -> CallResult:
    """Unwrap §12's ``{status, headers, body}`` envelope that follows the keep-alive spaces."""
    text = body.lstrip()
    if not text:
        return _malformed(201, req_version, retry_at, "stream ended without a final envelope")
    try:
        envelope = loads(text, "stream envelope")
    except ProtocolError as err:
        return _malformed(201, req_version, retry_at, err.message)
    if not isinstance(envelope, dict):
        return _malformed(201, req_version, retry_at, "stream envelope: must be an object")
    inner_status = envelope.get("status")
    if isinstance(inner_status, bool) or not isinstance(inner_status, int):
        return _malformed(201, req_version, retry_at, "stream envelope.status: must be an integer")

    inner_headers = dict(h)
    env_headers = envelope.get("headers")
    if isinstance(env_headers, dict):
        inner_headers.update(_lower({k: v for k, v in env_headers.items() if v is not None}))
    if envelope.get("noRetry") is True:  # Go's envelope form
        inner_headers[H_NO_RETRY] = "true"
    if isinstance(envelope.get("retryAt"), str) and H_RETRY_AFTER not in inner_headers:
        inner_headers[H_RETRY_AFTER] = envelope["retryAt"]

    return _parse(inner_status, inner_headers, _inner_body(envelope.get("body")), now_ms, True)


def _inner_body(value: Any) -> bytes:
    """The envelope body as the bytes a non-streamed reply would have carried.

    Python puts the JSON-encoded body in a string; Go also accepts the value itself. A string
    that is not valid JSON is therefore a bare string result.
    """
    if value is None:
        return b""
    if isinstance(value, str):
        try:
            loads(value)
            return value.encode("utf-8")
        except ProtocolError:
            return json.dumps(value).encode("utf-8")
    return json.dumps(value).encode("utf-8")


def _error_object(status: int, body: bytes) -> dict:
    """The SDK's error object, made to carry at least a string ``name`` and ``message``."""
    snippet = body[:500].decode("utf-8", errors="replace").strip()
    try:
        parsed = loads(body) if body.strip() else None
    except ProtocolError:
        parsed = None
    if isinstance(parsed, dict):
        err = dict(parsed)
        if not isinstance(err.get("message"), str):
            # TS "step not found" replies carry {error, requestedStep, foundSteps}.
            detail = err.get("error")
            err["message"] = detail if isinstance(detail, str) else f"HTTP {status}"
        if not isinstance(err.get("name"), str):
            err["name"] = "Error"
        return err
    if isinstance(parsed, str):
        return {"name": "Error", "message": parsed, "stack": ""}
    message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    return {"name": "HTTPError", "message": message, "stack": ""}
