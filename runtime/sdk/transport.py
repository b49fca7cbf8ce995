"""The SDK's outgoing HTTP, behind a one-method interface so tests can stand in for the network."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
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
    """urllib3, imported and pooled at the first request: a client that never sends (an app
    that only serves its functions) does not pay for importing it, or ssl with it."""

    def __init__(self) -> None:
        self._pool: urllib3.PoolManager | None = None
        self._lock = threading.Lock()

    def _pool_manager(self) -> urllib3.PoolManager:
        with self._lock:
            if self._pool is None:
                import urllib3

                # Retries are the caller's business: each knows which failures are safe to repeat.
                self._pool = urllib3.PoolManager(retries=False)
            return self._pool

    def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout_s: float
    ) -> HttpReply:
        import urllib3

        pool = self._pool_manager()
        try:
            resp = pool.request(
                method, url, body=body, headers=headers, timeout=urllib3.Timeout(total=timeout_s), preload_content=True
            )
        except urllib3.exceptions.HTTPError as err:
            raise TransportError(f"{method} {url}: {err}") from None
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.data)
