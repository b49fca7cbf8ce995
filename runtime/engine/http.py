"""The one way the engine reaches a user's app: a POST, answered or failed.

A one-method interface keeps the executor testable and lets the benchmark measure the same
client the executor uses. The default transport pools keep-alive connections per host, and
connects only where the address policy allows (``stepline.engine.outbound``).

``timeout_s`` bounds the whole call, from connecting to the last byte of the answer: urllib3's
read timeout alone bounds each read, so an app that trickles its answer could hold a call (and
the Lambda running it) far past the step timeout. The executor counts on the bound to stop
starting calls in time (``Settings.record_budget_ms``).

An app that checkpoints over the call's own connection answers with a stream of lines
(docs/protocol.md §17.2): such a reply comes back with ``lines`` set instead of ``body``, so the
executor can act on each line as it arrives. There each line must come within ``timeout_s`` of the
one before (a step may take that long), and the whole stream within the call's checkpoint budget
plus ``timeout_s``. Callers that only ever read whole bodies (test stand-ins) never set it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import urllib3

from stepline.engine.outbound import AddressPolicy, pool_manager
from stepline.protocol.checkpoint import H_CHECKPOINT, H_CHECKPOINT_BUDGET, STREAM


class CallFailed(Exception):
    """No HTTP answer: connection refused or reset, timeout, unreadable reply. Retriable."""


class LineStream(Protocol):
    """The lines of a streamed reply, each without its newline. Iterating raises ``CallFailed``
    when the connection breaks or the stream runs out of time; ``close`` drops the connection
    (the app's next write fails)."""

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


class Sender(Protocol):
    """A caller that also sends other methods than POST (an app sync is a PUT)."""

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse: ...


# The largest answer read from an app: beyond every legitimate response (step outputs are capped
# at 4 MiB, Lambda answers at 6 MB), small enough that a broken app cannot exhaust memory. A
# checkpoint stream may carry many steps, so there it bounds each line instead.
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
        return self.send("POST", url, body, headers, timeout_s)

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        """``post`` with another method (a sync's PUT)."""
        deadline = time.monotonic() + timeout_s
        try:
            # total: connecting, sending and waiting for the status line share the one deadline.
            resp = self._pool.request(
                method,
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
            lowered = {k.lower(): v for k, v in resp.headers.items()}
            if resp.status == 200 and lowered.get(H_CHECKPOINT) == STREAM:
                whole = timeout_s + _budget_s(headers)
                lines = _Lines(resp, self._max_response_bytes, timeout_s, time.monotonic() + whole)
                return HttpResponse(resp.status, b"", lowered, lines)
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


def _budget_s(headers: dict[str, str]) -> float:
    """The checkpoint budget the request offered the app (seconds), 0 when none."""
    for name, value in headers.items():
        if name.lower() == H_CHECKPOINT_BUDGET:
            try:
                return max(0.0, int(value) / 1000)
            except ValueError:
                return 0.0
    return 0.0


class _Lines:
    """Lines of a chunked (or read-until-close) urllib3 response, split as bytes arrive: each
    within ``line_timeout_s`` of the one before, all before ``deadline``."""

    def __init__(self, resp: urllib3.BaseHTTPResponse, max_line_bytes: int, line_timeout_s: float, deadline: float):
        self._resp = resp
        self._max = max_line_bytes
        self._line_timeout_s = line_timeout_s
        self._deadline = deadline
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        buffer = b""
        line_by = min(self._deadline, time.monotonic() + self._line_timeout_s)
        try:
            while True:
                left = line_by - time.monotonic()
                if left <= 0:
                    self.close()
                    raise CallFailed(f"no line of the checkpoint stream within {self._line_timeout_s} s")
                sock = getattr(getattr(self._resp, "connection", None), "sock", None)
                if sock is not None:
                    sock.settimeout(left)
                chunk = self._resp.read1(READ_CHUNK_BYTES)
                if not chunk:
                    break
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line, buffer = buffer[:end], buffer[end + 1 :]
                    if line.strip():
                        line_by = min(self._deadline, time.monotonic() + self._line_timeout_s)
                        yield line
                if len(buffer) > self._max:
                    self.close()
                    raise CallFailed(f"a checkpoint stream line is longer than {self._max} bytes")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
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


class _WholeBodyLines:
    """The lines of a checkpoint stream that arrived whole (a buffered Lambda answer)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        for line in self._body.split(b"\n"):
            if line.strip():
                yield line

    def close(self) -> None:
        self._body = b""


def whole_body_lines(body: bytes) -> LineStream:
    """``body`` read as the lines of a checkpoint stream (each without its newline)."""
    return _WholeBodyLines(body)
