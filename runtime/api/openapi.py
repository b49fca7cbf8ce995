"""The OpenAPI 3.1 document of every route the API serves, at ``GET /openapi.json``.

Written by hand, next to the routes: ``tests/operating/test_openapi.py`` fails when a route is
added, removed or renamed without this document following (paths and methods, both ways).
Served without auth, like the docs: it describes the API and holds no data.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from stepline.api.auth import OPERATOR_ROUTES
from stepline.api.errors import json_response

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(
    name: str, where: str = "query", description: str = "", schema: dict | None = None, required: bool | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": where, "schema": schema or {"type": "string"}}
    if description:
        out["description"] = description
    if where == "path" or required:
        out["required"] = True
    return out


def _path_param(name: str, description: str) -> dict[str, Any]:
    return _param(name, "path", description)


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"200": {"description": description, "content": {JSON: {"schema": schema}}}, **_ERRORS}


def _data(schema: dict[str, Any], cursor: bool = False) -> dict[str, Any]:
    """The REST envelope: {data, metadata} (and cursor for listings)."""
    props: dict[str, Any] = {"data": schema, "metadata": _ref("Metadata")}
    if cursor:
        props["cursor"] = {"type": ["string", "null"], "description": "next page, null at the end"}
    return {"type": "object", "required": ["data", "metadata"], "properties": props}


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": schema}}}


_ERRORS = {
    "4XX": {
        "description": "Bad input (the error names the field), missing auth, or not found",
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    },
}
_TIME = {"type": "string", "description": "RFC3339 time or epoch milliseconds"}
_LIMIT = _param(
    "limit", description="page size, 1-100 (default 20)", schema={"type": "integer", "minimum": 1, "maximum": 100}
)
_CURSOR = _param("cursor", description="the cursor of the previous page")
_BEARER: list[dict[str, list[str]]] = [{"signingKey": []}, {"operatorKey": []}]
_OPERATOR: list[dict[str, list[str]]] = [{"operatorKey": []}]
_PUBLIC: list[dict[str, list[str]]] = []
# W3C trace context (docs/operating.md, observability): the runs a request's events start join the
# sender's trace, and the span of a run a signal resumes links to its sender.
_TRACE_CONTEXT = [
    _param(
        "traceparent",
        "header",
        "W3C trace context of the sending span: runs this request starts continue its trace (their root "
        "span is its child and links to it), a signal's span in the run it resumes links to it; an invalid "
        "value is ignored",
    ),
    _param("tracestate", "header", "W3C trace state, kept with traceparent"),
]


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    tags: list[str],
    params: list | None = None,
    body: dict | None = None,
    security: list | None = None,
    description: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": tags, "responses": responses}
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    return op


def _schemas() -> dict[str, Any]:
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
        },
        "Metadata": {
            "type": "object",
            "properties": {
                "fetched_at": {"type": "string", "format": "date-time"},
                "cached_until": {"type": ["string", "null"]},
            },
        },
        "Event": {
            "type": "object",
            "required": ["internal_id", "id", "name", "data", "ts"],
            "properties": {
                "internal_id": {"type": "string", "description": "the id the Event API returned"},
                "id": {"type": "string", "description": "event.id as functions see it"},
                "name": {"type": "string"},
                "data": {"type": "object"},
                "user": {"type": "object"},
                "ts": {"type": "integer"},
                "v": {"type": ["string", "null"]},
                "received_at": {"type": "string", "format": "date-time"},
            },
        },
        "EventInput": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "data": {"type": "object"},
                "id": {"type": "string"},
                "ts": {"type": "integer"},
                "user": {"type": "object"},
                "v": {"type": "string"},
            },
        },
        "SendResult": {
            "type": "object",
            "properties": {"ids": {"type": "array", "items": {"type": "string"}}, "status": {"type": "integer"}},
        },
        "Run": {
            "type": "object",
            "required": ["run_id", "function_id", "status"],
            "properties": {
                "run_id": {"type": "string"},
                "function_id": {"type": "string"},
                "app_id": {"type": "string"},
                "status": {"enum": ["Running", "Completed", "Failed", "Cancelled"]},
                "event_id": {"type": ["string", "null"]},
                "event_ids": {"type": "array", "items": {"type": "string"}},
                "event_name": {"type": ["string", "null"], "description": "in listings: the trigger's name"},
                "created_at": {"type": "string", "format": "date-time"},
                "run_started_at": {"type": "string", "format": "date-time"},
                "ended_at": nullable_time,
                "output": {},
                "error": {"type": "object"},
                "app_version": {
                    "type": "string",
                    "description": "the app version the run started on: the Lambda version it is pinned to, "
                    "or the appVersion its app registered",
                },
                "origin": {
                    "type": "object",
                    "description": "replay or rerun: the run it came from",
                    "properties": {
                        "kind": {"enum": ["replay", "rerun"]},
                        "run_id": {"type": "string"},
                        "step_id": {"type": "string"},
                        "step_name": {"type": "string"},
                    },
                },
            },
        },
        "RunDetail": {
            "allOf": [
                _ref("Run"),
                {
                    "type": "object",
                    "properties": {
                        "events": {"type": "array", "items": {"type": "object"}},
                        "steps": {"type": "array", "items": _ref("Step")},
                    },
                },
            ]
        },
        "Step": {
            "type": "object",
            "required": ["step_id", "name", "kind", "status"],
            "properties": {
                "step_id": {"type": "string", "description": "the hashed step id (use it to rerun from this step)"},
                "name": {"type": "string"},
                "kind": {"enum": ["run", "sleep", "wait", "invoke", "step"]},
                "op": {"type": ["string", "null"], "description": "the opcode that settled it, or that it waits on"},
                "status": {"enum": ["Completed", "Failed", "Running", "Sleeping", "Waiting", "Cancelled"]},
                "attempts": {"type": ["integer", "null"]},
                "queued_at": nullable_time,
                "started_at": nullable_time,
                "ended_at": nullable_time,
                "duration_ms": {"type": ["integer", "null"]},
                "input": {"type": ["object", "null"], "description": "wake time, awaited event, invoked function"},
                "output": {},
                "error": {"type": "object"},
                "timed_out": {"type": "boolean"},
                "copied_from": {"type": "string", "description": "rerun: the run this result was copied from"},
                "failed_attempts": {
                    "type": "array",
                    "description": "the attempts that failed before the one that settled the step",
                    "items": {
                        "type": "object",
                        "properties": {
                            "attempt": {"type": ["integer", "null"], "description": "numbered from 1"},
                            "started_at": nullable_time,
                            "ended_at": nullable_time,
                            "duration_ms": {"type": ["integer", "null"]},
                            "error": {"type": "object"},
                        },
                    },
                },
            },
        },
        "DeadLetter": {
            "type": "object",
            "required": ["id", "reason", "body"],
            "properties": {
                "id": {"type": "string", "description": "the id to redrive it by"},
                "kind": {"type": ["string", "null"], "description": "the message's kind (call, wake, ...)"},
                "run_id": {"type": ["string", "null"], "description": "the run it was for, if any"},
                "reason": {"type": "string", "description": "why it is here: the last error, or that SQS moved it"},
                "receive_count": {"type": "integer", "description": "deliveries it had"},
                "dead_at": nullable_time,
                "body": {"type": "object", "description": "the work message"},
            },
        },
        "ErasureReport": {
            "type": "object",
            "properties": {
                "erased": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "counts: runs, steps, events, links, payloads",
                },
                "run_ids": {"type": "array", "items": {"type": "string"}},
                "event_ids": {"type": "array", "items": {"type": "string"}},
                "scanned": {"type": "integer", "description": "events a filter looked at"},
                "more": {"type": "boolean"},
                "cursor": {"type": ["string", "null"]},
            },
        },
        "SweepReport": {
            "type": "object",
            "properties": {
                "before": {
                    "type": "string",
                    "format": "date-time",
                    "description": "runs due before this time were looked at",
                },
                "found": {"type": "integer", "description": "overdue runs found"},
                "rearmed": {"type": "integer", "description": "runs something was sent for"},
                "in_hand": {"type": "integer", "description": "runs whose steps are claimed: only moved on"},
                "skipped": {"type": "integer", "description": "runs that moved on by themselves meanwhile"},
                "errors": {
                    "type": "integer",
                    "description": "runs the sweep failed on (logged; found again next time)",
                },
                "sent": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "messages sent, by kind: discovery, step, wake, wait_timeout, invoke_timeout",
                },
                "more": {"type": "boolean", "description": "stopped at max_runs: call again"},
            },
        },
        "App": {
            "type": "object",
            "properties": {
                "app_id": {"type": "string"},
                "url": {"type": "string"},
                "sdk": {"type": "string"},
                "framework": {"type": "string"},
                "synced_at": {"type": "string", "format": "date-time"},
                "function_ids": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Function": {
            "type": "object",
            "properties": {
                "function_id": {"type": "string"},
                "app_id": {"type": "string"},
                "name": {"type": "string"},
                "url": {"type": "string"},
                "triggers": {"type": "array", "items": {"type": "object"}},
                "retries": {"type": "integer"},
                "flow_control": {
                    "type": "object",
                    "description": "concurrency, throttle, rateLimit, debounce, "
                    "batchEvents, idempotency, singleton, priority, cancel, timeouts, as registered",
                },
                "last_synced_at": nullable_time,
                "config": {"type": "object"},
            },
        },
    }


def document() -> dict[str, Any]:
    run_id = _path_param("run_id", "a run id")
    event_id = _path_param("event_id", "an event's internal id")
    runs = {"type": "array", "items": _ref("Run")}
    paths: dict[str, Any] = {
        "/health": {
            "get": _op("Liveness and mode (dev or cloud)", _ok({"type": "object"}), tags=["meta"], security=_PUBLIC)
        },
        "/metrics": {
            "get": _op(
                "Runs, steps, flow-control waits, dead letters and the queue, in Prometheus' text format",
                {
                    "200": {"description": "Prometheus text exposition", "content": {"text/plain": {}}},
                    "404": {"description": "metrics go to CloudWatch here (deployed), not to this endpoint"},
                },
                tags=["meta"],
                description="Served by `stepline dev` and `stepline start`; what each metric means: docs/operating.md.",
            )
        },
        "/openapi.json": {"get": _op("This document", _ok({"type": "object"}), tags=["meta"], security=_PUBLIC)},
        "/": {"get": _op("The dashboard page", {"200": {"description": "HTML"}}, tags=["dashboard"], security=_PUBLIC)},
        "/static/{name}": {
            "get": _op(
                "A dashboard file (script, style)",
                {"200": {"description": "file"}, "404": {"description": "no such file"}},
                tags=["dashboard"],
                params=[_path_param("name", "file name")],
                security=_PUBLIC,
            )
        },
        "/e/{key}": {
            "post": _op(
                "Event API: send one event or an array",
                _ok(_ref("SendResult")),
                tags=["events"],
                params=[_path_param("key", "an event key (any key in dev mode)"), *_TRACE_CONTEXT],
                security=_PUBLIC,
                body=_body({"oneOf": [_ref("EventInput"), {"type": "array", "items": _ref("EventInput")}]}),
                description=(
                    "Authenticated by the event key in the path, not by the signing key. In a batch with an "
                    "event that cannot be accepted, the events before it are stored and the reply is that "
                    "event's 4xx with their ids beside the error."
                ),
            )
        },
        "/webhooks/{source}": {
            "post": _op(
                "A provider's webhook delivery, verified by its signature, as events",
                _ok(
                    {
                        "type": "object",
                        "properties": {
                            "ids": {"type": "array", "items": {"type": "string"}},
                            "delivery_id": {"type": "string"},
                            "status": {"type": "integer"},
                        },
                    }
                ),
                tags=["webhooks"],
                params=[_path_param("source", "a configured webhook source"), *_TRACE_CONTEXT],
                security=_PUBLIC,
                body=_body({"type": "object"}),
                description="Authenticated by the provider's signature (Stripe, GitHub, Standard Webhooks, Shopify "
                "or the generic HMAC scheme), checked before anything is stored: 401 when it is missing, wrong, "
                "outside the source's replay window or replayed (counted per source). The events' ids come from the "
                "delivery id, so a redelivery starts nothing twice. docs/webhooks.md.",
            )
        },
        "/fn/register": {
            "post": _op(
                "SDK sync: register an app's functions",
                _ok({"type": "object"}),
                tags=["apps"],
                body=_body({"type": "object"}),
            )
        },
        "/v0/runs/{run_id}/batch": {
            "get": _op("A run's events (SDKs, use_api)", _ok({"type": "array"}), tags=["sdk"], params=[run_id])
        },
        "/v0/runs/{run_id}/actions": {
            "get": _op("A run's step results (SDKs, use_api)", _ok({"type": "object"}), tags=["sdk"], params=[run_id])
        },
        "/v1/checkpoint/{run_id}/async": {
            "post": _op(
                "Checkpoint step results from inside a call (SDKs)",
                {
                    **_ok({"type": "object", "properties": {"data": {"type": "object"}}}),
                    "409": {"description": "the call no longer holds the run: the SDK stops"},
                    "413": {"description": "a step output is over 4 MiB"},
                },
                tags=["sdk"],
                params=[run_id],
                body=_body({"type": "object", "required": ["run_id", "fn_id", "qi_id", "steps"]}),
                description="What the TypeScript SDK 4.x sends after each step it runs inline: each "
                "StepRun becomes the step's memo, written once. `qi_id` is the token of the call "
                "request that is running the steps.",
            )
        },
        "/v1/signals": {
            "post": _op(
                "Resume the run waiting for a signal (SDKs, `stepline signal`)",
                {
                    **_ok(
                        {
                            "type": "object",
                            "properties": {"data": {"type": "object", "properties": {"run_id": {"type": "string"}}}},
                        }
                    ),
                    "404": {"description": "no run waits for the signal"},
                },
                tags=["sdk"],
                params=_TRACE_CONTEXT,
                body=_body(
                    {
                        "type": "object",
                        "required": ["signal"],
                        "properties": {"signal": {"type": "string"}, "data": {}},
                    }
                ),
                description="What TypeScript's `inngest.sendSignal` / `step.sendSignal` and Stepline's "
                "`client.send_signal` send: the run waiting in `step.waitForSignal` for `signal` resumes "
                "with `{signal, data}`, once, whoever else sends it at the same time.",
            )
        },
        "/v1/events": {
            "get": _op(
                "List events, newest first",
                _ok(_data({"type": "array", "items": _ref("Event")}, cursor=True)),
                tags=["events"],
                params=[
                    _param("name", description="only events of this name"),
                    _param("received_after", schema=_TIME),
                    _param("received_before", schema=_TIME),
                    _LIMIT,
                    _CURSOR,
                ],
            ),
            "post": _op(
                "Send one event or an array, with the operator key (the dashboard's and `stepline send`'s way)",
                _ok(_ref("SendResult")),
                tags=["events"],
                params=_TRACE_CONTEXT,
                body=_body({"oneOf": [_ref("EventInput"), {"type": "array", "items": _ref("EventInput")}]}),
            ),
        },
        "/v1/events/{event_id}": {
            "get": _op("One event", _ok(_data(_ref("Event"))), tags=["events"], params=[event_id])
        },
        "/v1/events/{event_id}/runs": {
            "get": _op(
                "The runs an event started (replays included)", _ok(_data(runs)), tags=["events"], params=[event_id]
            )
        },
        "/v1/runs": {
            "get": _op(
                "List runs, newest first, across functions",
                _ok(_data(runs, cursor=True)),
                tags=["runs"],
                params=[
                    _param("function_id", description="comma-separated function ids (default: every registered one)"),
                    _param("app_id", description="comma-separated app ids"),
                    _param("status", description="comma-separated: Running, Completed, Failed, Cancelled"),
                    _param("created_after", schema=_TIME),
                    _param("created_before", schema=_TIME),
                    _LIMIT,
                    _CURSOR,
                ],
            )
        },
        "/v1/runs/{run_id}": {
            "get": _op(
                "One run with its events and steps", _ok(_data(_ref("RunDetail"))), tags=["runs"], params=[run_id]
            ),
            "delete": _op(
                "Cancel a run (no change if it has ended)", _ok(_data(_ref("Run"))), tags=["runs"], params=[run_id]
            ),
        },
        "/v1/runs/{run_id}/jobs": {
            "get": _op(
                "A run's steps", _ok(_data({"type": "array", "items": _ref("Step")})), tags=["runs"], params=[run_id]
            )
        },
        "/v1/runs/{run_id}/replay": {
            "post": _op(
                "Replay: a new run of the function with the same events, on the current code",
                _ok(_data(_ref("Run"))),
                tags=["runs"],
                params=[run_id],
            )
        },
        "/v1/runs/{run_id}/rerun": {
            "post": _op(
                "Rerun from a step: a new run that keeps the step results before it",
                _ok(_data(_ref("Run"))),
                tags=["runs"],
                params=[run_id],
                body=_body({"type": "object", "required": ["step_id"], "properties": {"step_id": {"type": "string"}}}),
            )
        },
        "/v1/cancellations": {
            "post": _op(
                "Cancel a function's live runs in a time window, optionally matching a CEL `if`",
                _ok({"type": "object", "properties": {"cancelled": {"type": "integer"}}}),
                tags=["runs"],
                body=_body(
                    {
                        "type": "object",
                        "required": ["function_id"],
                        "properties": {
                            "function_id": {"type": "string"},
                            "app_id": {"type": "string"},
                            "started_after": _TIME,
                            "started_before": _TIME,
                            "if": {"type": "string"},
                        },
                    }
                ),
            )
        },
        "/v1/dead-letters": {
            "get": _op(
                "Poison work messages in the dead-letter store, with why",
                _ok(_data({"type": "array", "items": _ref("DeadLetter")})),
                tags=["dead letters"],
                params=[_LIMIT],
            )
        },
        "/v1/dead-letters/redrive": {
            "post": _op(
                "Put dead letters back on the work queue and reopen the runs dead-lettering failed",
                _ok(
                    _data(
                        {
                            "type": "object",
                            "properties": {
                                "redriven": {"type": "integer"},
                                "runs_reopened": {"type": "array", "items": {"type": "string"}},
                                "more": {"type": "boolean", "description": "all: more may be left; call again"},
                            },
                        }
                    )
                ),
                tags=["dead letters"],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 100},
                            "all": {"const": True},
                        },
                    }
                ),
                description="Exactly one of `ids` or `all: true`; one call moves at most 100.",
            )
        },
        "/v1/erasures": {
            "post": _op(
                "Erase a run, an event with its runs, or the events a CEL filter matches in a window",
                _ok(_data(_ref("ErasureReport"))),
                tags=["operations"],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "run_id": {"type": "string"},
                            "event_id": {"type": "string", "description": "an event's internal id"},
                            "if": {"type": "string", "description": "CEL over `event`"},
                            "received_after": _TIME,
                            "received_before": _TIME,
                            "name": {"type": "string", "description": "only events of this name"},
                            "cursor": {"type": "string", "description": "the cursor of the previous call"},
                        },
                    }
                ),
                description="Exactly one of `run_id`, `event_id`, or `if` with both `received_after` and "
                "`received_before`. Steps, payloads and indexes go with each run; a live run is cancelled first. "
                "A filtered erasure looks at up to 200 events per call: `more` says to call again with `cursor`. "
                "Audited in the logs.",
            )
        },
        "/v1/sweep": {
            "post": _op(
                "Re-arm runs that are overdue with nothing moving them (the sweeper, now)",
                _ok(_data(_ref("SweepReport"))),
                tags=["operations"],
                body=_body(
                    {
                        "type": "object",
                        "properties": {
                            "grace_s": {
                                "type": "number",
                                "minimum": 0,
                                "description": "how long overdue a run must be (default: the sweep_grace_s setting)",
                            },
                            "max_runs": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 100,
                                "description": "re-arm at most this many (default 100)",
                            },
                        },
                    },
                    required=False,
                ),
                description="Runs every few minutes by itself; this runs it now. One call handles at most "
                "100 runs: `more` says to call again.",
            )
        },
        "/v1/webhooks": {
            "get": _op(
                "Webhook sources, with the deliveries each refused",
                _ok(_data({"type": "array", "items": {"type": "object"}})),
                tags=["webhooks"],
            ),
            "post": _op(
                "Configure a webhook source (created or replaced)",
                _ok(_data({"type": "object"})),
                tags=["webhooks"],
                body=_body(
                    {
                        "type": "object",
                        "required": ["source", "provider"],
                        "properties": {
                            "source": {"type": "string"},
                            "provider": {"enum": ["stripe", "github", "standard", "shopify", "hmac"]},
                            "secret_id": {"type": "string", "description": "a Secrets Manager secret (deployed)"},
                            "secret": {"type": "string", "description": "the secret itself (stepline dev, start)"},
                            "replay_window_s": {"type": "integer", "minimum": 1},
                            "hmac": {"type": "object"},
                            "transform": {"type": "object"},
                        },
                    }
                ),
                description="A configuration that cannot be used is refused with a 400 naming the field; "
                "sources the deployment sets (stepline:webhooks) are read-only (409). docs/webhooks.md.",
            ),
        },
        "/v1/webhooks/{source}": {
            "delete": _op(
                "Remove a webhook source",
                _ok(_data({"type": "object"})),
                tags=["webhooks"],
                params=[_path_param("source", "a configured webhook source")],
            )
        },
        "/v1/apps": {
            "get": _op(
                "List apps and their last sync", _ok(_data({"type": "array", "items": _ref("App")})), tags=["apps"]
            )
        },
        "/v1/apps/{app_id}/functions": {
            "get": _op(
                "An app's functions as registered",
                _ok(_data({"type": "array", "items": {"type": "object"}})),
                tags=["apps"],
                params=[_path_param("app_id", "an app id")],
            )
        },
        "/v1/apps/sync": {
            "post": _op(
                "Ask the app at a URL to sync (PUT), as `stepline dev -u` does",
                _ok(_data({"type": "object"})),
                tags=["apps"],
                body=_body({"type": "object", "required": ["url"], "properties": {"url": {"type": "string"}}}),
            )
        },
        "/v1/functions": {
            "get": _op(
                "List functions with their triggers, flow control and last sync",
                _ok(_data({"type": "array", "items": _ref("Function")})),
                tags=["functions"],
            )
        },
        "/v1/functions/{fn_id}": {
            "get": _op(
                "One function",
                _ok(_data(_ref("Function"))),
                tags=["functions"],
                params=[_path_param("fn_id", "a function id")],
            )
        },
        "/v1/functions/{fn_id}/invoke": {
            "post": _op(
                "Invoke the function directly with event data (an inngest/function.invoked event)",
                _ok(
                    _data(
                        {
                            "type": "object",
                            "properties": {"event_id": {"type": "string"}, "run_id": {"type": "string"}},
                        }
                    )
                ),
                tags=["functions"],
                params=[_path_param("fn_id", "a function id"), *_TRACE_CONTEXT],
                body=_body({"type": "object", "properties": {"data": {"type": "object"}}}),
            )
        },
    }
    for method, path in OPERATOR_ROUTES:
        paths[path][method.lower()]["security"] = _OPERATOR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stepline API",
            "version": "1",
            "description": "The Inngest REST API v1 as Stepline serves it, plus what its dashboard and CLI use. "
            "Deployed, every route but the public ones (security: []) needs "
            "`Authorization: Bearer <hash of the signing key>` (or `signkey-<env>-<hash>`) or the operator key's "
            "hash; the routes that steer runs (security: operatorKey) take the operator key only. "
            "`stepline dev` runs without auth.",
        },
        "security": _BEARER,
        "components": {
            "securitySchemes": {
                "signingKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SHA-256 of the signing key's hex part, as the Inngest SDKs send it",
                },
                "operatorKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SHA-256 of the operator key's hex digits",
                },
            },
            "schemas": _schemas(),
        },
        "paths": paths,
    }


def add_routes(app: APIGatewayHttpResolver) -> None:
    @app.get("/openapi.json")
    def openapi() -> Response:
        return json_response(200, document())
