"""Functions as registered (with their flow-control settings and their app's last sync), and
syncing an app by URL from the API, the way `stepline dev -u URL` does at start."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import require_app, require_operator
from stepline.api.errors import ApiError, found, json_response, parse_json_body
from stepline.api.request import headers, raw_body
from stepline.api.runs_api import iso
from stepline.engine.core import Engine
from stepline.engine.records import AppRecord, FunctionRecord
from stepline.engine.sync_request import SyncFailed, sync_target

# Registered config keys (wire names) that shape when and how often runs start and execute.
FLOW_CONTROL_KEYS = (
    "concurrency",
    "throttle",
    "rateLimit",
    "debounce",
    "batchEvents",
    "idempotency",
    "singleton",
    "priority",
    "cancel",
    "timeouts",
)
# An API request must answer within API Gateway's 30 s: a couple of quick tries, not dev's minute.
SYNC_ATTEMPTS = 2
SYNC_INTERVAL_S = 0.5


def app_json(app: AppRecord) -> dict[str, Any]:
    return {
        "app_id": app.app_id,
        "url": app.url,
        "sdk": app.sdk,
        "framework": app.framework,
        "app_version": app.app_version,
        "synced_at": iso(app.synced_at),
        "function_ids": app.function_ids,
    }


def function_json(fn: FunctionRecord, app: AppRecord | None) -> dict[str, Any]:
    config = fn.config
    return {
        "function_id": fn.fn_id,
        "app_id": fn.app_id,
        "name": fn.name,
        "url": fn.url,
        "triggers": config.get("triggers") or [],
        "retries": fn.retries,
        "flow_control": {key: config[key] for key in FLOW_CONTROL_KEYS if config.get(key) is not None},
        "last_synced_at": iso(app.synced_at) if app else None,
        "config": config,
    }


def add_routes(app: APIGatewayHttpResolver, engine: Engine) -> None:
    catalog = engine.backend.apps  # the AppStore: apps and their functions

    def envelope(data: Any) -> Response:
        meta = {"fetched_at": iso(engine.clock.now_ms()), "cached_until": None}
        return json_response(200, {"data": data, "metadata": meta})

    @app.get("/v1/functions")
    def list_functions() -> Response:
        require_app(app, engine)
        apps = {a.app_id: a for a in catalog.list_apps()}
        functions = sorted(catalog.list_functions(), key=lambda f: (f.app_id, f.fn_id))
        return envelope([function_json(f, apps.get(f.app_id)) for f in functions])

    @app.get("/v1/functions/<fn_id>")
    def get_function(fn_id: str) -> Response:
        require_app(app, engine)
        fn = found(catalog.get_function(fn_id), "function", fn_id)
        return envelope(function_json(fn, catalog.get_app(fn.app_id)))

    @app.post("/v1/functions/<fn_id>/invoke")
    def invoke(fn_id: str) -> Response:
        """Body {"data": {...}}: start a run of the function now with that event data, whatever
        its triggers (the dashboard's Invoke)."""
        require_operator(app, engine)
        fn = found(catalog.get_function(fn_id), "function", fn_id)
        body = parse_json_body(raw_body(app) or b"{}")
        data = body.get("data", {}) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise ApiError(400, "data: expected a JSON object, the invoked event's data")
        event, run_id = engine.invoke(fn, data, engine.telemetry.sender(headers(app)))
        return envelope({"event_id": event.internal_id, "run_id": run_id})

    @app.post("/v1/apps/sync")
    def sync() -> Response:
        """Body {"url": <the app's serve URL, or its Lambda function ARN>, "force": false}: ask the
        app to sync (PUT), as `stepline dev -u` does; the SDK then registers its functions with
        the server it is configured for. "force" lets the sync move an app registered at another
        origin. An ARN is synced through lambda:Invoke (stepline.engine.sync_request)."""
        require_operator(app, engine)
        body = parse_json_body(raw_body(app))
        url = body.get("url") if isinstance(body, dict) else None
        force = body.get("force", False) if isinstance(body, dict) else False
        if not isinstance(force, bool):
            raise ApiError(400, f"force: expected true or false, got {force!r}")
        try:
            synced = sync_target(engine, url, force=force, attempts=SYNC_ATTEMPTS, interval_s=SYNC_INTERVAL_S)
        except SyncFailed as failed:
            raise ApiError(failed.status, failed.message) from failed
        return envelope({"url": synced.url, "synced": True, "apps": [app_json(a) for a in synced.apps]})
