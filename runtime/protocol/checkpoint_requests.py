"""The server's side of checkpointed calls (docs/protocol.md §17): parsing what checkpointing SDKs
send, a ``/v1/checkpoint`` body or a line of a checkpoint stream. Each parser names the field at
fault in the ``ProtocolError`` it raises."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, field_validator

from stepline.protocol.calls import Opcode
from stepline.protocol.errors import ProtocolError, from_validation_error
from stepline.protocol.opcodes import Op


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")

    run_id: str
    fn_id: str
    qi_id: str
    request_id: str | None = None
    generation_id: int | None = None
    request_started_at: int | None = None
    steps: list[Any]
    ts: int | None = None

    @field_validator("run_id", "fn_id", "qi_id")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must be a non-empty string")
        return v


@dataclass(frozen=True)
class CheckpointRequest:
    """A parsed ``POST /v1/checkpoint/{run_id}/async`` body. ``qi_id`` is the token the call
    request carried (Stepline puts the call's lease holder there)."""

    run_id: str
    fn_id: str
    qi_id: str
    steps: list[Opcode]
    request_started_at: int | None = None


def parse_checkpoint_request(raw: Any) -> CheckpointRequest:
    """The body as the TS SDKs send it; a ``ProtocolError`` naming the field otherwise.

    Steps are the SDK's own step objects (TS sends its internal fields too: ``mode``,
    ``rawArgs``, ``hashedId``...), read as ops; only ``StepRun`` results are checkpointed.
    """
    if not isinstance(raw, dict):
        raise ProtocolError("body: must be a JSON object")
    try:
        body = _Body.model_validate(raw)
    except pydantic.ValidationError as err:
        raise from_validation_error(err) from None
    steps: list[Opcode] = []
    for index, item in enumerate(body.steps):
        if not isinstance(item, dict):
            raise ProtocolError(f"steps[{index}]: must be an object")
        try:
            op = Opcode.model_validate(item)
        except pydantic.ValidationError as err:
            raise from_validation_error(err, f"steps[{index}]") from None
        if op.op != Op.STEP_RUN:
            raise ProtocolError(f"steps[{index}].op: {op.wire_op!r} cannot be checkpointed; only StepRun results can")
        steps.append(op)
    if not steps:
        raise ProtocolError("steps: must hold at least one step")
    return CheckpointRequest(body.run_id, body.fn_id, body.qi_id, steps, body.request_started_at)


@dataclass(frozen=True)
class StreamLine:
    """One line of a checkpoint stream: a step done (``step``), or the call's answer."""

    step: Opcode | None = None
    status: int = 0
    headers: dict[str, str] | None = None
    body: bytes = b""


def parse_stream_line(raw: bytes) -> StreamLine:
    """A line as the executor reads it; ``ProtocolError`` for anything malformed (the executor
    then stops reading and treats the call as failed, retriable)."""
    try:
        value = json.loads(raw)
    except ValueError as err:
        raise ProtocolError(f"checkpoint stream: a line is not JSON: {err}") from None
    if not isinstance(value, dict) or len(value) != 1:
        raise ProtocolError('checkpoint stream: each line must be {"step": op} or {"result": reply}')
    if "step" in value:
        if not isinstance(value["step"], dict):
            raise ProtocolError("checkpoint stream: step must be an object")
        try:
            op = Opcode.model_validate(value["step"])
        except pydantic.ValidationError as err:
            raise from_validation_error(err, "checkpoint stream step") from None
        if op.op != Op.STEP_RUN:
            raise ProtocolError(f"checkpoint stream step.op: {op.wire_op!r} cannot be checkpointed")
        return StreamLine(step=op)
    result = value.get("result")
    if not isinstance(result, dict):
        raise ProtocolError('checkpoint stream: each line must be {"step": op} or {"result": reply}')
    status = result.get("status")
    if isinstance(status, bool) or not isinstance(status, int):
        raise ProtocolError("checkpoint stream result.status: must be an integer")
    headers = result.get("headers") or {}
    if not isinstance(headers, dict):
        raise ProtocolError("checkpoint stream result.headers: must be an object")
    body = result.get("body")
    text = b"" if body is None and status != 200 else json.dumps(body).encode("utf-8")
    return StreamLine(status=status, headers={str(k): str(v) for k, v in headers.items()}, body=text)
