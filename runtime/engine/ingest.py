"""The Event API's engine side: store events, then start every run they trigger.

Order matters for "nothing accepted is lost": events are durably stored before anything else,
and the caller answers 200 only after ``accept`` returns. If starting runs fails, the request
fails, the SDK retries, the store hands back the events stored the first time, and starting the
runs again is idempotent (derived run ids).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from stepline.engine.expressions import matches
from stepline.engine.flow.admission import FlowControl
from stepline.engine.ids import IdGenerator, seeded_ulid
from stepline.engine.limits import runs_problem
from stepline.engine.ports import AppStore, Clock, EventStore, FunctionRecord, StoredEvent, WorkQueue
from stepline.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from stepline.engine.waits import Waits

log = logging.getLogger(__name__)


class Ingest:
    def __init__(
        self, events: EventStore, apps: AppStore, queue: WorkQueue, clock: Clock, ids: IdGenerator, flow: FlowControl
    ) -> None:
        self.events = events
        self.apps = apps
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.flow = flow
        self.waits: Waits | None = None  # set by the Engine (waits need cancellation, which needs ingest)

    def accept(
        self,
        events: list[dict[str, Any]],
        *,
        seed: tuple[int, bytes] | None = None,
        max_runs: int | None = None,
    ) -> list[str]:
        """Store and dispatch events given as dicts with name, data and optional id, ts, user, v.

        ``seed`` is the parsed ``x-inngest-event-id-seed`` header: with it, a retried send gets
        the same internal ids back. ``max_runs`` (the API's ``max_runs_per_request``) refuses,
        before anything is stored, events that would start more runs than that (a 413
        ``ProtocolError``). Returns the internal id of each event, in order.
        """
        now = self.clock.now_ms()
        fresh: list[StoredEvent] = []
        for index, raw in enumerate(events):
            internal_id = seeded_ulid(seed[0], seed[1], index) if seed else self.ids.new()
            fresh.append(
                StoredEvent(
                    internal_id=internal_id,
                    id=raw.get("id") or internal_id,
                    name=raw["name"],
                    data=raw.get("data") or {},
                    ts=raw.get("ts") or now,
                    received_at=now,
                    user=raw.get("user") or {},
                    v=raw.get("v"),
                )
            )
        # The functions of each name, read once per request: a batch is mostly of one name.
        functions: dict[str, list[FunctionRecord]] = {}
        if max_runs is not None:
            runs = sum(len(self._triggered(event, functions)) for event in fresh)
            problem = runs_problem(runs, max_runs)
            if problem:
                raise ProtocolError(problem, 413)
        stored = self.events.save_events(fresh, now)
        starts: list[dict[str, Any]] = []
        for new, event in zip(fresh, stored, strict=True):
            starts.extend(self._runs_for(event, functions, duplicate=new.internal_id != event.internal_id))
        if starts:
            self.queue.send_many(starts)
        if self.waits is not None:
            # Duplicates too: a send retried after a failure half-way may be the first to reach
            # the waits. Resuming is idempotent (the memo's write decides), and waits that began
            # after the event was first received never see it.
            self.waits.on_events(stored, now)
        return [e.internal_id for e in stored]

    def _triggered(self, event: StoredEvent, functions: dict[str, list[FunctionRecord]]) -> list[FunctionRecord]:
        """The functions whose triggers match ``event`` (name and expression)."""
        if event.name not in functions:
            functions[event.name] = self.apps.functions_for_event(event.name)
        if not functions[event.name]:
            return []  # most events trigger nothing: no need to build their context
        context = {"event": event.wire()}
        return [
            fn
            for fn in functions[event.name]
            if any(
                t.get("event") == event.name and matches(t.get("expression"), context)
                for t in fn.config.get("triggers") or []
            )
        ]

    def _runs_for(
        self, event: StoredEvent, functions: dict[str, list[FunctionRecord]], *, duplicate: bool = False
    ) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for fn in self._triggered(event, functions):
            # Flow control (rate limit, debounce, batching, idempotency, singleton, throttle)
            # decides what the event starts; without any, the run simply starts.
            messages.extend(self.flow.on_event(fn, event, duplicate=duplicate))
        return messages
