"""The Event API's engine side: store events, then start every run they trigger.

Order matters for "nothing accepted is lost": events are durably stored before anything else,
and the caller answers 200 only after ``accept`` returns. If starting runs fails, the request
fails, the SDK retries, the store hands back the events stored the first time, and starting the
runs again is idempotent (derived run ids).

A request of more than ``inline_events`` events (the Event API takes 5,000) hands what follows
storing to the work queue: one ``start`` message per ``START_CHUNK`` events, each starting the
runs those events trigger and resuming their waiters as ``accept`` would have. The 200 still
means stored (the messages are sent before ``accept`` returns), and API Gateway's 30 s then
covers storing alone. Within a request, the functions and waiters of each event name are looked
up once.
"""

from __future__ import annotations

import logging
from typing import Any

from stepline.engine import messages
from stepline.engine.expressions import matches
from stepline.engine.flow.admission import FlowControl
from stepline.engine.ids import IdGenerator, seeded_ulid
from stepline.engine.limits import runs_problem
from stepline.engine.ports import AppStore, Clock, EventStore, FunctionRecord, StoredEvent, WorkQueue
from stepline.engine.waits import Waits
from stepline.protocol.errors import ProtocolError

log = logging.getLogger(__name__)

# Events per ``start`` message of a large request (their ids: a few KiB of message).
START_CHUNK = 100


class Ingest:
    def __init__(
        self,
        events: EventStore,
        apps: AppStore,
        queue: WorkQueue,
        clock: Clock,
        ids: IdGenerator,
        flow: FlowControl,
        waits: Waits,
        *,
        inline_events: int = 100,
    ) -> None:
        self.inline_events = inline_events
        self.events = events
        self.apps = apps
        self.queue = queue
        self.clock = clock
        self.ids = ids
        self.flow = flow
        self.waits = waits

    def accept(
        self,
        events: list[dict[str, Any]],
        *,
        seed: tuple[int, bytes] | None = None,
        max_runs: int | None = None,
        sender: dict[str, str] | None = None,
    ) -> list[str]:
        """Store and dispatch events given as dicts with name, data and optional id, ts, user, v.

        ``seed`` is the parsed ``x-inngest-event-id-seed`` header: with it, a retried send gets
        the same internal ids back. ``max_runs`` (the API's ``max_runs_per_request``) refuses,
        before anything is stored, events that would start more runs than that (a 413
        ``ProtocolError``). ``sender``: the request's W3C trace context, kept with each event
        (``Telemetry.sender``). Returns the internal id of each event, in order.
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
                    trace=sender,
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
        duplicates = [e.internal_id for new, e in zip(fresh, stored, strict=True) if new.internal_id != e.internal_id]
        if len(stored) > self.inline_events:
            self.queue.send_many(
                [
                    start_message([e.internal_id for e in chunk], duplicates)
                    for chunk in (stored[i : i + START_CHUNK] for i in range(0, len(stored), START_CHUNK))
                ]
            )
        else:
            self._dispatch(stored, set(duplicates), now, functions)
        return [e.internal_id for e in stored]

    def start(self, body: dict[str, Any]) -> None:
        """A ``start`` message: what ``accept`` hands on for a large request's stored events."""
        duplicates = set(body.get("duplicates") or [])
        stored = []
        for internal_id in body["event_ids"]:
            event = self.events.get_event(internal_id)
            if event is None:
                log.warning("start: event %s is not stored; nothing to start", internal_id)
                continue
            stored.append(event)
        self._dispatch(stored, duplicates, self.clock.now_ms(), {})

    def _dispatch(
        self, stored: list[StoredEvent], duplicates: set[str], now: int, functions: dict[str, list[FunctionRecord]]
    ) -> None:
        starts: list[dict[str, Any]] = []
        for event in stored:
            starts.extend(self._runs_for(event, functions, duplicate=event.internal_id in duplicates))
        if starts:
            self.queue.send_many(starts)
        # Duplicates too: a send retried after a failure half-way may be the first to reach the
        # waits. Resuming is idempotent (the memo's write decides), and waits that began after
        # the event was first received never see it.
        self.waits.on_events(stored, now)

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
        starts: list[dict[str, Any]] = []
        for fn in self._triggered(event, functions):
            # Flow control (rate limit, debounce, batching, idempotency, singleton, throttle)
            # decides what the event starts; without any, the run simply starts.
            starts.extend(self.flow.on_event(fn, event, duplicate=duplicate))
        return starts


def start_message(event_ids: list[str], duplicates: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": messages.START, "event_ids": event_ids}
    wanted = sorted(set(duplicates) & set(event_ids))
    if wanted:
        body["duplicates"] = wanted  # for flow control's idempotency (docs/protocol.md §9)
    return body
