"""App sync: `POST /fn/register` (docs/protocol.md §4.1)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app
from stepline.api.errors import ApiError, json_response
from stepline.api.request import header, query, raw_body
from stepline.engine.core import Engine
from stepline.engine.sync_guard import SyncRefused
from stepline.protocol.register import DEPLOY_ID_PARAM, parse_register


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    settings = engine.settings

    @app.post("/fn/register")
    def register() -> Response:
        require_app(app, engine)
        expected = header(app, "x-inngest-expected-server-kind")
        if expected and expected != settings.mode:
            raise ApiError(400, f"Expected server kind {expected}, got {settings.mode}", ok=False)
        body = raw_body(app)
        if len(body) > settings.max_register_body_bytes:
            raise ApiError(413, f"body: {len(body)} bytes exceeds {settings.max_register_body_bytes}", ok=False)
        sync = parse_register(body)
        try:
            # The SDKs pass the sync request's deployId on here: it may be a move token.
            modified = engine.registry.register(sync, move_token_value=query(app, DEPLOY_ID_PARAM))
        except SyncRefused as refused:
            raise ApiError(refused.status, refused.message, ok=False) from refused
        return json_response(200, {"ok": True, "modified": modified, "status": 200})
