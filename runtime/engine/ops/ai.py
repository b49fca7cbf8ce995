"""`AIGateway` (`step.ai.infer`): Stepline makes the model request the op describes and records
the provider's answer as the step's result, so the app is not running, nor billed, while the
model thinks (docs/protocol.md §6.4).

The op's ``opts`` are the request: ``url``, ``body``, the user's ``headers``, the provider's
``auth_key`` and the ``format`` that says how the key is presented. The request is kept on the
pending op until the step settles (the key under ``SECRET_DETAIL``, which no reader shows),
and an ``ai_call`` message makes it, as a job of its own: it claims the op, like a planned step's
job, so a redelivered or swept message never asks the model twice at once. A failed request is
retried at the provider's ``Retry-After`` or after the usual backoff, within the function's
retries; the last failure, or a refusal that a retry cannot fix, settles the step with an error
the user's code can catch.
"""

from __future__ import annotations

import json
import logging
from enum import Enum
from typing import Any

import pydantic
from pydantic import BaseModel, Field

from stepline.engine import messages
from stepline.engine.http import CallFailed, HttpCaller
from stepline.engine.ids import IdGenerator
from stepline.engine.ops.tools import OpTools
from stepline.engine.ports import AppStore, Clock, PendingOp, RunState, RunStore
from stepline.engine.records import SECRET_DETAIL
from stepline.engine.resume import Resumer
from stepline.engine.retry import backoff_ms
from stepline.engine.scheduling import Waker
from stepline.protocol.calls import Opcode, memo_data, memo_error
from stepline.protocol.durations import parse_retry_after_ms
from stepline.protocol.errors import from_validation_error
from stepline.protocol.opcodes import Op
from stepline.settings import Settings

log = logging.getLogger(__name__)

AI_GATEWAY = Op.AI_GATEWAY
# Provider answers a retry cannot change: the request itself is wrong (or not allowed).
_FINAL_STATUSES = frozenset(range(400, 500)) - {408, 409, 425, 429}
# How much of a provider's error body goes into the step's error message.
_ERROR_BODY_CHARS = 500


class AiFormat(str, Enum):
    """How the provider expects its key (the SDKs' adapter formats)."""

    OPENAI_CHAT = "openai-chat"  # OpenAI, and the APIs modelled on it (DeepSeek, Grok)
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"  # the key is in the URL's query already
    GROK = "grok"
    AZURE_OPENAI = "azure-openai"


class AiRequest(BaseModel):
    """The op's ``opts``, as both SDKs send them."""

    model_config = pydantic.ConfigDict(extra="ignore")

    url: str = Field(pattern=r"^https?://")
    format: AiFormat
    body: dict[str, Any]
    headers: dict[str, str] = Field(default_factory=dict)
    auth_key: str = ""

    def http_headers(self) -> dict[str, str]:
        """The request's headers: JSON, the key where the provider looks for it, then the user's
        own (which win: a user who set the auth header knows better)."""
        headers = {"Content-Type": "application/json"}
        if self.auth_key:
            if self.format is AiFormat.ANTHROPIC:
                headers["x-api-key"] = self.auth_key
                headers["anthropic-version"] = "2023-06-01"
            elif self.format is AiFormat.AZURE_OPENAI:
                headers["api-key"] = self.auth_key
            elif self.format is not AiFormat.GEMINI:
                headers["Authorization"] = f"Bearer {self.auth_key}"
        return {**headers, **self.headers}

    def detail(self) -> dict[str, Any]:
        """What the pending op keeps: the request, with the key set apart."""
        shown = self.model_dump(mode="json", exclude={"auth_key"})
        return {**shown, SECRET_DETAIL: {"auth_key": self.auth_key}}

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> AiRequest:
        secret = detail.get(SECRET_DETAIL) or {}
        return cls.model_validate({**detail, "auth_key": secret.get("auth_key", "")})


