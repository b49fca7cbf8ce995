"""``GET /metrics``: the runtime's metrics in Prometheus' text format (``stepline dev`` and
``stepline start``; stepline.telemetry.metrics). Deployed, metrics go to CloudWatch instead and
this answers 404 saying so. Operator key in cloud mode, as the other routes that show the
runtime's insides: a scraper sends it as its bearer token."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_operator
from stepline.api.errors import ApiError
from stepline.engine.core import Engine


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        require_operator(app, engine)
        sink = engine.telemetry.metrics
        exposition = getattr(sink, "exposition", None)
        if exposition is None:
            raise ApiError(404, "metrics: this runtime sends its metrics to CloudWatch, not to /metrics")
        from stepline.telemetry.metrics import PROMETHEUS_CONTENT_TYPE

        return Response(status_code=200, content_type=PROMETHEUS_CONTENT_TYPE, body=exposition().decode())
