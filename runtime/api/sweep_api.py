"""``POST /v1/sweep``: run the sweeper now (``stepline.engine.sweeper``), as ``stepline sweep`` does.

The body is optional: ``{"grace_s": <seconds>, "max_runs": <1-100>}``. ``grace_s`` defaults to
the ``sweep_grace_s`` setting; a smaller one re-arms runs that are overdue by less, which is
harmless (everything the sweeper sends is) but sends duplicates of wake-ups that may still be on
their way. One call re-arms at most ``MAX_RUNS`` runs (an API call must end within API
Gateway's 30 s); ``more`` says to call again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import raw_body
from stepline.api.runs_api import iso
from stepline.engine.core import Engine

MAX_RUNS = 100


def sweep_request(raw: bytes) -> tuple[int | None, int]:
    """(grace in ms or None for the setting, max runs) from the request body, which may be
    empty; ApiError naming the field for anything else."""
    if not raw.strip():
        return None, MAX_RUNS
    body = parse_json_body(raw)
    if not isinstance(body, dict):
        raise ApiError(400, 'body: expected an object like {"grace_s": 60, "max_runs": 100}, or nothing')
    unknown = sorted(set(body) - {"grace_s", "max_runs"})
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field; expected grace_s or max_runs")
    grace = body.get("grace_s")
    if grace is not None and (
        isinstance(grace, bool) or not isinstance(grace, (int, float)) or not 0 <= grace <= 10**9
    ):
        raise ApiError(400, f"grace_s: expected a number of seconds, 0 or more, got {grace!r}")
    most = body.get("max_runs", MAX_RUNS)
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= MAX_RUNS:
        raise ApiError(400, f"max_runs: expected an integer from 1 to {MAX_RUNS}, got {most!r}")
    return (None if grace is None else int(grace * 1000)), most


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    @app.post("/v1/sweep")
    def sweep() -> Response:
        require_operator(app, engine)
        grace_ms, most = sweep_request(raw_body(app))
        report = engine.sweeper.sweep(grace_ms=grace_ms, max_runs=most)
        data: dict[str, Any] = {**report.as_json(), "before": iso(report.before_ms)}
        meta = {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}
        return json_response(200, {"data": data, "metadata": meta})
