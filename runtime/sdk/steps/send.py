"""``step.send_event``: send events exactly once per run, as a step whose result is their ids."""

from __future__ import annotations

from typing import Any

from stepline.sdk.events import to_wire_event
from stepline.sdk.steps import run as run_step
from stepline.sdk.steps.core import Execution


def _wire(events: Any) -> list[dict[str, Any]]:
    items = events if isinstance(events, (list, tuple)) else [events]
    # Validated before the step runs, so a bad event fails the call loudly instead of being
    # retried as if the Event API were down.
    return [to_wire_event(e) for e in items]


def send_event_sync(ex: Execution, step_id: str, events: Any) -> list[str]:
    wire = _wire(events)
    seed = ex.event_id_seed(ex.next_hash(step_id))
    return run_step.run_sync(ex, step_id, lambda: ex.sender(wire, seed), (), {})


async def send_event_async(ex: Execution, step_id: str, events: Any) -> list[str]:
    wire = _wire(events)
    seed = ex.event_id_seed(ex.next_hash(step_id))
    import asyncio  # already loaded: a loop is running

    return await run_step.run_async(ex, step_id, lambda: asyncio.to_thread(ex.sender, wire, seed), (), {})
