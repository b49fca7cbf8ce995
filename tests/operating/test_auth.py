"""Deployed ("cloud") mode: every route the API's resolver serves needs the signing key's bearer,
in both forms the SDKs send (routes are read from the resolver itself, so one missing from the
OpenAPI document is still checked). The dashboard's files, the OpenAPI document and /health are
public (they hold no data, and a browser cannot send a bearer when it navigates); the Event API
takes its key in the path instead."""

from __future__ import annotations

import tempfile
import urllib.request

import pytest

from stepline.api.app import build_api
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.local import local_backend
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http
from tests.operating.test_openapi import registered

SIGNING_KEY = "signkey-prod-0123456789abcdef0123456789abcdef"
GOOD = ["Bearer " + hash_signing_key(SIGNING_KEY), "Bearer signkey-prod-" + hash_signing_key(SIGNING_KEY)]
BAD = [None, "Bearer " + hash_signing_key("signkey-prod-ff"), "Basic abc"]
# /webhooks/{source}: the provider's signature is the credential (tests/webhooks).
PUBLIC = {"/", "/static/{name}", "/openapi.json", "/health", "/e/{key}", "/webhooks/{source}"}
SAMPLE = {"run_id": "01J0000000000000000000000X", "event_id": "01J0000000000000000000000Y",
          "app_id": "nope", "fn_id": "nope", "name": "app.js", "key": "k", "source": "nope"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key=SIGNING_KEY)
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("cloud") / "db"))
    runtime = DevRuntime(options, settings).start()
    yield runtime.url
    runtime.stop()


def resolver_routes() -> set[tuple[str, str]]:
    """Every (path, method) the API's resolver serves: what a request can reach, whatever the
    OpenAPI document says."""
    with tempfile.TemporaryDirectory() as tmp, local_backend(f"{tmp}/routes.db", ManualClock()) as backend:
        return registered(build_api(Engine(backend)))


def guarded_routes():
    routes = resolver_routes()
    assert len(routes) > 20 and ("/v1/runs/{run_id}", "delete") in routes, routes
    for path, method in sorted(routes):
        if path in PUBLIC:
            continue
        yield method.upper(), path.format(**SAMPLE)


@pytest.mark.parametrize("method, path", list(guarded_routes()))
def test_every_rest_route_needs_the_signing_key(cloud, method, path):
    body = {} if method in ("POST", "PUT") else None
    for authorization in BAD:
        headers = {"Authorization": authorization} if authorization else {}
        code, reply = http(method, f"{cloud}{path}", body, headers=headers)
        assert code == 401, (authorization, reply)
    for authorization in GOOD:
        code, reply = http(method, f"{cloud}{path}", body, headers={"Authorization": authorization})
        assert code != 401 and code < 500, (authorization, code, reply)


@pytest.mark.parametrize("path, content_type", [
    ("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css"),
    ("/openapi.json", "application/json"), ("/health", "application/json"),
])
def test_the_page_and_the_api_description_are_public(cloud, path, content_type):
    with urllib.request.urlopen(f"{cloud}{path}", timeout=10) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith(content_type)
