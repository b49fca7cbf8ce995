"""Checkpoints from the TypeScript SDK: `POST /v1/checkpoint/{run_id}/async` (docs/protocol.md §17.1).

Authenticated like the rest of the SDK-facing API (the signing key's bearer deployed, none in
dev). 200 when every step is stored or was already; 409 when the call that sent it no longer
holds the run, which tells the SDK to stop; 4xx naming the field for anything else.
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import raw_body
from stepline.engine.checkpoint import StaleCall
from stepline.engine.core import Engine
from stepline.engine.ports import StoreError
from stepline.protocol.checkpoint_requests import parse_checkpoint_request


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    settings = engine.settings
    checkpoints = engine.checkpoints

    @app.post("/v1/checkpoint/<run_id>/async")
    def checkpoint_async(run_id: str) -> Response:
        require_app(app, engine)
        body = raw_body(app)
        if len(body) > settings.max_checkpoint_body_bytes:
            raise ApiError(413, f"body: {len(body)} bytes exceeds {settings.max_checkpoint_body_bytes}")
        request = parse_checkpoint_request(parse_json_body(body))
        try:
            recorded = checkpoints.record(run_id, request)
        except StaleCall as stale:
            raise ApiError(409, f"stale call: {stale}") from None
        except StoreError as exc:
            # The SDK retries, then ends the call with the steps in its reply.
            raise ApiError(503, f"run state is unavailable: {exc}") from exc
        return json_response(200, {"data": {"written": recorded.written, "repeated": recorded.repeated}})
