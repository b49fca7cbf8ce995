"""`POST /v1/events`: send events with the signing key's bearer instead of an event key, so the
dashboard's "send a test event" and `stepline send` need one credential for everything. The body
and the reply are the Event API's (one event or an array; ``{"ids": [...], "status": 200}``)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import json_response
from stepline.api.request import raw_body
from stepline.engine.core import Engine
from stepline.protocol.events import parse_event_batch


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    settings = engine.settings

    @app.post("/v1/events")
    def send_events() -> Response:
        require_operator(app, engine)
        payloads = parse_event_batch(
            raw_body(app),
            max_events=settings.max_events_per_request,
            max_bytes=settings.max_event_body_bytes,
            max_event_bytes=settings.max_event_bytes,
        )
        ids = engine.ingest.accept([p.model_dump() for p in payloads], max_runs=settings.max_runs_per_request)
        return json_response(200, {"ids": ids, "status": 200})
