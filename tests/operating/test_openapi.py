"""The OpenAPI document served at /openapi.json describes exactly the routes the resolver has
(paths and methods, both ways), and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from stepline.api.app import build_api
from stepline.api.openapi import document
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.local import local_backend
from tests.e2e.conftest import http

METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    with local_backend(str(tmp_path_factory.mktemp("openapi") / "db"), ManualClock()) as backend:
        yield build_api(Engine(backend))


def registered(resolver) -> set[tuple[str, str]]:
    # powertools keeps the routes it matches against in these two lists (static, then dynamic).
    routes = getattr(resolver, "_static_routes", None), getattr(resolver, "_dynamic_routes", None)
    assert all(r is not None for r in routes), "powertools changed how it stores routes; update this test"
    return {(re.sub(r"<(\w+)>", r"{\1}", route.path), route.method.lower()) for group in routes for route in group}


def documented() -> set[tuple[str, str]]:
    return {(path, method) for path, item in document()["paths"].items() for method in item if method in METHODS}


def test_every_route_is_documented_and_every_documented_route_exists(resolver):
    routes, doc = registered(resolver), documented()
    assert routes - doc == set(), "routes missing from runtime/api/openapi.py"
    assert doc - routes == set(), "documented in runtime/api/openapi.py but not served"


def test_the_document_is_valid_openapi_3_1():
    spec = document()
    assert spec["openapi"] == "3.1.0"
    validate(spec)
    for path, item in spec["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, f"{method.upper()} {path}: path parameters {declared} != {names}"


def test_it_is_served_at_a_fixed_path(ops):
    code, body = http("GET", f"{ops.url}/openapi.json")
    assert code == 200 and body == document()


# The routes whose requests' W3C trace context the runs they start (or resume) continue
# (tests/telemetry/test_sender_context.py proves each does).
TRACED = {
    ("/e/{key}", "post"),
    ("/v1/events", "post"),
    ("/v1/functions/{fn_id}/invoke", "post"),
    ("/webhooks/{source}", "post"),
    ("/v1/signals", "post"),
}


def test_the_routes_that_continue_a_senders_trace_declare_its_headers():
    declaring = {
        (path, method)
        for path, item in document()["paths"].items()
        for method, op in item.items()
        if {("traceparent", "header"), ("tracestate", "header")}
        <= {(p["name"], p["in"]) for p in op.get("parameters", [])}
    }
    assert declaring == TRACED
