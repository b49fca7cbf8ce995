"""Deployed ("cloud") mode as deployed: the API Lambda's handler, its keys in Secrets Manager, on
moto, called with the events API Gateway sends (tests/handlers/apigw.py). Only configured event
keys are accepted, and the API routes take the signing key's bearer in both forms the SDKs send
(docs/protocol.md §3.1)."""

from __future__ import annotations

import pytest

from stepline.protocol.signing import hash_signing_key
from tests.handlers.apigw import deployed_api

SIGNING_KEY = "signkey-test-12345678"
FALLBACK_KEY = "signkey-test-abcdef01"


@pytest.fixture(scope="module")
def api():
    with deployed_api(SIGNING_KEY, FALLBACK_KEY, ["evt-good"]) as deployed:
        yield deployed


def test_unknown_event_key_is_refused(api):
    code, body = api.call("POST", "/e/evt-bad", {"name": "a/b"})
    assert code == 401 and body["status"] == 401 and body["ids"] == []


def test_configured_event_key_is_accepted(api):
    code, body = api.call("POST", "/e/evt-good", {"name": "a/b"})
    assert code == 200 and len(body["ids"]) == 1


@pytest.mark.parametrize(
    "authorization, status",
    [
        (None, 401),
        ("Bearer nonsense", 401),
        ("Bearer " + hash_signing_key("signkey-test-99999999"), 401),
        ("Bearer " + hash_signing_key(SIGNING_KEY), 200),  # Python SDK form
        ("Bearer signkey-test-" + hash_signing_key(SIGNING_KEY), 200),  # TypeScript SDK form
        ("Bearer " + hash_signing_key(FALLBACK_KEY), 200),  # after a rotation
    ],
)
def test_rest_api_requires_the_signing_key(api, authorization, status):
    code, body = api.call("GET", "/v1/events", authorization=authorization)
    assert code == status, body
