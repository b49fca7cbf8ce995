"""API errors and JSON responses. Every error body carries ``error`` (what is wrong, naming the
field) and ``status``: the TypeScript SDK reads the status from the body, not the HTTP line."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler import Response


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error": self.message, "status": self.status}


T = TypeVar("T")


def found(value: T | None, kind: str, key: str) -> T:
    """``value``, or the 404 naming what was asked for: ``run 'r-1' not found``."""
    if value is None:
        raise ApiError(404, f"{kind} {key!r} not found")
    return value


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
