"""How big a run may grow, and how its state reaches the SDK.

Every call request carries the run's events and all its memos (docs/protocol.md §5.2), so a run whose
steps return large values would send more bytes on every call: quadratic in the number of steps.
Past ``Settings.use_api_threshold_bytes`` the request carries ``use_api: true`` instead and leaves
the memos and the event batch out; the SDK fetches them once per call from
``GET /v0/runs/{id}/actions`` and ``/batch`` (docs/protocol.md §5.3).

Limits are Inngest's: 4 MiB per step output (``Executor``), 32 MiB per run state (events and
memos together), checked here before a memo is committed. Deployed, the run state limit is lower
(``Settings.max_run_state_bytes``, set by the stack to ``DEPLOYED_MAX_RUN_STATE_BYTES``): the
API Lambda serves a ``use_api`` run's state in one synchronous Lambda response, capped at 6 MB,
and neither official SDK follows a redirect or pages for ``/v0/runs/{id}/actions|batch`` (the
Python SDK's httpx client does not follow redirects; the TypeScript SDK reads one answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stepline.engine.records import Memo, RunState
from stepline.protocol.jsoncanon import canonical_json

# The most a run's state (its events and every memo) may hold; a step whose result would take
# the run past it gets a RunStateTooLarge error instead, which the user's code can catch.
MAX_RUN_STATE_BYTES = 32 * 1024 * 1024
# Largest step output accepted (Inngest's limit); larger ones fail the step with a clear error,
# or, checkpointed, are refused with 413.
MAX_STEP_OUTPUT_BYTES = 4 * 1024 * 1024
RUN_STATE_TOO_LARGE = "RunStateTooLarge"
# AWS Lambda: a synchronous invocation's response is at most 6 MB (the API Lambda's answer
# through API Gateway, envelope included).
LAMBDA_RESPONSE_MAX_BYTES = 6 * 1024 * 1024
# The largest state the API Lambda can always serve: a state that does not compress (random
# text) gzips to about its size, and base64 (API Gateway's binary body) adds a third; 4 MiB
# becomes at most 5.6 MB, leaving room for each memo's id and wrapper and the response
# envelope. Measured by tests/aws/test_run_state_limit.py.
DEPLOYED_MAX_RUN_STATE_BYTES = 4 * 1024 * 1024
# Cached on each Memo: values never change once committed, and a run may hold a thousand memos.
_SIZE_ATTR = "_json_bytes"
# Cached on each RunState: the totals, so a step's checks cost O(1), not O(steps so far).
_SIZES_ATTR = "_sizes"


def json_bytes(value: Any) -> int:
    """The UTF-8 size of ``value`` as compact JSON: the JCS size but for number formatting, and
    far cheaper to compute (json's encoder is C; JCS walks the value in Python)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8", "surrogatepass"))


def output_too_large(data: Any) -> str | None:
    """Why a step output cannot be stored (over ``MAX_STEP_OUTPUT_BYTES``); None when it fits."""
    size = json_bytes(data) if data is not None else 0
    if size > MAX_STEP_OUTPUT_BYTES:
        return f"step output is {size} bytes; the limit is {MAX_STEP_OUTPUT_BYTES}"
    return None


def remember_size(memo: Memo, size: int) -> None:
    """Tell the limits a memo's size up front (a store that has not fetched its value yet)."""
    memo.__dict__[_SIZE_ATTR] = size


def memo_bytes(memo: Memo) -> int:
    size = memo.__dict__.get(_SIZE_ATTR)
    if size is None:
        size = json_bytes(memo.value)
        memo.__dict__[_SIZE_ATTR] = size
    return size


class _Sizes:
    """Running totals over a run's memos, extended as memos are appended (O(new memos))."""

    def __init__(self, memos: list[Memo]) -> None:
        self.source = memos
        self.seen = 0
        self.values = 0  # memo values
        self.entries = 0  # values with their keys, as a request's "steps" carries them
        self.events: tuple[int, int] | None = None  # (id of the events list, its size)

    def catch_up(self) -> _Sizes:
        for memo in self.source[self.seen :]:
            size = memo_bytes(memo)
            self.values += size
            self.entries += size + len(memo.step_id) + 4
        self.seen = len(self.source)
        return self

    def events_bytes(self, events: Any) -> int:
        if self.events is None or self.events[0] != id(events):
            self.events = (id(events), json_bytes(events))
        return self.events[1]


def _sizes(state: RunState) -> _Sizes:
    sizes = state.__dict__.get(_SIZES_ATTR)
    if sizes is None or sizes.source is not state.memos or sizes.seen > len(state.memos):
        sizes = _Sizes(state.memos)
        state.__dict__[_SIZES_ATTR] = sizes
    return sizes.catch_up()


def run_state_bytes(state: RunState) -> int:
    """What counts against ``MAX_RUN_STATE_BYTES``: the run's events and memo values."""
    sizes = _sizes(state)
    return sizes.events_bytes(state.run.events) + sizes.values


def state_limit_error(
    state: RunState, value: dict[str, Any], limit: int = MAX_RUN_STATE_BYTES, added_bytes: int = 0
) -> dict[str, str] | None:
    """The error to memoize instead of ``value`` when committing it would take the run past
    ``limit`` bytes; None when it fits. ``added_bytes``: results settled beside it and not yet
    in ``state``."""
    size = json_bytes(value)
    total = run_state_bytes(state) + added_bytes + size
    if total <= limit:
        return None
    message = (
        f"step output of {size} bytes would make the run's state {total} bytes; "
        f"the limit is {limit} (events and step outputs together)"
    )
    return {"name": RUN_STATE_TOO_LARGE, "message": message}


def call_body(
    request: dict[str, Any],
    state: RunState,
    threshold_bytes: int,
    encode: Callable[[dict[str, Any]], bytes] = canonical_json,
) -> bytes:
    """The JCS body of a call request: ``encode(request)``, or, when its memos and events would
    take it past ``threshold_bytes``, a slim request with ``use_api`` set, leaving those for the
    SDK to fetch.

    What stays in the slim body is what the SDKs read from it even with ``use_api``: ``event``
    (the Python SDK takes it from the body, never from ``/batch``), ``ctx`` with its ``stack``
    object and ``run_id``, and empty but present ``steps`` (an object) and ``events`` (a list),
    which the Python SDK's strict model requires. The slim body is canonicalized directly, not
    through ``encode``: a caching encoder keyed on the full request's pieces must not mix the two.
    """
    if not uses_api(state, request["event"], threshold_bytes):
        return encode(request)
    slim = {
        **request,
        "steps": {},
        "events": [],
        "use_api": True,  # the Python SDK reads this one
        "ctx": {**request["ctx"], "use_api": True},  # the TypeScript SDK reads this one
    }
    return canonical_json(slim)


def uses_api(state: RunState, event: Any, threshold_bytes: int) -> bool:
    """Whether a call request for ``state`` leaves its memos and events for the SDK to fetch
    (``call_body``'s choice). Told before the request is built, a caller need not gather the
    memos' values at all: the executor then never fetches offloaded ones (docs/protocol.md §5.3)."""
    # Totals are kept as memos are added, so this stays O(1) on every call of a long run; the
    # event batch appears twice (``event`` is ``events[0]``), and the rest of the request is small.
    sizes = _sizes(state)
    return sizes.entries + sizes.events_bytes(state.run.events) + json_bytes(event) + 1024 > threshold_bytes
