"""The HTTP API, as one powertools resolver: the API Lambda serves it behind API Gateway, and
`stepline dev` serves the very same resolver by turning each local request into an HTTP API
(payload v2) event. One set of routes, two front doors.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from stepline.api import (
    checkpoint_api,
    dashboard,
    dead_letters_api,
    erasure_api,
    events_api,
    functions_api,
    metrics_api,
    openapi,
    register_api,
    runs_api,
    runs_views,
    send_api,
    signals_api,
    sweep_api,
    webhooks_api,
)
from stepline.api.errors import ApiError, json_response
from stepline.engine.core import Engine
from stepline.protocol.errors import ProtocolError

log = logging.getLogger(__name__)


class ApiResolver(APIGatewayHttpResolver):
    """Powertools' HTTP API resolver, with what it knows of the request it serves (the event, and
    the routing context holding the path's arguments) kept per thread. Powertools keeps the event
    on its base class (``BaseRouter.current_event``, shared by every instance) and the context on
    the instance: requests resolved at once on several threads (``stepline dev``'s server, a test
    standing in for API Gateway) read each other's path arguments and headers. Handlers and
    powertools itself read both through ``current_event`` and ``context``."""

    @property
    def _request(self) -> threading.local:
        # Made on first use: powertools' __init__ sets ``context`` before ours could run.
        local: threading.local | None = self.__dict__.get("_local")
        if local is None:
            local = self.__dict__.setdefault("_local", threading.local())
        return local

    @property  # type: ignore[override]  # an attribute in powertools, a property here
    def current_event(self) -> APIGatewayProxyEventV2:
        event: APIGatewayProxyEventV2 | None = getattr(self._request, "event", None)
        if event is None:
            raise RuntimeError("current_event: no request is being resolved on this thread")
        return event

    @current_event.setter
    def current_event(self, event: APIGatewayProxyEventV2) -> None:
        self._request.event = event

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] | None = getattr(self._request, "context", None)
        if context is None:
            context = self._request.context = {}
        return context

    @context.setter
    def context(self, value: dict[str, Any]) -> None:
        self._request.context = value

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        # A handler may cause a request to this same resolver, on this thread, before it answers
        # (an app invoked in-process registering through it): the outer request is served on
        # once that returns, with its own event and routing context.
        request = self._request
        outer = getattr(request, "event", None), getattr(request, "context", None)
        request.event, request.context = APIGatewayProxyEventV2(dict(event)), {}
        try:
            return super().resolve(event, context)
        finally:
            request.event, request.context = outer


def build_api(engine: Engine) -> APIGatewayHttpResolver:
    app = ApiResolver(serializer=lambda obj: json.dumps(obj, separators=(",", ":")))

    events_api.add_routes(app, engine)
    register_api.add_routes(app, engine)
    runs_api.add_routes(app, engine)
    checkpoint_api.add_routes(app, engine)
    signals_api.add_routes(app, engine)
    # Operating it: the rest of the REST API, its OpenAPI document and the dashboard.
    runs_views.add_routes(app, engine)
    functions_api.add_routes(app, engine)
    send_api.add_routes(app, engine)
    dead_letters_api.add_routes(app, engine)
    sweep_api.add_routes(app, engine)
    erasure_api.add_routes(app, engine)
    metrics_api.add_routes(app, engine)
    # Verified webhooks: providers' signed deliveries become events (docs/webhooks.md).
    webhooks_api.add_routes(app, engine)
    openapi.add_routes(app)
    dashboard.add_routes(app)

    @app.get("/health")
    def health() -> Response:
        return json_response(200, {"status": "ok", "mode": engine.settings.mode})

    @app.exception_handler(ApiError)
    def on_api_error(exc: ApiError) -> Response:
        return json_response(exc.status, exc.body())

    @app.exception_handler(ProtocolError)
    def on_protocol_error(exc: ProtocolError) -> Response:
        return json_response(exc.status, {"error": exc.message, "status": exc.status})

    @app.not_found
    def not_found(exc: Any) -> Response:
        path = app.current_event.path
        method = app.current_event.http_method
        return json_response(404, {"error": f"no route for {method} {path}", "status": 404})

    return app
