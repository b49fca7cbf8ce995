"""Two credentials, deployed ("cloud") mode: the operator key steers runs, the apps' signing key
does what the SDKs do and reads, and nothing more.

Routes are enumerated from the resolver itself, so a route added without deciding who may call
it fails here. Then, through a real `stepline dev` in cloud mode on SQLite: an erasure by the
operator's CLI, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from stepline.api.app import build_api
from stepline.api.auth import OPERATOR_ROUTES
from stepline.api.openapi import document
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http

SIGNING_KEY = "signkey-prod-0123456789abcdef0123456789abcdef"
OPERATOR_KEY = "fedcba9876543210" * 4
PUBLIC = {("GET", "/"), ("GET", "/static/{name}"), ("GET", "/openapi.json"), ("GET", "/health"),
          ("POST", "/e/{key}"), ("POST", "/e"), ("POST", "/e/"), ("POST", "/webhooks/{source}")}
SAMPLE = {"run_id": "01J0000000000000000000000X", "event_id": "01J0000000000000000000000Y",
          "app_id": "nope", "fn_id": "nope", "name": "app.js", "key": "k", "source": "nope"}
BODIES = {"/v1/erasures": {"run_id": "01J0000000000000000000000X"}, "/v1/apps/sync": {"url": "http://127.0.0.1:9/x"}}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hash_signing_key(key)}"}


def start(tmp_path_factory, **keys) -> DevRuntime:
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key=SIGNING_KEY, **keys)
    options = DevOptions(port=free_port(), db_path=str(tmp_path_factory.mktemp("operator") / "db"))
    return DevRuntime(options, settings).start()


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    runtime = start(tmp_path_factory, operator_key=OPERATOR_KEY)
    yield runtime
    runtime.stop()


@pytest.fixture(scope="module")
def without_operator_key(tmp_path_factory):
    runtime = start(tmp_path_factory)
    yield runtime
    runtime.stop()


def resolver_routes(runtime: DevRuntime) -> list[tuple[str, str]]:
    """(method, path in OpenAPI form) of every route the API serves."""
    app = build_api(runtime.engine)
    routes = {(r.method, re.sub(r"<(\w+)>", r"{\1}", r.path)) for r in app._static_routes + app._dynamic_routes}
    assert len(routes) >= 25
    return sorted(routes)


def test_the_operator_routes_are_routes_and_documented_as_operator_only(cloud):
    routes = set(resolver_routes(cloud))
    assert OPERATOR_ROUTES <= routes
    paths = document()["paths"]
    for method, path in routes - PUBLIC:
        security = paths[path][method.lower()].get("security")
        if (method, path) in OPERATOR_ROUTES:
            assert security == [{"operatorKey": []}], (method, path)
        else:
            assert security is None, (method, path)  # the document's default: either key


@pytest.mark.parametrize("method, path", [r for r in sorted(OPERATOR_ROUTES)])
def test_operator_routes_take_the_operator_key_only(cloud, method, path):
    url = cloud.url + path.format(**SAMPLE)
    body = BODIES.get(path, {}) if method == "POST" else None
    code, reply = http(method, url, body)
    assert code == 401, reply
    code, reply = http(method, url, body, headers=bearer(SIGNING_KEY))
    assert code == 403 and "operator key" in reply["error"], reply
    code, reply = http(method, url, body, headers=bearer(OPERATOR_KEY))
    assert code not in (401, 403), (code, reply)
    # Past auth; a sync of an app that is not there is the app's 502, nothing else may fail.
    assert code < 500 or (path == "/v1/apps/sync" and code == 502), (code, reply)


def test_every_other_guarded_route_takes_either_key(cloud):
    for method, path in resolver_routes(cloud):
        if (method, path) in OPERATOR_ROUTES | PUBLIC:
            continue
        url = cloud.url + path.format(**SAMPLE)
        body = {} if method == "POST" else None
        assert http(method, url, body)[0] == 401, (method, path)
        for key in (SIGNING_KEY, OPERATOR_KEY):
            code, reply = http(method, url, body, headers=bearer(key))
            assert code not in (401, 403) and code < 500, (method, path, code, reply)


def test_without_an_operator_key_operator_routes_say_how_to_turn_them_on(without_operator_key):
    code, reply = http("POST", f"{without_operator_key.url}/v1/sweep", {}, headers=bearer(SIGNING_KEY))
    assert code == 403 and "STEPLINE_OPERATOR_KEY" in reply["error"], reply
    assert http("GET", f"{without_operator_key.url}/v1/events", headers=bearer(SIGNING_KEY))[0] == 200


def test_the_cli_erases_an_event_with_the_operator_key(cloud):
    code, reply = http("POST", f"{cloud.url}/e/evt", {"name": "people/signed-up", "data": {"email": "x@example.com"}})
    assert code == 200, reply
    [event_id] = reply["ids"]
    command = [sys.executable, "-m", "stepline.cli", "erase", "--event", event_id, "--url", cloud.url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    refused = subprocess.run(
        [*command, "--signing-key", SIGNING_KEY], capture_output=True, text=True, timeout=60, env=env
    )
    assert refused.returncode == 1 and "operator key" in refused.stderr, refused.stderr
    done = subprocess.run(
        [*command, "--operator-key", OPERATOR_KEY], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "erased 0 runs and 1 event" in done.stdout, done.stdout
    code, reply = http("GET", f"{cloud.url}/v1/events/{event_id}", headers=bearer(OPERATOR_KEY))
    assert code == 404, reply
    code, reply = http("POST", f"{cloud.url}/v1/erasures", {"event_id": event_id}, headers=bearer(OPERATOR_KEY))
    assert code == 404 and "nothing to erase" in reply["error"], reply


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "exactly one of"),
        ({"run_id": "a", "event_id": "b"}, "exactly one of"),
        ({"if": "event.data.x == 1"}, "received_after"),
        ({"if": "event.data.x ==", "received_after": 1, "received_before": 2}, "if:"),
        ({"if": "true", "received_after": 5, "received_before": 5}, "received_before"),
        ({"run_id": "a", "name": "x"}, "name: unknown field"),
        ({"run_id": 7}, "run_id: expected"),
    ],
)
def test_bad_erasure_requests_are_400_naming_the_field(cloud, body, message):
    code, reply = http("POST", f"{cloud.url}/v1/erasures", body, headers=bearer(OPERATOR_KEY))
    assert code == 400 and message in reply["error"], reply


# -- `stepline start`: the operator key from its flags, keys file or environment ---------------


def test_stepline_start_takes_an_operator_key_from_its_keys_file(tmp_path):
    from tests.e2e.started import StartedStepline

    keys = tmp_path / "keys.env"
    keys.write_text(f"STEPLINE_SIGNING_KEY={SIGNING_KEY}\nSTEPLINE_EVENT_KEYS=evt\nSTEPLINE_OPERATOR_KEY={OPERATOR_KEY}\n")
    os.chmod(keys, 0o600)
    started = StartedStepline(tmp_path / "stepline.db", ["--keys-file", str(keys)])
    try:
        assert http("POST", f"{started.url}/v1/sweep", {}, headers=bearer(OPERATOR_KEY))[0] == 200
        assert http("POST", f"{started.url}/v1/sweep", {}, headers=bearer(SIGNING_KEY))[0] == 403
    finally:
        started.stop()
    assert "asks for the operator key" in "\n".join(started.lines)
    assert OPERATOR_KEY not in "\n".join(started.lines)


def test_stepline_start_without_an_operator_key_says_what_is_refused(tmp_path):
    from tests.e2e.started import StartedStepline

    started = StartedStepline(tmp_path / "stepline.db", ["--signing-key", SIGNING_KEY, "--event-key", "evt"])
    try:
        code, reply = http("POST", f"{started.url}/v1/sweep", {}, headers=bearer(SIGNING_KEY))
        assert code == 403 and "STEPLINE_OPERATOR_KEY" in reply["error"], reply
    finally:
        started.stop()
    assert "no operator key (STEPLINE_OPERATOR_KEY)" in "\n".join(started.lines)


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"operator_key": "not hex"}, "STEPLINE_OPERATOR_KEY (from flag)"),
        ({"operator_key": SIGNING_KEY}, "the operator key must be a key of its own"),
    ],
)
def test_stepline_start_refuses_an_operator_key_it_cannot_use(flags, message):
    from stepline.dev.keys import KeyFlags, KeysError, resolve_keys

    with pytest.raises(KeysError, match=re.escape(message)):
        resolve_keys(KeyFlags(signing_key=SIGNING_KEY, event_keys=["evt"], **flags), {})
