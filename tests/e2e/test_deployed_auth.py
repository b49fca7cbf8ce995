"""Deployed ("cloud") mode, both ways it is deployed: the API Lambda's handler with its keys in
Secrets Manager, on moto, called with the events API Gateway sends (tests/handlers/apigw.py), and
`stepline start` in its own process with its keys from flags. Only configured event keys are
accepted, and the API routes take the signing key's bearer in both forms the SDKs send
(docs/protocol.md §3.1). More of the Lambda handler's side is tests/security/test_lambda.py."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.protocol.signing import hash_signing_key
from tests.e2e.conftest import http
from tests.e2e.started import StartedStepline
from tests.handlers.apigw import deployed_api

SIGNING_KEY = "signkey-test-12345678"
FALLBACK_KEY = "signkey-test-abcdef01"


class Started:
    """`stepline start` over HTTP, called like the Lambda front."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, method: str, path: str, body: Any = None, authorization: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": authorization} if authorization else {}
        return http(method, f"{self.url}{path}", body, headers=headers)


@pytest.fixture(scope="module", params=["lambda", "start"])
def api(request, tmp_path_factory):
    if request.param == "lambda":
        with deployed_api(SIGNING_KEY, FALLBACK_KEY, ["evt-good"]) as deployed:
            yield deployed
        return
    started = StartedStepline(
        tmp_path_factory.mktemp("cloud") / "stepline.db",
        ["--signing-key", SIGNING_KEY, "--signing-key-fallback", FALLBACK_KEY, "--event-key", "evt-good"],
    )
    yield Started(started.url)
    assert started.stop() == 0


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
