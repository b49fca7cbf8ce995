"""API errors and JSON responses. Every error body carries ``error`` (what is wrong, naming the
field) and ``status``: the TypeScript SDK reads the status from the body, not the HTTP line."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error": self.message, "status": self.status}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def parse_json_body(raw: str | bytes | None, what: str = "body") -> Any:
    if raw is None or raw in ("", b""):
        raise ApiError(400, f"{what}: empty, expected JSON")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"{what}: invalid JSON: {exc}") from exc
