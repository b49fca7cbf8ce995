"""The deployed path: the API Lambda's handler, configured as the stack configures it (cloud mode,
keys read from Secrets Manager at cold start), on moto, called with the events API Gateway sends
(tests/handlers/apigw.py: routed by the stack's routes, payload format 2.0). The same refusals as
through `stepline dev`, plus key rotation: a key dropped from the secret stops working at the
next cold start."""

from __future__ import annotations

import uuid

import pytest

from stepline.protocol.signing import hash_signing_key
from tests.handlers.apigw import DeployedApi, deployed_api
from tests.security.conftest import EVENT_KEY, FALLBACK_KEY, OTHER_ENV_EVENT_KEY, REVOKED_KEY, SIGNING_KEY

BODY_LIMIT = 16 * 1024
NEXT_KEY = "signkey-prod-" + "e4b2" * 16


class Deployed(DeployedApi):
    def events_named(self, name: str) -> list[dict]:
        status, body = self.call("GET", f"/v1/events?name={name}", authorization=bearer(SIGNING_KEY))
        assert status == 200, body
        return body["data"]

    def rotate(self, primary: str, fallback: str | None) -> None:
        """Write the signing key secret as the rotation procedure does, then cold-start."""
        self.put_keys(primary, fallback, [EVENT_KEY])


def bearer(key: str) -> str:
    return f"Bearer {hash_signing_key(key)}"


@pytest.fixture(scope="module")
def deployed():
    with deployed_api(SIGNING_KEY, FALLBACK_KEY, [EVENT_KEY], api_class=Deployed, max_event_body_bytes=BODY_LIMIT,
                      max_register_body_bytes=BODY_LIMIT) as api:
        yield api


@pytest.mark.parametrize("path", [f"/e/{OTHER_ENV_EVENT_KEY}", "/e/..%2Fx", f"/e/{'k' * 4000}", "/e/", "/e"])
def test_wrong_event_keys_are_refused_and_store_nothing(deployed, path):
    name = f"sec/lambda-{uuid.uuid4().hex[:8]}"
    status, body = deployed.call("POST", path, [{"name": name}])
    if path == "/e/":
        # No route takes an empty key: API Gateway answers itself, the Lambda never runs.
        assert status == 404 and body == {"message": "Not Found"}, body
    else:
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
