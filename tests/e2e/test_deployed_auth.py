"""Deployed ("cloud") mode, as `stepline start` runs it in its own process with its keys from
flags: only configured event keys, and bearer auth on the API routes in both forms the SDKs send
(docs/protocol.md §3.1). The Lambda handler's side is tests/security/test_lambda.py."""

from __future__ import annotations

import pytest

from stepline.protocol.signing import hash_signing_key
from tests.e2e.conftest import http
from tests.e2e.started import StartedStepline

SIGNING_KEY = "signkey-test-12345678"
FALLBACK_KEY = "signkey-test-abcdef01"


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    started = StartedStepline(
        tmp_path_factory.mktemp("cloud") / "stepline.db",
        ["--signing-key", SIGNING_KEY, "--signing-key-fallback", FALLBACK_KEY, "--event-key", "evt-good"],
    )
    yield started.url
    assert started.stop() == 0


def test_unknown_event_key_is_refused(url):
    code, body = http("POST", f"{url}/e/evt-bad", {"name": "a/b"})
    assert code == 401 and body["status"] == 401 and body["ids"] == []


def test_configured_event_key_is_accepted(url):
    code, body = http("POST", f"{url}/e/evt-good", {"name": "a/b"})
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
def test_rest_api_requires_the_signing_key(url, authorization, status):
    headers = {"Authorization": authorization} if authorization else {}
    code, body = http("GET", f"{url}/v1/events", headers=headers)
    assert code == status, body
