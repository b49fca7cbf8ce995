"""The Inngest REST API v1 basics (events, runs, cancel) and the v0 routes SDKs call for large
state (`use_api`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app, require_operator
from stepline.api.errors import ApiError, found, json_response, parse_json_body
from stepline.api.request import query, raw_body
from stepline.api.steps_view import steps_json
from stepline.engine.core import Engine
from stepline.engine.expressions import ExpressionError, compile_expression
from stepline.engine.ports import Run, RunStatus, StoredEvent, StoreError

MAX_PAGE = 100
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The instants RFC3339 can write (years 1 to 9999), as epoch ms: a time filter outside them can
# only be a mistake, and the stores' integers cannot hold much more.
MIN_TIME_MS = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)
MAX_TIME_MS = (datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC) - EPOCH) // timedelta(milliseconds=1)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(name: str, value: str | None) -> int | None:
    """RFC3339 (UTC when it names no zone) or epoch milliseconds, from year 1 to 9999."""
    if value is None or value == "":
        return None
    expected = f"{name}: expected an RFC3339 time or epoch milliseconds (years 1 to 9999), got {value[:64]!r}"
    if value.isascii() and value.isdigit():
        ms = int(value) if len(value) <= len(str(MAX_TIME_MS)) else MAX_TIME_MS + 1
    else:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = (parsed - EPOCH) // timedelta(milliseconds=1)
        except (ValueError, OverflowError) as exc:
            raise ApiError(400, expected) from exc
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise ApiError(400, expected)
    return ms


def page_limit(text: str | None) -> int:
    """The ``limit`` query parameter of a listing: 1 to MAX_PAGE, 20 when absent."""
    text = text or "20"
    # ASCII digits only: str.isdigit() also takes "²" and "١", which int() refuses or reads.
    if not (text.isascii() and text.isdigit() and len(text) <= 3 and 1 <= int(text) <= MAX_PAGE):
        raise ApiError(400, f"limit: expected an integer from 1 to {MAX_PAGE}, got {text[:64]!r}")
    return int(text)


def _text(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ApiError(400, f"{name}: expected an RFC3339 time or epoch milliseconds, got {json.dumps(value)[:64]}")


def event_json(event: StoredEvent) -> dict[str, Any]:
    return {
        "internal_id": event.internal_id,
        "id": event.id,
        "name": event.name,
        "data": event.data,
        "user": event.user,
        "ts": event.ts,
        "v": event.v,
        "received_at": iso(event.received_at),
    }


def run_json(run: Run) -> dict[str, Any]:
    # Queued runs read as Running: the REST API's statuses are Running/Completed/Failed/Cancelled.
    status = RunStatus.RUNNING if run.status == RunStatus.QUEUED else run.status
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "function_id": run.fn_id,
        "app_id": run.app_id,
        "status": status.value,
        "event_id": run.event_ids[0] if run.event_ids else None,
        "event_ids": run.event_ids,
        "created_at": iso(run.created_at),
        "run_started_at": iso(run.started_at or run.created_at),
        "ended_at": iso(run.ended_at),
        "output": run.output,
    }
    if run.error is not None:
        out["error"] = run.error
    if run.origin:
        out["origin"] = run.origin  # a replay or rerun: which run it came from
    if run.app_version:
        out["app_version"] = run.app_version  # the app version the run started on (pinned to)
    return out


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    b = engine.backend  # the store through its ports: b.events, b.runs, b.apps

    def envelope(data: Any, **extra: Any) -> Response:
        now = engine.clock.now_ms()
        return json_response(200, {"data": data, "metadata": {"fetched_at": iso(now), "cached_until": None}, **extra})

    @app.get("/v1/events")
    def list_events() -> Response:
        require_app(app, engine)
        cursor = query(app, "cursor") or None  # empty: the first page
        try:
            events, cursor = b.events.list_events(
                limit=page_limit(query(app, "limit")),
                cursor=cursor,
                name=query(app, "name"),
                received_after=parse_time("received_after", query(app, "received_after")),
                received_before=parse_time("received_before", query(app, "received_before")),
            )
        except ValueError as exc:
            if cursor is None:
                raise
            # The stores' answer to a cursor they never returned (RunStore.list_events).
            raise ApiError(400, f"cursor: not a cursor this API returned: {cursor[:64]!r}") from exc
        return envelope([event_json(e) for e in events], cursor=cursor)

    @app.get("/v1/events/<event_id>")
    def get_event(event_id: str) -> Response:
        require_app(app, engine)
        event = found(b.events.get_event(event_id), "event", event_id)
        return envelope(event_json(event))

    @app.get("/v1/events/<event_id>/runs")
    def event_runs(event_id: str) -> Response:
        require_app(app, engine)
        runs = b.runs.runs_for_event(event_id)
        # No runs may mean the event started none, or that there is no such event: only the
        # first is an empty list, the second is the 404 GET /v1/events/{id} answers too.
        if not runs and b.events.get_event(event_id) is None:
            raise ApiError(404, f"event {event_id!r} not found")
        return envelope([run_json(r) for r in runs])

    @app.get("/v1/runs/<run_id>")
    def get_run(run_id: str) -> Response:
        require_app(app, engine)
        state = found(b.runs.load_run(run_id), "run", run_id)
        return envelope({**run_json(state.run), "events": state.run.events, "steps": steps_json(state)})

    @app.delete("/v1/runs/<run_id>")
    def cancel_run(run_id: str) -> Response:
        require_operator(app, engine)
        run = found(engine.cancel_run(run_id), "run", run_id)
        return envelope(run_json(run))

    @app.post("/v1/cancellations")
    def bulk_cancel() -> Response:
        """Cancel a function's live runs started inside a window, optionally only those whose
        trigger event matches a CEL expression (`if`)."""
        require_operator(app, engine)
        body = parse_json_body(raw_body(app))
        if not isinstance(body, dict):
            raise ApiError(400, "body: expected a JSON object")
        fn_id = body.get("function_id")
        if not isinstance(fn_id, str) or not fn_id:
            raise ApiError(400, "function_id: required, the function's full id (app id and function id)")
        if (
            body.get("app_id")
            and not fn_id.startswith(f"{body['app_id']}-")
            and b.apps.get_function(f"{body['app_id']}-{fn_id}")
        ):
            fn_id = f"{body['app_id']}-{fn_id}"
        if b.apps.get_function(fn_id) is None:
            raise ApiError(404, f"function_id: no function {fn_id!r}")
        expression = body.get("if")
        if expression is not None:
            if not isinstance(expression, str):
                raise ApiError(400, "if: expected a CEL expression string")
            try:
                compile_expression(expression)
            except ExpressionError as exc:
                raise ApiError(400, f"if: {exc}") from exc
        started_after = parse_time("started_after", _text("started_after", body.get("started_after")))
        started_before = parse_time("started_before", _text("started_before", body.get("started_before")))
        count = engine.cancellation.cancel_many(
            fn_id, started_after=started_after, started_before=started_before, expression=expression
        )
        return json_response(
            200,
            {
                "id": engine.ids.new(),
                "function_id": fn_id,
                "cancelled": count,
                "started_after": iso(started_after),
                "started_before": iso(started_before),
                "if": expression,
            },
        )

    @app.get("/v1/apps")
    def list_apps() -> Response:
        require_app(app, engine)
        return envelope(
            [
                {
                    "app_id": a.app_id,
                    "url": a.url,
                    "sdk": a.sdk,
                    "framework": a.framework,
                    "synced_at": iso(a.synced_at),
                    "function_ids": a.function_ids,
                }
                for a in b.apps.list_apps()
            ]
        )

    @app.get("/v1/apps/<app_id>/functions")
    def app_functions(app_id: str) -> Response:
        """Each function of the app with its configuration as registered (read-only; `stepline
        check --register-via` reads it)."""
        require_app(app, engine)
        record = found(b.apps.get_app(app_id), "app", app_id)
        functions = [b.apps.get_function(fn_id) for fn_id in record.function_ids]
        return envelope(
            [
                {
                    "function_id": f.fn_id,
                    "app_id": f.app_id,
                    "name": f.name,
                    "url": f.url,
                    "event_triggers": f.event_triggers,
                    "config": f.config,
                }
                for f in functions
                if f is not None
            ]
        )

    # The SDKs call these two when a call request says `use_api` (docs/protocol.md §5.3): the run's
    # events as an array, and its memos as the object a request's `steps` would hold. They carry
    # the run's largest state, so they are gzipped when the SDK accepts it (both SDKs do): a
    # Lambda response is capped at 6 MB. Errors keep the `{"error", "status"}` shape the SDKs
    # parse; a store failure is a 503, which fails the SDK's call and so retries it.
    @app.get("/v0/runs/<run_id>/batch", compress=True)
    def run_batch(run_id: str) -> Response:
        require_app(app, engine)
        with _store_unavailable_is_503():
            run = found(b.runs.get_run(run_id), "run", run_id)
        return json_response(200, run.events)

    @app.get("/v0/runs/<run_id>/actions", compress=True)
    def run_actions(run_id: str) -> Response:
        require_app(app, engine)
        with _store_unavailable_is_503():
            state = found(b.runs.load_run(run_id), "run", run_id)
        return json_response(200, state.memo_map())


@contextmanager
def _store_unavailable_is_503() -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        raise ApiError(503, f"run state is unavailable: {exc}") from exc
