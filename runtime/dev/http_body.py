"""Request bodies on the local server: the framing is judged from the headers before a byte of the
body is read, and memory never holds more of a body than the route's limit, whatever the client
declares (``Content-Length``) or streams (chunked).

A refusal says whether the connection can carry another request: a body that was read past
(drained) leaves the stream in step, anything else closes it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import BinaryIO

# A body over its limit is read and thrown away, up to this much, so the client gets to read
# the 413 instead of a reset connection; beyond it the connection is closed unread.
DRAIN_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024
# After refusing a body it will not read, the server reads past what the client still sends,
# for this long at most, before hanging up: closing on unread data resets the connection, and
# the client may then never see the answer.
LINGER_S = 2.0
_MAX_CHUNK_LINE = 1024
_MAX_TRAILERS = 100

CONTENT_LENGTH = b"Content-Length"
TRANSFER_ENCODING = b"Transfer-Encoding"


class BodyRefused(Exception):
    """A request the server answers without handing it to the API: ``status`` and ``message``
    become the JSON error; ``close`` says the connection cannot carry another request."""

    def __init__(self, status: int, message: str, close: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


@dataclass(frozen=True)
class Framing:
    chunked: bool = False
    length: int = 0  # Content-Length; 0 when chunked or absent

    @property
    def has_body(self) -> bool:
        return self.chunked or self.length > 0


def judge_framing(headers: MutableMapping[bytes, bytes]) -> Framing:
    """The body's framing from the request headers (title-cased names, repeated headers joined by
    ``", "``). Ambiguous framing is refused: which reading a proxy in front honoured is
    unknowable, and that gap is how requests are smuggled. A repeated ``Content-Length`` with
    one value is made single, so the HTTP layer reads that value."""
    transfer = headers.get(TRANSFER_ENCODING)
    length_header = headers.get(CONTENT_LENGTH)
    if transfer is not None:
        if length_header is not None:
            raise BodyRefused(400, "Transfer-Encoding and Content-Length: send one or the other")
        codings = [t.strip().lower() for t in transfer.split(b",")]
        if codings != [b"chunked"]:
            shown = transfer.decode("latin-1")[:80]
            raise BodyRefused(501, f"Transfer-Encoding: only chunked is supported, got {shown!r}")
        return Framing(chunked=True)
    if length_header is None:
        return Framing()
    values = {v.strip() for v in length_header.split(b",")}
    if len(values) > 1:
        raise BodyRefused(400, "Content-Length: sent more than once with different values")
    (text,) = values
    if not text.isdigit():
        raise BodyRefused(400, f"Content-Length: not a non-negative integer: {text.decode('latin-1')[:40]!r}")
    headers[CONTENT_LENGTH] = text
    return Framing(length=int(text))


def read_body(rfile: BinaryIO, framing: Framing, limit: int) -> bytes:
    """The request body, never holding more than ``limit`` bytes of it in memory."""
    if framing.chunked:
        return _read_chunked(rfile, limit)
    if framing.length > limit:
        raise over_limit(rfile, framing, limit)
    if not framing.length:
        return b""
    data = rfile.read(framing.length)
    if len(data) < framing.length:
        raise BodyRefused(400, f"body: the connection ended after {len(data)} of {framing.length} bytes")
    return data


def over_limit(rfile: BinaryIO, framing: Framing, limit: int) -> BodyRefused:
    return refuse_unread(rfile, framing, BodyRefused(413, f"body: {framing.length} bytes exceeds the limit of {limit}"))


def refuse_unread(rfile: BinaryIO, framing: Framing, refusal: BodyRefused) -> BodyRefused:
    """``refusal`` for a request whose body is still unread: a body of known length up to
    DRAIN_BYTES is read past so the connection lives on; otherwise it is closed."""
    if framing.chunked or framing.length > DRAIN_BYTES:
        return BodyRefused(refusal.status, refusal.message, close=True)
    remaining = framing.length
    while remaining > 0:
        read = len(rfile.read(min(_READ_CHUNK, remaining)))
        if not read:
            return BodyRefused(refusal.status, refusal.message, close=True)
        remaining -= read
    return BodyRefused(refusal.status, refusal.message, close=False)


def _read_chunked(rfile: BinaryIO, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(_MAX_CHUNK_LINE + 1)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            size = -1
        if size < 0 or len(line) > _MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise BodyRefused(400, "body: malformed chunked encoding")
        if size == 0:
            break
        total += size
        if total > limit:
            # Unknown total: never drain a stream that may not end.
            raise BodyRefused(413, f"body: more than {limit} bytes, the limit (chunked)")
        parts.append(rfile.read(size))
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BodyRefused(400, "body: malformed chunked encoding")
    for _ in range(_MAX_TRAILERS):
        if rfile.readline(_MAX_CHUNK_LINE + 1) in (b"\r\n", b"\n", b""):
            return b"".join(parts)
    raise BodyRefused(400, "body: too many chunked trailers")


def linger(sock: socket.socket, rfile: BinaryIO) -> None:
    """Read past whatever the client is still sending, for LINGER_S at most, so that closing
    does not reset a connection whose answer the client has yet to read."""
    deadline = time.monotonic() + LINGER_S
    remaining = DRAIN_BYTES
    try:
        while remaining > 0 and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = rfile.read1(min(_READ_CHUNK, remaining))  # type: ignore[attr-defined]
            if not data:
                return
            remaining -= len(data)
    except (OSError, ValueError):
        pass
