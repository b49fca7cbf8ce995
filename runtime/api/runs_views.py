"""Runs across functions, a run's steps, and operator-started runs (replay, rerun from a step).

``GET /v1/runs`` lists runs newest first over every registered function (or the ones asked for).
The store lists runs per function (``RunStore.list_runs``, one index partition each), so this
merges one lazily paged listing per function: a page costs about one store query per function,
and no index of all runs is kept just for operators. The cursor is the last run returned
(created_at and run id), so it stays valid while new runs arrive. Runs of a function that is no
longer registered are listed only when asked for by ``function_id``.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app, require_operator
from stepline.api.errors import ApiError, found, json_response, parse_json_body
from stepline.api.request import query, raw_body
from stepline.api.runs_api import MAX_PAGE, MAX_TIME_MS, MIN_TIME_MS, iso, page_limit, parse_time, run_json
from stepline.api.steps_view import steps_json
from stepline.engine.core import Engine
from stepline.engine.ports import Run, RunStatus, RunStore
from stepline.engine.replay import ReplayError

# REST status -> store statuses: a queued run reads as Running.
STATUSES: dict[str, list[RunStatus]] = {
    "Running": [RunStatus.RUNNING, RunStatus.QUEUED],
    "Completed": [RunStatus.COMPLETED],
    "Failed": [RunStatus.FAILED],
    "Cancelled": [RunStatus.CANCELLED],
}


def encode_position(run: Run) -> str:
    raw = json.dumps([run.created_at, run.run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_position(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        # Only what encode_position writes: a run's creation time and id.
        if type(created_at) is int and MIN_TIME_MS <= created_at < MAX_TIME_MS and isinstance(run_id, str):
            return created_at, run_id
    except (binascii.Error, ValueError, TypeError, RecursionError):
        pass
    raise ApiError(400, f"cursor: not a cursor this API returned: {cursor[:64]!r}")


# No status filter: one stream per function, of every status.
_ANY_STATUS: list[RunStatus | None] = [None]


def _pages(
    store: RunStore, fn_id: str, status: RunStatus | None, after: int | None, before: int | None, size: int
) -> Iterator[Run]:
    """One function's runs, newest first, fetched a page at a time as the merge asks for more."""
    cursor: str | None = None
    while True:
        runs, cursor = store.list_runs(
            fn_id, limit=size, cursor=cursor, status=status, created_after=after, created_before=before
        )
        yield from runs
        if cursor is None:
            return


def list_runs(
    store: RunStore,
    fn_ids: list[str],
    statuses: list[RunStatus] | None,
    *,
    limit: int,
    cursor: str | None = None,
    created_after: int | None = None,
    created_before: int | None = None,
) -> tuple[list[Run], str | None]:
    position = decode_position(cursor) if cursor else None
    before = created_before
    if position is not None:
        # Bounds are exclusive: +1 keeps runs created in the cursor's millisecond.
        before = position[0] + 1 if before is None else min(before, position[0] + 1)
    size = min(limit + 1, MAX_PAGE)
    streams = [
        _pages(store, fn_id, status, created_after, before, size)
        for fn_id in fn_ids
        for status in (statuses or _ANY_STATUS)
    ]
    merged = heapq.merge(*streams, key=lambda r: (r.created_at, r.run_id), reverse=True)
    page: list[Run] = []
    for run in merged:
        if position is not None and (run.created_at, run.run_id) >= position:
            continue
        page.append(run)
        if len(page) > limit:
            break
    more = len(page) > limit
    page = page[:limit]
    return page, (encode_position(page[-1]) if more else None)


def listed_run(run: Run) -> dict[str, Any]:
    # The trigger's name, so a listing reads without fetching each event.
    return {**run_json(run), "event_name": run.events[0].get("name") if run.events else None}


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    b = engine.backend  # the store through its ports: b.events, b.runs, b.apps
    replays = engine.replays

    def envelope(data: Any, **extra: Any) -> Response:
        meta = {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}
        return json_response(200, {"data": data, "metadata": meta, **extra})

    @app.get("/v1/runs")
    def list_all_runs() -> Response:
        """Runs newest first; filters: function_id and app_id (comma-separated lists), status
        (Running, Completed, Failed, Cancelled; comma-separated), created_after/created_before
        (RFC3339 or epoch ms, exclusive), limit (1-100, default 20), cursor."""
        require_app(app, engine)
        limit = page_limit(query(app, "limit"))
        statuses: list[RunStatus] | None = None
        if query(app, "status"):
            statuses = []
            for name in (n.capitalize() for n in _split(query(app, "status"))):
                if name not in STATUSES:
                    raise ApiError(400, f"status: expected one of {', '.join(STATUSES)}, got {name!r}")
                statuses += [s for s in STATUSES[name] if s not in statuses]  # each listed once
        fn_ids = _split(query(app, "function_id"))
        app_ids = _split(query(app, "app_id"))
        if not fn_ids:
            fn_ids = sorted(f.fn_id for f in b.apps.list_functions() if not app_ids or f.app_id in app_ids)
        runs, cursor = list_runs(
            b.runs,
            fn_ids,
            statuses,
            limit=limit,
            cursor=query(app, "cursor"),
            created_after=parse_time("created_after", query(app, "created_after")),
            created_before=parse_time("created_before", query(app, "created_before")),
        )
        return envelope([listed_run(r) for r in runs], cursor=cursor)

    @app.get("/v1/runs/<run_id>/jobs")
    def run_jobs(run_id: str) -> Response:
        """The run's steps alone (what GET /v1/runs/{id} returns under `steps`)."""
        require_app(app, engine)
        state = found(b.runs.load_run(run_id), "run", run_id)
        return envelope(steps_json(state))

    @app.post("/v1/runs/<run_id>/replay")
    def replay_run(run_id: str) -> Response:
        require_operator(app, engine)
        with _replay_errors():
            run = replays.replay(run_id)
        return envelope(run_json(run))

    @app.post("/v1/runs/<run_id>/rerun")
    def rerun_run(run_id: str) -> Response:
        """Body: {"step_id": <a step id from the run's steps>}."""
        require_operator(app, engine)
        body = parse_json_body(raw_body(app))
        step_id = body.get("step_id") if isinstance(body, dict) else None
        if not isinstance(step_id, str) or not step_id:
            raise ApiError(400, "step_id: required, the id of the step to run again (from the run's steps)")
        with _replay_errors():
            run = replays.rerun_from(run_id, step_id)
        return envelope(run_json(run))


@contextmanager
def _replay_errors() -> Iterator[None]:
    try:
        yield
    except ReplayError as exc:
        raise ApiError(exc.status, exc.message) from exc


def _split(value: str | None) -> list[str]:
    """A comma-separated filter's values, each once (a repeated one would list its runs twice)."""
    return list(dict.fromkeys(part.strip() for part in (value or "").split(",") if part.strip()))
