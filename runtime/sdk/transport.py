"""The SDK's outgoing HTTP, behind a one-method interface so tests can stand in for the network."""

from __future__ import annotations

import dataclasses
from typing import Protocol

import urllib3


class TransportError(Exception):
    """The request never got an HTTP answer (connection refused, timeout, reset)."""


@dataclasses.dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout_s: float
    ) -> HttpReply: ...


class Urllib3Transport:
    def __init__(self) -> None:
        # Retries are the caller's business: each knows which failures are safe to repeat.
        self._pool = urllib3.PoolManager(retries=False)

    def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout_s: float
    ) -> HttpReply:
        try:
            resp = self._pool.request(
                method, url, body=body, headers=headers, timeout=urllib3.Timeout(total=timeout_s), preload_content=True
            )
        except urllib3.exceptions.HTTPError as err:
            raise TransportError(f"{method} {url}: {err}") from None
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)
