"""JCS bytes for call requests, without re-canonicalizing what has not changed.

Every call carries all memos so far, so canonicalizing the whole body each time makes a run of
N sequential steps cost O(N²) canonicalization work in pure Python. But memos never change once
written, and a run's events never change at all: this encoder canonicalizes each of them once,
and assembles the body from the cached pieces. The bytes are exactly ``canonical_json(request)``
(a test holds the two equal), so signatures verify the same.

Nor is anything re-derived per call that only grows: the memo map and the stack handed in are
the run's own growing views (``RunState.memo_map``, ``RunState.stack``), so each call encodes
only what was added since the last one and inserts it in place, O(new memos). Only joining the
pieces into the body is proportional to the run, which the protocol asks for.
"""

from __future__ import annotations

import bisect
import re
from itertools import islice
from typing import Any

from stepline.protocol.jsoncanon import canonical_json

# The top-level keys of a call request, in JCS order (sorted by UTF-16 code units).
_TOP_KEYS = ("ctx", "event", "events", "steps", "use_api", "version")
# Strings made of these characters encode identically under JCS and json.dumps.
_PLAIN = re.compile(r"^[0-9A-Za-z_:.\-]*$")


class CallEncoder:
    """One per run (or executor invocation): caches grow with the run's memos and events."""

    def __init__(self) -> None:
        self._events: tuple[list[Any], str, str] | None = None  # (events, event text, events text)
        self._steps = _SortedFragments()
        self._stack: tuple[list[str], int, list[str]] | None = None  # (stack, ids seen, their JSON)

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
            self._steps.text(request["steps"]),
            ',"use_api":',
            canonical_json(request["use_api"]).decode(),
            ',"version":',
            canonical_json(request["version"]).decode(),
            "}",
        ]
        return "".join(parts).encode("utf-8")

    def _events_text(self, event: Any, events: list[Any]) -> tuple[str, str]:
        cached = self._events
        # Compared by value: requests are rebuilt on every call (the events copied), and
        # comparing is far cheaper than canonicalizing. ``event`` is ``events[0]`` in every
        # request we build.
        if cached is None or cached[0] != events or event != (events[0] if events else None):
            cached = (events, canonical_json(event).decode(), canonical_json(events).decode())
            self._events = cached
        return cached[1], cached[2]

    def _ctx_text(self, ctx: dict[str, Any]) -> str:
        stack = (ctx.get("stack") or {}).get("stack")
        encoded = self._stack_json(stack) if isinstance(stack, list) else None
        if encoded is None:
            return canonical_json(ctx).decode()
        # The stack grows with the run; plain ids encode the same either way, and json.dumps
        # is an order of magnitude faster than the pure-Python canonicalizer.
        rest = dict(ctx)
        rest["stack"] = {**ctx["stack"], "stack": []}
        text = canonical_json(rest).decode()
        return text.replace('"stack":[]', '"stack":[' + ",".join(encoded) + "]", 1)

    def _stack_json(self, stack: list[Any]) -> list[str] | None:
        """Each stack id as JSON, or None when one is not a plain id. Ids already seen in this
        very list are not looked at again."""
        cached = self._stack
        if cached is None or cached[0] is not stack or cached[1] > len(stack):
            cached = (stack, 0, [])
        _, seen, parts = cached
        for step_id in islice(stack, seen, None):
            if not (isinstance(step_id, str) and _PLAIN.match(step_id)):
                self._stack = None
                return None
            parts.append('"' + step_id + '"')
        self._stack = (stack, len(stack), parts)
        return parts


class _SortedFragments:
    """The ``"steps"`` object as JCS text: one fragment per memo, kept in JCS key order.

    Given the same growing map again (dicts keep insertion order), only its newest keys are
    encoded and inserted; a map it has not seen is encoded in full, each memo's text reused
    when its value is the very object seen before."""

    def __init__(self) -> None:
        self._map: dict[str, Any] | None = None
        self._seen = 0
        self._keys: list[bytes] = []  # UTF-16 keys, sorted
        self._fragments: list[str] = []  # '"id":value', aligned with _keys
        self._encoded: dict[str, tuple[int, str]] = {}  # step id -> (id of the value, fragment)

    def text(self, steps: dict[str, Any]) -> str:
        if steps is self._map and self._seen <= len(steps):
            new = len(steps) - self._seen
            if new:
                for step_id in reversed(list(islice(reversed(steps), new))):
                    self._insert(step_id, steps[step_id])
        else:
            self._keys, self._fragments = [], []
            for step_id in sorted(steps, key=_utf16_key):
                self._keys.append(_utf16_key(step_id))
                self._fragments.append(self._fragment(step_id, steps[step_id]))
            self._map = steps
        self._seen = len(steps)
        return "{" + ",".join(self._fragments) + "}"

    def _insert(self, step_id: str, value: Any) -> None:
        key = _utf16_key(step_id)
        at = bisect.bisect_left(self._keys, key)
        fragment = self._fragment(step_id, value)
        if at < len(self._keys) and self._keys[at] == key:
            self._fragments[at] = fragment
            return
        self._keys.insert(at, key)
        self._fragments.insert(at, fragment)

    def _fragment(self, step_id: str, value: Any) -> str:
        cached = self._encoded.get(step_id)
        if cached is None or cached[0] != id(value):
            cached = (id(value), canonical_json(step_id).decode() + ":" + canonical_json(value).decode())
            self._encoded[step_id] = cached
        return cached[1]


def _utf16_key(text: str) -> bytes:
    # JCS sorts object keys by their UTF-16 code units, not by code points.
    return text.encode("utf-16-be")
