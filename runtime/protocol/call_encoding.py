"""JCS bytes for call requests, without re-canonicalizing what has not changed.

Every call carries all memos so far, so canonicalizing the whole body each time makes a run of
N sequential steps cost O(N²) canonicalization work in pure Python. But memos never change once
written, and a run's events never change at all: this encoder canonicalizes each of them once,
and assembles the body from the cached pieces. The bytes are exactly ``canonical_json(request)``
(a test holds the two equal), so signatures verify the same.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stepline.protocol.jsoncanon import canonical_json

# The top-level keys of a call request, in JCS order (sorted by UTF-16 code units).
_TOP_KEYS = ("ctx", "event", "events", "steps", "use_api", "version")
# Strings made of these characters encode identically under JCS and json.dumps.
_PLAIN = re.compile(r"^[0-9A-Za-z_:.\-]*$")


class CallEncoder:
    """One per run (or executor invocation): caches grow with the run's memos and events."""

    def __init__(self) -> None:
        self._memos: dict[str, tuple[int, str]] = {}  # step id -> (id of the memo dict, its JCS text)
        self._events: tuple[list[Any], str, str] | None = None  # (events, event text, events text)

    def encode(self, request: dict[str, Any]) -> bytes:
        if tuple(sorted(request)) != _TOP_KEYS:
            return canonical_json(request)
        event_text, events_text = self._events_text(request["event"], request["events"])
        parts = [
            '{"ctx":',
            self._ctx_text(request["ctx"]),
            ',"event":',
            event_text,
            ',"events":',
            events_text,
            ',"steps":',
            self._steps_text(request["steps"]),
            ',"use_api":',
            canonical_json(request["use_api"]).decode(),
            ',"version":',
            canonical_json(request["version"]).decode(),
            "}",
        ]
        return "".join(parts).encode("utf-8")

    def _events_text(self, event: Any, events: list[Any]) -> tuple[str, str]:
        cached = self._events
        # Compared by value: requests are rebuilt on every call, and comparing is far cheaper
        # than canonicalizing. ``event`` is ``events[0]`` in every request we build.
        if cached is None or cached[0] != events or event != (events[0] if events else None):
            cached = (events, canonical_json(event).decode(), canonical_json(events).decode())
            self._events = cached
        return cached[1], cached[2]

    def _ctx_text(self, ctx: dict[str, Any]) -> str:
        stack = (ctx.get("stack") or {}).get("stack")
        if isinstance(stack, list) and all(isinstance(s, str) and _PLAIN.match(s) for s in stack):
            # The stack grows with the run; plain ids encode the same either way, and
            # json.dumps is an order of magnitude faster than the pure-Python canonicalizer.
            rest = dict(ctx)
            rest["stack"] = {**ctx["stack"], "stack": []}
            text = canonical_json(rest).decode()
            return text.replace('"stack":[]', '"stack":' + json.dumps(stack, separators=(",", ":")), 1)
        return canonical_json(ctx).decode()

    def _steps_text(self, steps: dict[str, Any]) -> str:
        items = []
        for step_id in sorted(steps, key=_utf16_key):
            value = steps[step_id]
            cached = self._memos.get(step_id)
            if cached is None or cached[0] != id(value):
                cached = (id(value), canonical_json(step_id).decode() + ":" + canonical_json(value).decode())
                self._memos[step_id] = cached
            items.append(cached[1])
        return "{" + ",".join(items) + "}"


def _utf16_key(text: str) -> bytes:
    # JCS sorts object keys by their UTF-16 code units, not by code points.
    return text.encode("utf-16-be")