def start_ai(tools: OpTools, state: RunState, op: Opcode) -> dict[str, Any] | None:
    """Record the request and queue its job. Opts that are not a request settle the step at
    once with an error memo instead, returned for the caller to commit."""
    try:
        request = AiRequest.model_validate(op.options)
    except pydantic.ValidationError as err:
        problem = from_validation_error(err, "opts").message
        return memo_error({"name": "AIRequestInvalid", "message": f"step.ai.infer: {problem}"})
    now = tools.clock.now_ms()
    pending = PendingOp(op.id, op.op, now, op.display, request.detail())
    if tools.runs.add_pending(state.run.run_id, pending):
        state.pending[op.id] = pending
        tools.queue.send(messages.ai_call(state.run.run_id, op.id))
    return None


class AiGateway:
    """Handles ``ai_call`` messages: one model request per message."""

    def __init__(
        self,
        runs: RunStore,
        apps: AppStore,
        resumer: Resumer,
        waker: Waker,
        clock: Clock,
        ids: IdGenerator,
        settings: Settings,
        caller: HttpCaller,
    ) -> None:
        self.runs = runs
        self.apps = apps
        self.resumer = resumer
        self.waker = waker
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.caller = caller

    def handle(self, message: messages.AiCall) -> None:
        run_id, step_id, attempt = message.run_id, message.step, message.attempt
        owner = message.claim or self.ids.new()
        now = self.clock.now_ms()
        if not self.runs.claim_pending(run_id, step_id, owner, now + self.settings.lease_ms, now):
            return  # settled already (the op is gone), or another job is asking the model
        op = self.runs.get_pending(run_id, step_id)
        run = self.runs.get_run(run_id)
        if op is None or run is None or run.status.terminal:
            return
        fn = self.apps.get_function(run.fn_id)
        max_attempts = fn.max_attempts if fn is not None else 1
        request = AiRequest.from_detail(op.detail)
        value, retry_at, final = self._ask(request)
        if value is not None:
            self.resumer.resume(run_id, step_id, value)
            return
        error = {"name": "AIGatewayError", "message": final}
        if retry_at is None or attempt + 1 >= max_attempts:
            self.resumer.resume(run_id, step_id, memo_error(error))
            return
        log.info("run %s: model request for step %s failed (%s); retrying", run_id, step_id, final)
        now = self.clock.now_ms()
        at = (
            retry_at
            if retry_at > 0
            else now + backoff_ms(attempt, self.settings.retry_base_ms, self.settings.retry_cap_ms)
        )
        # The op stays claimed through the backoff, by the claim its retry carries.
        self.runs.claim_pending(run_id, step_id, owner, at + self.settings.lease_ms, now)
        self.waker.at(messages.AiCall(run_id=run_id, step=step_id, attempt=attempt + 1, claim=owner), at)

    def _ask(self, request: AiRequest) -> tuple[dict[str, Any] | None, int | None, str]:
        """(the step's memo, None, "") on success; else (None, when to retry, why it failed),
        when to retry being 0 for "after the backoff" and None for "never"."""
        payload = json.dumps(request.body, separators=(",", ":")).encode()
        try:
            resp = self.caller.post(request.url, payload, request.http_headers(), self.settings.step_timeout_s)
        except CallFailed as exc:
            return None, 0, f"requesting {request.url}: {exc}"
        text = resp.body.decode("utf-8", errors="replace")
        if 200 <= resp.status < 300:
            try:
                return memo_data(json.loads(text) if text.strip() else None), None, ""
            except ValueError:
                return None, 0, f"the model's answer is not JSON: {text[:_ERROR_BODY_CHARS]!r}"
        why = f"the model's API answered {resp.status}: {text[:_ERROR_BODY_CHARS]}"
        if resp.status in _FINAL_STATUSES:
            return None, None, why
        header = resp.headers.get("retry-after")
        retry_at = parse_retry_after_ms(header, self.clock.now_ms()) if header else None
        return None, retry_at or 0, why
