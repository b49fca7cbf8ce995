"""Bearer auth in cloud mode: the REST API (`/v1`, and the `/v0` routes the SDKs call with
`use_api`) and `/fn/register` take the sha256 of the signing key or of the fallback key, in the
Python form (`Bearer <hash>`) or the TypeScript form (`Bearer signkey-<env>-<hash>`). Everything
else, the keys themselves included, is a 401 that changes nothing."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from stepline.protocol.signing import hash_event_key, hash_signing_key, strip_key_prefix
from tests.e2e.conftest import APP_ID, http
from tests.security.conftest import EVENT_KEY, FALLBACK_KEY, REVOKED_KEY, SIGNING_KEY, unique

GOOD = hash_signing_key(SIGNING_KEY)

REFUSED = {
    "missing": None,
    "empty": "",
    "scheme-only": "Bearer",
    "scheme-and-space": "Bearer ",
    "basic-scheme": "Basic " + base64.b64encode(f"user:{GOOD}".encode()).decode(),
    "token-scheme": f"Token {GOOD}",
    "no-scheme": GOOD,
    "undefined": "Bearer undefined",  # what the TS SDK sends without a key
    "unhashed-key": f"Bearer {SIGNING_KEY}",
    "unhashed-key-without-prefix": f"Bearer {strip_key_prefix(SIGNING_KEY)}",
    "revoked-key-python-form": f"Bearer {hash_signing_key(REVOKED_KEY)}",
    "revoked-key-ts-form": f"Bearer signkey-prod-{hash_signing_key(REVOKED_KEY)}",
    "truncated-hash": f"Bearer {GOOD[:12]}",  # what TS introspection reports
    "extended-hash": f"Bearer {GOOD}0",
    "two-tokens": f"Bearer {GOOD} {GOOD}",
    "event-key": f"Bearer {EVENT_KEY}",
    "event-key-hash": f"Bearer {hash_event_key(EVENT_KEY)}",
}

ACCEPTED = {
    "python-form": f"Bearer {GOOD}",
    "ts-form": f"Bearer signkey-prod-{GOOD}",
    "fallback-python-form": f"Bearer {hash_signing_key(FALLBACK_KEY)}",
    "fallback-ts-form": f"Bearer signkey-prod-{hash_signing_key(FALLBACK_KEY)}",
    "lower-case-scheme": f"bearer {GOOD}",
}


def headers_for(authorization: str | None) -> dict[str, str]:
    return {} if authorization is None else {"Authorization": authorization}


@pytest.fixture(scope="module")
def sleeping_run(cloud) -> dict[str, Any]:
    """A live run (asleep for an hour) that wrong credentials must not be able to touch."""
    [event_id] = cloud.stepline.send({"name": "test/cancellable", "data": {"key": unique("bearer-")}})
    run = cloud.wait_status(event_id, "Running")
    return {"event_id": event_id, "run_id": run["run_id"]}


READS = [
    "/v1/events",
    "/v1/runs",
    "/v1/apps",
    "/v1/functions",
    "/v1/runs/{run_id}",
    "/v1/runs/{run_id}/jobs",
    "/v1/events/{event_id}/runs",
    "/v0/runs/{run_id}/batch",
    "/v0/runs/{run_id}/actions",
]


@pytest.mark.parametrize("authorization", REFUSED.values(), ids=REFUSED.keys())
def test_reads_with_a_wrong_bearer_are_401(cloud, sleeping_run, authorization):
    for path in READS:
        status, body = http("GET", cloud.url + path.format(**sleeping_run), headers=headers_for(authorization))
        assert status == 401, (path, body)
        assert body == {"error": "authorization: missing or wrong bearer token", "status": 401}, (path, body)


@pytest.mark.parametrize("authorization", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_reads_with_the_signing_key_or_fallback_hash_are_200(cloud, sleeping_run, authorization):
    for path in READS:
        status, body = http("GET", cloud.url + path.format(**sleeping_run), headers=headers_for(authorization))
        assert status == 200, (path, body)


@pytest.mark.parametrize("authorization", REFUSED.values(), ids=REFUSED.keys())
def test_writes_with_a_wrong_bearer_are_401_and_change_nothing(cloud, sleeping_run, authorization):
    headers = headers_for(authorization)
    run_id = sleeping_run["run_id"]
    fn_id = f"{APP_ID}-cancellable"
    name = unique("sec/bearer-send-")
    attempts = [
        ("DELETE", f"/v1/runs/{run_id}", None),
        ("POST", "/v1/cancellations", {"function_id": fn_id}),
        ("POST", f"/v1/runs/{run_id}/replay", None),
        ("POST", f"/v1/runs/{run_id}/rerun", {"step_id": "before"}),
        ("POST", "/v1/events", [{"name": name, "data": {}}]),
        ("POST", "/v1/apps/sync", {"url": cloud.app.url}),
    ]
    synced_before = cloud.store.get_app(APP_ID).synced_at
    for method, path, body in attempts:
        status, reply = http(method, cloud.url + path, body, headers=headers)
        assert status == 401, (method, path, reply)
        assert reply["status"] == 401 and "bearer" in reply["error"], (method, path, reply)
    assert cloud.run_of(sleeping_run["event_id"])["status"] == "Running"
    assert len(cloud.stepline.runs(sleeping_run["event_id"])) == 1
    assert cloud.events_named(name) == []
    assert cloud.store.get_app(APP_ID).synced_at == synced_before


def hijack_body(app_id: str, trigger: str = "test/multi") -> dict[str, Any]:
    """A register body that would point the app's function at a URL of the sender's choosing."""
    url = "http://127.0.0.1:9/api/inngest"
    return {
        "url": url, "appName": app_id, "deployType": "ping", "framework": "flask", "sdk": "py:v0.5.19", "v": "0.1",
        "functions": [{
            "id": f"{app_id}-multi-step", "name": "multi-step", "triggers": [{"event": trigger}],
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": f"{url}?fnId={app_id}-multi-step&stepId=step"}}},
        }],
    }


@pytest.mark.parametrize("authorization", REFUSED.values(), ids=REFUSED.keys())
def test_register_with_a_wrong_bearer_cannot_take_over_an_app(cloud, authorization):
    before = cloud.store.get_app(APP_ID)
    status, body = http("POST", f"{cloud.url}/fn/register", hijack_body(APP_ID), headers=headers_for(authorization))
    assert status == 401, body
    assert body["status"] == 401 and "bearer" in body["error"], body  # TS reads the status from the body
    after = cloud.store.get_app(APP_ID)
    assert (after.url, after.synced_at) == (before.url, before.synced_at)
    assert cloud.store.get_function(f"{APP_ID}-multi-step").url.startswith(cloud.app.url)


@pytest.mark.parametrize("authorization", [ACCEPTED["ts-form"], ACCEPTED["fallback-python-form"]], ids=["primary", "fallback"])
def test_register_with_the_right_bearer_is_accepted(cloud, authorization):
    # The control: the same body for an app of its own, with a good token, registers.
    app_id = f"sec-intruder-{uuid.uuid4().hex[:8]}"
    # Its own trigger, so that no other test's events start its (unreachable) function.
    register = hijack_body(app_id, trigger=f"{app_id}/never")
    status, body = http("POST", f"{cloud.url}/fn/register", register, headers=headers_for(authorization))
    assert status == 200 and body["ok"] is True, body
    assert cloud.store.get_app(app_id) is not None
