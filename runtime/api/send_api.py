"""`POST /v1/events`: send events with the signing key's bearer instead of an event key, so the
dashboard's "send a test event" and `stepline send` need one credential for everything. The body
and the reply are the Event API's (one event or an array; ``{"ids": [...], "status": 200}``)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.events_api import accept_events
from stepline.api.request import headers, raw_body
from stepline.engine.core import Engine


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    @app.post("/v1/events")
    def send_events() -> Response:
        require_operator(app, engine)
        return accept_events(engine, raw_body(app), sender=engine.telemetry.sender(headers(app)))
