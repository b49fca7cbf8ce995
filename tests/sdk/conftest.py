"""Wire-level helpers: call a function of our SDK through its real request handler with bodies
built by the protocol layer (what the Stepline executor sends), and a transport stand-in that
records what the SDK sends out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepline import Client
from stepline.protocol.calls import CallResult, build_call_request, parse_call_response
from stepline.protocol.jsoncanon import canonical_json
from stepline.sdk.function import Function
from stepline.sdk.serve.handler import Handler, Request, Response
from stepline.sdk.steps.core import hash_step_id
from stepline.sdk.transport import HttpReply, TransportError

APP_URL = "http://127.0.0.1:9999/api/inngest"
RUN_ID = "01JD0000000000000000000RUN"
EVENT = {"name": "test/go", "data": {"n": 2}, "id": "01JD00000000000000000EVENT", "ts": 1_700_000_000_000, "user": {}}


def h(step_id: str) -> str:
    return hash_step_id(step_id)


class FakeTransport:
    """Answers from a script of replies (or exceptions), recording every request."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                timeout_s: float) -> HttpReply:
        self.requests.append({"method": method, "url": url, "headers": dict(headers),
                              "body": json.loads(body) if body else None})
        reply = self.replies.pop(0) if self.replies else (200, {"ids": ["id-auto"], "status": 200})
        if isinstance(reply, Exception):
            raise reply
        status, payload = reply
        return HttpReply(status, {"content-type": "application/json"}, json.dumps(payload).encode())


def call_body(*, steps: dict[str, Any] | None = None, attempt: int = 0, max_attempts: int = 4,
              disable: bool = False, event: dict[str, Any] | None = None, step_id: str = "step",
              events: list[dict[str, Any]] | None = None, fn_id: str | None = None,
              qi_id: str = "") -> bytes:
    memos = steps or {}
    request = build_call_request(
        run_id=RUN_ID, attempt=attempt, max_attempts=max_attempts, events=events or [event or EVENT],
        steps=memos, stack=list(memos), disable_immediate=disable, use_api=False, version=-1,
        step_id=step_id, fn_id=fn_id, qi_id=qi_id,
    )
    return canonical_json(request)


def call(client: Client, fn: Function, *, target: str | None = None, **kwargs: Any) -> Response:
    """POST a call request for ``fn`` through a handler serving ``client``; the raw response."""
    handler = Handler(client, [fn], framework="test")
    step_id = target or "step"
    url = f"{APP_URL}?fnId={fn.composite_id}&stepId={step_id}"
    return handler.handle(Request("POST", url, {"content-type": "application/json"},
                                  call_body(step_id=step_id, **kwargs)))


def parsed(response: Response) -> CallResult:
    """The response as the Stepline executor reads it."""
    return parse_call_response(response.status, response.headers, response.body, 1_700_000_000_000)


def make_client(app_id: str = "wire-app", **kwargs: Any) -> Client:
    kwargs.setdefault("dev", True)
    return Client(app_id, **kwargs)


@pytest.fixture
def client() -> Client:
    return make_client()


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


__all__ = ["APP_URL", "EVENT", "RUN_ID", "FakeTransport", "TransportError", "call", "call_body", "h",
           "make_client", "parsed"]
