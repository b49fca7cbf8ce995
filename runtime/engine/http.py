"""The one way the engine reaches a user's app: a POST, answered or failed.

A one-method interface keeps the executor testable and lets the benchmark measure the same
client the executor uses. The default transport pools keep-alive connections per host, and
connects only where the address policy allows (``stepline.engine.outbound``).

``timeout_s`` bounds the whole call, from connecting to the last byte of the answer: urllib3's
read timeout alone bounds each read, so an app that trickles its answer could hold a call (and
the Lambda running it) far past the step timeout. The executor counts on the bound to stop
starting calls in time (``Settings.record_budget_ms``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import urllib3

from stepline.engine.outbound import AddressPolicy, pool_manager


class CallFailed(Exception):
    """No HTTP answer: connection refused or reset, timeout, unreadable reply. Retriable."""


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased


class HttpCaller(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse: ...


# The largest answer read from an app: beyond every legitimate response (step outputs are capped
# at 4 MiB, Lambda answers at 6 MB), small enough that a broken app cannot exhaust memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
# Read the answer in pieces of at most this size, checking the call's deadline between them.
READ_CHUNK_BYTES = 64 * 1024


class PooledHttpCaller:
    """Calls apps through a pool that keeps to ``policy`` (``stepline.engine.outbound``: which
    addresses may be connected to), follows no redirect, asks for no compression and reads at
    most ``max_response_bytes`` of an answer, by the call's deadline."""

    def __init__(
        self,
        max_connections_per_host: int = 16,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        policy: AddressPolicy | None = None,
    ) -> None:
        self.policy = policy or AddressPolicy(check=False)
        self._pool = pool_manager(self.policy, maxsize=max_connections_per_host, block=False)
        self._max_response_bytes = max_response_bytes

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        deadline = time.monotonic() + timeout_s
        try:
            # total: connecting, sending and waiting for the status line share the one deadline.
            resp = self._pool.request(
                "POST",
                url,
                body=body,
                # Identity: a compressed answer could expand far past the cap once decoded.
                headers={**headers, "Accept-Encoding": "identity"},
                timeout=urllib3.Timeout(total=timeout_s, connect=min(10.0, timeout_s)),
                redirect=False,
                preload_content=False,
            )
            # Refused before anything is read, so nothing is ever decoded.
            encoding = (resp.headers.get("content-encoding") or "identity").strip().lower()
            if encoding != "identity":
                resp.close()
                raise CallFailed(f"the answer is encoded as {encoding!r}; calls ask for identity")
            data = self._read_by(resp, deadline, timeout_s)
            resp.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(
            status=resp.status,
            body=data,
            headers={k.lower(): v for k, v in resp.headers.items()},
        )

    def _read_by(self, resp: urllib3.BaseHTTPResponse, deadline: float, timeout_s: float) -> bytes:
        """The whole answer, read before ``deadline`` and within the size limit, or CallFailed
        (the connection is dropped rather than read to its end)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                resp.close()
                raise CallFailed(f"no complete answer within {timeout_s} s")
            # Each socket read may wait only for what is left of the call's time.
            sock = getattr(getattr(resp, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = resp.read1(READ_CHUNK_BYTES)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_response_bytes:
                resp.close()  # drop the connection rather than read the rest
                raise CallFailed(f"the answer is larger than {self._max_response_bytes} bytes")
            chunks.append(chunk)
