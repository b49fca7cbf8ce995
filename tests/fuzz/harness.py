"""What every fuzz module drives: the real API resolver over a real engine on one backend, fed
the API Gateway v2 events the dev server builds (the same front door as deployed), and the
store reads that tell whether a refused request wrote anything."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import quote

from stepline.api.app import build_api
from stepline.dev.http_server import to_http_api_event
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.ports import Backend, Run, StoredEvent
from stepline.settings import Settings
from tests.engine.scripted_app import drop_all, register

# Beyond the 24 h event-id dedupe window and every flow-control window a test registers, so
# one example's events and rule state never meet the next one's.
EXAMPLE_GAP_MS = 25 * 3600 * 1000
# An error message that names what is wrong starts with where: `events[2].name: ...` (a path
# may hold the sender's own keys, `functions[1].steps.my step: ...`).
NAMED_PROBLEM = re.compile(r"^[^\s:][^\n]*?: \S")


def examples(default: int) -> int:
    """A property's example count: ``default`` for `make test`, or STEPLINE_FUZZ_EXAMPLES."""
    raw = os.environ.get("STEPLINE_FUZZ_EXAMPLES")
    return int(raw) if raw else default


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, Any]


class ReplyingApp:
    """The app's endpoint as the executor sees it: each call answers what ``respond`` returns
    (given the call URL and the parsed call request)."""

    def __init__(self) -> None:
        self.respond: Callable[[str, dict[str, Any]], HttpResponse] = lambda url, body: HttpResponse(200, b"null")
        # Calls left before the executor is taken to be calling in a loop (its time budget
        # never runs out on a manual clock): a failure then, instead of a hang.
        self.calls_left = 1000

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.calls_left -= 1
        assert self.calls_left >= 0, "the executor keeps calling the app with nothing changing"
        return self.respond(url, json.loads(body))


class World:
    """One backend with an engine, its API, and the app its executor calls."""

    def __init__(self, kind: str, backend: Backend, clock: ManualClock) -> None:
        self.kind = kind
        self.backend = backend
        self.clock = clock
        self.app = ReplyingApp()
        settings = Settings(mode="dev", retry_base_ms=100, retry_cap_ms=1000)
        self.engine = Engine(self.backend, settings, clock=self.clock, caller=self.app)
        self.resolver = build_api(self.engine)
        self.store = self.backend.store
        # Every message the engine hands the queue or the timers, as (due time, body): moto's
        # SQS hides a delayed message for real seconds, so a test that wants what comes next
        # reads it here, whatever the backend.
        self.sent: list[tuple[int, dict[str, Any]]] = []
        queue, timers = self.backend.queue, self.backend.timers
        send_many, schedule = queue.send_many, timers.schedule

        def record_many(bodies: list[dict[str, Any]], delay_seconds: int = 0) -> None:
            due = self.clock.now_ms() + delay_seconds * 1000
            self.sent.extend((due, dict(body)) for body in bodies)
            send_many(bodies, delay_seconds)

        def record_timer(name: str, fire_at_ms: int, body: dict[str, Any]) -> None:
            self.sent.append((int(body.get("not_before", fire_at_ms)), dict(body)))
            schedule(name, fire_at_ms, body)

        # send() goes through send_many(): SQLite's send() is a send_many() of one, recorded once.
        queue.send_many = record_many  # type: ignore[method-assign]
        queue.send = lambda body, delay_seconds=0: record_many([body], delay_seconds)  # type: ignore[method-assign]
        timers.schedule = record_timer  # type: ignore[method-assign]

    def __repr__(self) -> str:  # printed with every failing example
        return f"World({self.kind})"

    # -- requests -------------------------------------------------------------------------
    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                query: dict[str, str] | None = None) -> Reply:
        """One request through the resolver, as API Gateway (or the dev server) hands it over.
        An exception out of the resolver is what API Gateway answers 500 (or 502) for."""
        target = path
        if query:
            target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
        event = to_http_api_event(method, target, {"content-type": "application/json", **(headers or {})},
                                  body or b"", "127.0.0.1")
        result = self.resolver.resolve(event, None)
        raw = result.get("body") or ""
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw
        return Reply(int(result["statusCode"]), parsed, result.get("headers") or {})

    def register(self, app_id: str, configs: dict[str, dict[str, Any]]) -> None:
        """Sync an app whose functions (by id) have the given config (triggers, flow control)."""
        register(self.engine, list(configs), configs, app_id=app_id)

    # -- isolation ------------------------------------------------------------------------
    def tick(self) -> int:
        """Start an example: move the clock past every window, so what this example stores is
        exactly what has a time at or after the returned instant."""
        return self.clock.advance(EXAMPLE_GAP_MS)

    def events_since(self, since_ms: int) -> list[StoredEvent]:
        found: list[StoredEvent] = []
        cursor = None
        while True:
            page, cursor = self.store.list_events(limit=100, cursor=cursor, received_after=since_ms - 1)
            found += page
            if cursor is None:
                return found

    def runs_since(self, since_ms: int) -> list[Run]:
        found: list[Run] = []
        for fn in self.store.list_functions():
            cursor = None
            while True:
                page, cursor = self.store.list_runs(fn.fn_id, limit=100, cursor=cursor, created_after=since_ms - 1)
                found += page
                if cursor is None:
                    break
        return found

    def registry_snapshot(self) -> Any:
        """Every app and function as stored, and the cron schedules: what a sync may change."""
        apps = sorted(repr(a) for a in self.store.list_apps())
        functions = sorted(repr(f) for f in self.store.list_functions())
        return apps, functions, sorted(self.backend.timers.list_crons())

    def drain_queue(self) -> list[dict[str, Any]]:
        """Take every message visible now off the queue (acknowledged); their bodies."""
        return drop_all(self.backend)


def assert_well_formed(reply: Reply) -> None:
    """Never a 5xx; a refusal is a 4xx whose JSON body names the problem."""
    assert reply.status < 500, f"server error {reply.status}: {reply.body}"
    if reply.status >= 400:
        assert isinstance(reply.body, dict), reply.body
        assert reply.body.get("status") == reply.status, reply.body
        error = reply.body.get("error")
        assert isinstance(error, str) and error.strip(), reply.body


def assert_names_problem(reply: Reply, where: str | None = None) -> None:
    """A 4xx whose error starts with the path of what is wrong (``where`` when given)."""
    assert_well_formed(reply)
    assert 400 <= reply.status < 500, reply
    error = reply.body["error"]
    assert NAMED_PROBLEM.match(error), f"error does not start with a field path: {error!r}"
    if where is not None:
        assert error.startswith(where), f"expected the error to name {where!r}: {error!r}"
