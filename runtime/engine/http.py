"""The one way the engine reaches a user's app: a POST, answered or failed.

A one-method interface keeps the executor testable and lets the benchmark measure the same
client the executor uses. The default transport pools keep-alive connections per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import urllib3


class CallFailed(Exception):
    """No HTTP answer: connection refused or reset, timeout, unreadable reply. Retriable."""


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


class HttpCaller(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse: ...


class PooledHttpCaller:
    def __init__(self, max_connections_per_host: int = 16) -> None:
        self._pool = urllib3.PoolManager(maxsize=max_connections_per_host, block=False, retries=False)

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        try:
            resp = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(10.0, timeout_s), read=timeout_s),
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(
            status=resp.status,
            body=resp.data,
            headers={k.lower(): v for k, v in resp.headers.items()},
        )
