"""``POST /v1/erasures``: erase data on request (``stepline.engine.erasure``), operator key only.

Body, one of:

* ``{"run_id": "..."}``: one run and everything stored for it;
* ``{"event_id": "..."}``: one event (its internal id, as the Event API returned it) and every
  run it started;
* ``{"if": "<CEL over event>", "received_after": t, "received_before": t, "name": "..."}``: the
  events received inside the window (both bounds required, exclusive; RFC3339 or epoch ms) whose
  data the expression matches, of one name when ``name`` is given, each with its runs. One call
  looks at up to 200 events: while ``more`` is true, call again with the ``cursor`` it returned.

The answer says what went (counts, and the ids of the runs and events erased); a run or event
with nothing stored is a 404.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import raw_body
from stepline.api.runs_api import iso, parse_time
from stepline.engine.core import Engine
from stepline.engine.erasure import ErasureReport
from stepline.engine.expressions import ExpressionError, compile_expression
from stepline.engine.records import NOTHING

_BY_FILTER = {"if", "received_after", "received_before", "name", "cursor"}


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{name}: expected a non-empty string")
    return value


def _time(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ApiError(400, f"{name}: required, an RFC3339 time or epoch milliseconds")
    parsed = parse_time(name, str(value))
    if parsed is None:
        raise ApiError(400, f"{name}: required, an RFC3339 time or epoch milliseconds")
    return parsed


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    @app.post("/v1/erasures")
    def erase() -> Response:
        require_operator(app, engine)
        body = parse_json_body(raw_body(app))
        if not isinstance(body, dict):
            raise ApiError(
                400, 'body: expected {"run_id": ...}, {"event_id": ...} or {"if": ..., "received_after": ...}'
            )
        modes = [m for m in ("run_id", "event_id", "if") if m in body]
        if len(modes) != 1:
            raise ApiError(400, 'body: give exactly one of "run_id", "event_id" or "if" (with a time window)')
        allowed = _BY_FILTER if modes == ["if"] else {modes[0]}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(400, f"{unknown[0]}: unknown field for an erasure by {modes[0]}")
        report: ErasureReport
        if modes == ["run_id"]:
            run_id = _text(body, "run_id") or ""
            report = engine.erasure.erase_run(run_id)
            if report.erased == NOTHING:
                raise ApiError(404, f"run {run_id!r} not found: nothing to erase")
        elif modes == ["event_id"]:
            event_id = _text(body, "event_id") or ""
            report = engine.erasure.erase_event(event_id)
            if report.erased == NOTHING:
                raise ApiError(404, f"event {event_id!r} not found: nothing to erase")
        else:
            expression = _text(body, "if") or ""
            try:
                compile_expression(expression)
            except ExpressionError as exc:
                raise ApiError(400, f"if: {exc}") from exc
            after, before = _time(body, "received_after"), _time(body, "received_before")
            if after >= before:
                raise ApiError(400, "received_before: must be later than received_after")
            report = engine.erasure.erase_matching(
                expression,
                received_after=after,
                received_before=before,
                name=_text(body, "name", required=False),
                cursor=_text(body, "cursor", required=False),
            )
        meta = {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}
        return json_response(200, {"data": report.as_json(), "metadata": meta})
