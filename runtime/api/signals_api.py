"""`POST /v1/signals`: resume the run waiting for a signal (docs/steps/signals.md; the wire in
docs/protocol.md §10.4), as TypeScript's ``inngest.sendSignal`` / ``step.sendSignal`` and
Stepline's ``client.send_signal`` and ``stepline signal`` send it.

Authenticated like the rest of the SDK-facing API (the signing key's bearer, or the operator key;
none in dev). 200 ``{"data": {"run_id": ...}}`` when this request resumed a run; 404 when no run
waits for the signal (the TypeScript SDK reads a 404 as "sent, no run resumed").
"""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app
from stepline.api.errors import ApiError, json_response, parse_json_body
from stepline.api.request import headers, raw_body
from stepline.engine.core import Engine
from stepline.protocol.signals import MAX_SIGNAL_BODY_BYTES, parse_signal_body


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    @app.post("/v1/signals")
    def send_signal() -> Response:
        require_app(app, engine)
        body = raw_body(app)
        if len(body) > MAX_SIGNAL_BODY_BYTES:
            raise ApiError(413, f"body: {len(body)} bytes exceeds {MAX_SIGNAL_BODY_BYTES}")
        signal, data = parse_signal_body(parse_json_body(body))
        # The run's signal span links to the sender's span, when it sent one.
        with engine.telemetry.sent_by(engine.telemetry.sender(headers(app))):
            run_id = engine.signals.send(signal, data)
        if run_id is None:
            raise ApiError(404, f"signal: no run waits for signal {signal!r}")
        return json_response(200, {"data": {"run_id": run_id}})
