"""The deployed path: the API Lambda's handler, configured as the stack configures it (cloud mode,
keys read from Secrets Manager at cold start), on moto. The same refusals as through `stepline
dev`, plus key rotation: a key dropped from the secret stops working at the next cold start."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from stepline.aws.moto_env import moto_backend
from stepline.dev.http_server import to_http_api_event
from stepline.engine.clock import SystemClock
from stepline.handlers import api as api_module
from stepline.handlers import wiring
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.handlers.test_lambda_entrypoints import LambdaContext
from tests.security.conftest import EVENT_KEY, FALLBACK_KEY, OTHER_ENV_EVENT_KEY, REVOKED_KEY, SIGNING_KEY

BODY_LIMIT = 16 * 1024
NEXT_KEY = "signkey-prod-" + "e4b2" * 16


class Deployed:
    def __init__(self, backend, session) -> None:
        self.backend = backend
        self.secrets = session.client("secretsmanager", region_name="us-east-1")

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
             authorization: str | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        headers = {"content-type": "application/json"}
        if authorization is not None:
            headers["authorization"] = authorization
        event = to_http_api_event(method, path, headers, data, "203.0.113.9")
        result = api_module.handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))
        text = result.get("body") or ""
        return result["statusCode"], json.loads(text) if text else None

    def events_named(self, name: str) -> list[dict]:
        status, body = self.call("GET", f"/v1/events?name={name}", authorization=bearer(SIGNING_KEY))
        assert status == 200, body
        return body["data"]

    def rotate(self, primary: str, fallback: str | None) -> None:
        """Write the signing key secret as the rotation procedure does, then cold-start."""
        self.secrets.put_secret_value(SecretId="stepline-signing-key",
                                      SecretString=json.dumps({"signing_key": primary, "signing_key_fallback": fallback}))
        wiring.reset()
        api_module._handler = None


def bearer(key: str) -> str:
    return f"Bearer {hash_signing_key(key)}"


@pytest.fixture(scope="module")
def deployed():
    monkeypatch = pytest.MonkeyPatch()
    with moto_backend(SystemClock()) as backend:
        session = backend.session
        secrets = session.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="stepline-signing-key",
                              SecretString=json.dumps({"signing_key": SIGNING_KEY, "signing_key_fallback": FALLBACK_KEY}))
        secrets.create_secret(Name="stepline-event-keys", SecretString=json.dumps([EVENT_KEY]))
        settings = Settings(mode="cloud", signing_key_secret_id="stepline-signing-key",
                            event_keys_secret_id="stepline-event-keys", max_event_body_bytes=BODY_LIMIT,
                            max_register_body_bytes=BODY_LIMIT, **backend.names.settings_values())
        for key, value in settings.to_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setattr(wiring, "_engine", None)
        monkeypatch.setattr(api_module, "_handler", None)
        try:
            yield Deployed(backend, session)
        finally:
            monkeypatch.undo()


@pytest.mark.parametrize("path", [f"/e/{OTHER_ENV_EVENT_KEY}", "/e/..%2Fx", f"/e/{'k' * 4000}", "/e/", "/e"])
def test_wrong_event_keys_are_401_and_store_nothing(deployed, path):
    name = f"sec/lambda-{uuid.uuid4().hex[:8]}"
    status, body = deployed.call("POST", path, [{"name": name}])
    assert status == 401 and body["status"] == 401 and body["ids"] == [], body
    assert deployed.events_named(name) == []
    status, body = deployed.call("POST", f"/e/{EVENT_KEY}", [{"name": name}])
    assert status == 200, body


@pytest.mark.parametrize(
    "authorization, status",
    [
        (None, 401),
        (f"Bearer {SIGNING_KEY}", 401),
        (bearer(REVOKED_KEY), 401),
        (f"Bearer signkey-prod-{hash_signing_key(REVOKED_KEY)}", 401),
        (bearer(SIGNING_KEY), 200),
        (f"Bearer signkey-prod-{hash_signing_key(FALLBACK_KEY)}", 200),
    ],
    ids=["missing", "unhashed", "revoked", "revoked-ts-form", "primary", "fallback"],
)
def test_bearer_tokens_from_the_secret(deployed, authorization, status):
    got, body = deployed.call("GET", "/v1/events", authorization=authorization)
    assert got == status, body


def test_a_key_rotated_out_stops_working_at_the_next_cold_start(deployed):
    try:
        deployed.rotate(NEXT_KEY, SIGNING_KEY)
        assert deployed.call("GET", "/v1/events", authorization=bearer(NEXT_KEY))[0] == 200
        assert deployed.call("GET", "/v1/events", authorization=bearer(SIGNING_KEY))[0] == 200  # now the fallback
        status, body = deployed.call("GET", "/v1/events", authorization=bearer(FALLBACK_KEY))
        assert status == 401 and "bearer" in body["error"], body
        deployed.rotate(NEXT_KEY, None)
        assert deployed.call("GET", "/v1/events", authorization=bearer(SIGNING_KEY))[0] == 401
    finally:
        deployed.rotate(SIGNING_KEY, FALLBACK_KEY)


@pytest.mark.parametrize(
    "path, raw, status, fragment",
    [
        (f"/e/{EVENT_KEY}", b'[{"name":"%s","data":{"blob":"' + b"x" * BODY_LIMIT + b'"}}]', 413, f"limit of {BODY_LIMIT}"),
        (f"/e/{EVENT_KEY}", b'[{"name":"ok/%s"},{"name":"%s","data":{"x":1e400}}]', 400, "out of range"),
        (f"/e/{EVENT_KEY}", b'[{"name":"ok/%s"},{"name":"%s","data":{"x":"\\ud800"}}]', 400, "[1].data.x"),
        (f"/e/{EVENT_KEY}", b'[{"name":"%s","id":"' + b"i" * 600 + b'"}]', 400, "events[0].id"),
    ],
    ids=["oversized-body", "overflowing-number", "lone-surrogate", "long-id"],
)
def test_bad_bodies_are_refused_and_store_nothing(deployed, path, raw, status, fragment):
    name = f"sec/lambda-bad-{uuid.uuid4().hex[:8]}"
    got, body = deployed.call("POST", path, raw=raw.replace(b"%s", name.encode()))
    assert got == status, body
    assert body["status"] == status and fragment in body["error"], body
    assert deployed.events_named(name) == [] and deployed.events_named(f"ok/{name}") == []


def test_an_oversized_register_body_is_413(deployed):
    register = {"url": "http://127.0.0.1:9/api/inngest", "appName": "sec-lambda-app", "functions": [],
                "pad": "x" * BODY_LIMIT}
    status, body = deployed.call("POST", "/fn/register", register, authorization=bearer(SIGNING_KEY))
    assert status == 413 and str(BODY_LIMIT) in body["error"], body
    assert deployed.backend.store.get_app("sec-lambda-app") is None
