"""The executor's real HTTP client, keeping a log of every call it makes to an app, so a test can
count the calls one run took (a checkpointed run takes a handful, not one per step)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from stepline.engine.http import HttpResponse, PooledHttpCaller


@dataclass(frozen=True)
class Call:
    fn_id: str
    run_id: str
    step: str
    status: int
    streamed: bool  # answered with a checkpoint stream
    request_bytes: int


class _CountedLines:
    """A checkpoint stream, counting the bytes of each line it hands on."""

    def __init__(self, lines, count) -> None:
        self._lines = lines
        self._count = count

    def __iter__(self) -> Iterator[bytes]:
        for line in self._lines:
            self._count(len(line) + 1)
            yield line

    def close(self) -> None:
        self._lines.close()


class CallLog:
    def __init__(self) -> None:
        self.inner = PooledHttpCaller()
        self.calls: list[Call] = []
        self.streamed_bytes: Counter[str] = Counter()  # run id -> bytes of checkpoint streams
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        query = parse_qs(urlsplit(url).query)
        try:
            run_id = json.loads(body)["ctx"]["run_id"]
        except (ValueError, KeyError, TypeError):
            run_id = ""
        resp = self.inner.post(url, body, headers, timeout_s)
        if resp.lines is not None:

            def count(n: int) -> None:
                with self._lock:
                    self.streamed_bytes[run_id] += n

            resp.lines = _CountedLines(resp.lines, count)
        call = Call(
            fn_id=query.get("fnId", [""])[0],
            run_id=run_id,
            step=query.get("stepId", ["step"])[0],
            status=resp.status,
            streamed=resp.lines is not None,
            request_bytes=len(body),
        )
        with self._lock:
            self.calls.append(call)
        return resp

    def for_run(self, run_id: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.run_id == run_id]
