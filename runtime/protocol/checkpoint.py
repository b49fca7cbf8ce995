"""Checkpointed calls on the wire (docs/protocol.md §17).

A checkpointing SDK runs steps inline, inside one call request, and reports each result as it
goes instead of ending the call after every step. Two ways exist, and Stepline serves both:

* **The async checkpoint API** (what the TypeScript SDK 4.x does by default, and 3.x with
  ``checkpointing: true``): the call request carries ``ctx.fn_id`` and ``ctx.qi_id``; the SDK
  POSTs ``/v1/checkpoint/{run_id}/async`` with ``{run_id, fn_id, qi_id, steps: [ops], ...}``
  after each step and carries on when it gets a 2xx. A 409 means the call is stale (the run
  ended, or another call holds it): the SDK stops.
* **The checkpoint stream** (Stepline's own SDK): the call request carries the header
  ``x-stepline-checkpoint: stream``; the app answers ``200`` with the same header and a body of
  JSON lines, ``{"step": op}`` for each step done, then ``{"result": {status, headers, body}}``,
  the answer a plain call would have given. No extra request per step.

Both end the call with an ordinary reply; besides the usual ops it may carry ``RunComplete``
(the function returned: ``data`` is its output; TS 4.x sends it in a 206) and
``DiscoveryRequest`` (the SDK stopped at its time budget: call again).

This module is what an SDK needs (names and line encoding: no models, cheap to import); the
server's parsers are in ``stepline.protocol.checkpoint_requests``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

# Request header: the server offers the stream; response header: the app streams.
H_CHECKPOINT = "x-stepline-checkpoint"
STREAM = "stream"
# Request header: stop starting new steps after this many milliseconds and end the call.
H_CHECKPOINT_BUDGET = "x-stepline-checkpoint-budget-ms"
STREAM_CONTENT_TYPE = "application/x-ndjson"
# Response header of a call that stored steps through /v1/checkpoint (how many): the server
# reads the run again before its next call. Stepline's SDK sends it; the TypeScript SDK does not.
H_CHECKPOINTED = "x-stepline-checkpointed"


class CheckpointOp(StrEnum):
    """Ops that exist only in checkpointed calls (docs/protocol.md §17.3)."""

    RUN_COMPLETE = "RunComplete"
    DISCOVERY_REQUEST = "DiscoveryRequest"


# -- the checkpoint stream ------------------------------------------------------------------------


def step_line(op: dict[str, Any]) -> bytes:
    """One finished step on the stream."""
    return json.dumps({"step": op}, separators=(",", ":")).encode("utf-8") + b"\n"


def result_line(status: int, headers: dict[str, str], body: Any) -> bytes:
    """The last line: the reply a plain call would have given."""
    envelope = {"result": {"status": status, "headers": headers, "body": body}}
    return json.dumps(envelope, separators=(",", ":")).encode("utf-8") + b"\n"
