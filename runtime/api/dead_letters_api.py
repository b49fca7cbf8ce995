"""Poison messages: list the dead-letter store, and redrive from it (``stepline.engine.delivery``).

``GET /v1/dead-letters`` lists what is there, with why; ``POST /v1/dead-letters/redrive`` puts
messages back on the work queue, ``{"ids": [...]}`` or ``{"all": true}``, and reopens the runs
dead-lettering failed. One redrive moves at most ``MAX_REDRIVE`` messages (an API call must end
within API Gateway's 30 s): ``more`` says to call again.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import query, raw_body
from stepline.api.runs_api import iso, page_limit
from stepline.engine.core import Engine
from stepline.engine.ports import DeadLetter

MAX_REDRIVE = 100


def dead_letter_json(entry: DeadLetter) -> dict[str, Any]:
    # The body as it was kept, unparsed: a dead letter may be malformed (that may be why it is
    # here), and the operator is shown what came. Its kind is read from it only for display.
    return {
        "id": entry.id,
        "kind": entry.body.get("kind") if isinstance(entry.body.get("kind"), str) else None,
        "run_id": entry.run_id,
        "reason": entry.reason.error,
        "receive_count": entry.reason.receive_count,
        "dead_at": iso(entry.dead_at),
        "body": entry.body,
    }


def redrive_request(body: Any) -> list[str] | None:
    """The ids to redrive, or None for all; ApiError naming the field for anything else."""
    if not isinstance(body, dict):
        raise ApiError(400, 'body: expected {"ids": [...]} or {"all": true}')
    unknown = sorted(set(body) - {"ids", "all"})
    if unknown:
        raise ApiError(400, f"{unknown[0]}: unknown field; expected ids or all")
    if ("ids" in body) == ("all" in body):
        raise ApiError(400, 'body: give exactly one of "ids" (a list of dead-letter ids) or "all": true')
    if "all" in body:
        if body["all"] is not True:
            raise ApiError(400, f"all: expected true, got {body['all']!r}")
        return None
    ids = body["ids"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ApiError(400, "ids: expected a non-empty list of dead-letter ids (strings)")
    if len(ids) > MAX_REDRIVE:
        raise ApiError(400, f"ids: at most {MAX_REDRIVE} per request, got {len(ids)}")
    return ids


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:

    def envelope(data: Any) -> Response:
        meta = {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}
        return json_response(200, {"data": data, "metadata": meta})

    @app.get("/v1/dead-letters")
    def list_dead_letters() -> Response:
        """Dead letters, oldest first where the store knows (limit 1-100, default 20)."""
        require_operator(app, engine)
        entries = engine.backend.dead_letters.list_dead(page_limit(query(app, "limit")))
        entries.sort(key=lambda e: (e.dead_at is None, e.dead_at or 0, e.id))
        return envelope([dead_letter_json(e) for e in entries])

    @app.post("/v1/dead-letters/redrive")
    def redrive() -> Response:
        require_operator(app, engine)
        ids = redrive_request(parse_json_body(raw_body(app)))
        moved, reopened = engine.delivery.redrive(ids, limit=len(ids) if ids else MAX_REDRIVE)
        return envelope({"redriven": moved, "runs_reopened": reopened, "more": ids is None and moved >= MAX_REDRIVE})
