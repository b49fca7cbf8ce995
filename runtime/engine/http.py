"""The one way the engine reaches a user's app: a POST, answered or failed.

A one-method interface keeps the executor testable and lets the benchmark measure the same
client the executor uses. The default transport pools keep-alive connections per host.

An app that checkpoints over the call's own connection answers with a stream of lines
(docs/protocol.md §17.2): such a reply comes back with ``lines`` set instead of ``body``, so the
executor can act on each line as it arrives. Callers that only ever read whole bodies (test
stand-ins) never set it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import urllib3

from stepline.protocol.checkpoint import H_CHECKPOINT, STREAM


class CallFailed(Exception):
    """No HTTP answer: connection refused or reset, timeout, unreadable reply. Retriable."""


class LineStream(Protocol):
    """The lines of a streamed reply, each without its newline. Iterating raises ``CallFailed``
    when the connection breaks; ``close`` drops the connection (the app's next write fails)."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # names lower-cased
    lines: LineStream | None = None  # a checkpoint stream, read as it arrives


class HttpCaller(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse: ...


# The largest answer read from an app: beyond every legitimate response (step outputs are capped
# at 4 MiB, Lambda answers at 6 MB), small enough that a broken app cannot exhaust memory. A
# checkpoint stream may carry many steps, so there it bounds each line instead.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_READ_CHUNK = 64 * 1024


class _UrllibLines:
    """Lines of a chunked (or read-until-close) urllib3 response, split as bytes arrive."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, max_line_bytes: int) -> None:
        self._resp = resp
        self._max = max_line_bytes
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        try:
            while True:
                chunk = self._resp.read1(_READ_CHUNK)
                if not chunk:
                    break
                buffer += chunk
                while True:
                    end = buffer.find(b"\n")
                    if end < 0:
                        break
                    line, buffer = buffer[:end], buffer[end + 1 :]
                    if line.strip():
                        yield line
                if len(buffer) > self._max:
                    raise CallFailed(f"a checkpoint stream line is longer than {self._max} bytes")
        except urllib3.exceptions.HTTPError as exc:
            self.close()
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:
            self.close()
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        if buffer.strip():
            yield buffer  # a last line without its newline
        self._done = True
        self._resp.release_conn()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._resp.close()  # unread data: the connection cannot be reused


class PooledHttpCaller:
    def __init__(self, max_connections_per_host: int = 16, max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._pool = urllib3.PoolManager(maxsize=max_connections_per_host, block=False, retries=False)
        self._max_response_bytes = max_response_bytes

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        try:
            resp = self._pool.request(
                "POST",
                url,
                body=body,
                headers=headers,
                timeout=urllib3.Timeout(connect=min(10.0, timeout_s), read=timeout_s),
                redirect=False,
                preload_content=False,
            )
            lowered = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status == 200 and lowered.get(H_CHECKPOINT) == STREAM:
                return HttpResponse(resp.status, b"", lowered, _UrllibLines(resp, self._max_response_bytes))
            data = resp.read(self._max_response_bytes + 1)
            if len(data) > self._max_response_bytes:
                resp.close()  # drop the connection rather than read the rest
                raise CallFailed(f"the answer is larger than {self._max_response_bytes} bytes")
            resp.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise CallFailed(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(status=resp.status, body=data, headers=lowered)
