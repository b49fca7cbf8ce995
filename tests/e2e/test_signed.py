"""Signed cloud mode, end to end, with the official SDKs in production mode (INNGEST_DEV=0,
INNGEST_BASE_URL, INNGEST_SIGNING_KEY and _FALLBACK, INNGEST_EVENT_KEY): the Python SDK and the
npm SDK 3.x and 4.x sync with their bearer token, run on Stepline's signed call requests and send
events with the event key. Then the refusals: the SDKs refuse call requests whose signature is
wrong or (TS) stale while accepting Stepline's own, and Stepline refuses a wrong bearer on
register and an unknown event key.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from stepline.engine.http import HttpResponse, PooledHttpCaller
from stepline.protocol.jsoncanon import canonical_json
from stepline.protocol.signing import hash_signing_key, sign, verify_signature
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID as PY_APP_ID
from tests.e2e.conftest import SdkApp, Stepline, free_port, http, start_runtime, wait_for
from tests.ts.node import APP_ID as TS_APP_ID
from tests.ts.node import TsApp, ts_packages  # noqa: F401 (fixture)

SIGNING_KEY = "signkey-test-" + "3a5f" * 16
FALLBACK_KEY = "signkey-test-" + "9c1e" * 16
WRONG_KEY = "signkey-test-" + "0bad" * 16
EVENT_KEY = "evt-signed-e2e"
SDKS = ["py", "ts3", "ts4"]


class RecordingCaller(PooledHttpCaller):
    """The executor's HTTP client, keeping every call request it sends (URL, body, headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        self.sent.append((url, body, dict(headers)))
        return super().post(url, body, headers, timeout_s)

    def first_call_of(self, run_id: str) -> tuple[str, bytes, dict[str, str]]:
        return next(c for c in self.sent if json.loads(c[1])["ctx"]["run_id"] == run_id)


@dataclass
class Signed:
    sdk: str
    app_id: str
    stepline: Stepline
    app: SdkApp
    recorder: RecordingCaller

    @property
    def auth(self) -> dict[str, str]:
        return self.stepline.auth_headers


def cloud_env(base_url: str, signing_key: str, fallback_key: str | None, event_key: str) -> dict[str, str]:
    env = {"INNGEST_DEV": "0", "INNGEST_BASE_URL": base_url, "INNGEST_SIGNING_KEY": signing_key,
           "INNGEST_EVENT_KEY": event_key}
    if fallback_key:
        env["INNGEST_SIGNING_KEY_FALLBACK"] = fallback_key
    return env


def start_app(sdk: str, port: int, env: dict[str, str], log_dir) -> SdkApp:
    if sdk == "py":
        return SdkApp(env["INNGEST_BASE_URL"], port=port, extra_env=env)
    return TsApp(int(sdk[-1]), port=port, extra_env=env, log_dir=log_dir)


@pytest.fixture(scope="module", params=SDKS)
def signed(request, ts_packages, tmp_path_factory):  # noqa: F811 (the fixture imported above)
    sdk = request.param
    tmp = tmp_path_factory.mktemp(f"signed-{sdk}")
    settings = Settings(mode="cloud", signing_key=SIGNING_KEY, signing_key_fallback=FALLBACK_KEY,
                        event_keys=[EVENT_KEY], retry_base_ms=200, retry_cap_ms=1000,
                        allow_private_app_urls=True)  # the apps run on this machine
    recorder = RecordingCaller()
    port, app_port = free_port(), free_port()
    runtime = start_runtime("sqlite", tmp, [f"http://127.0.0.1:{app_port}/api/inngest"], port=port,
                            settings=settings, caller=recorder)
    app = None
    try:
        app = start_app(sdk, app_port, cloud_env(runtime.url, SIGNING_KEY, FALLBACK_KEY, EVENT_KEY), tmp)
        app_id = PY_APP_ID if sdk == "py" else TS_APP_ID
        stepline = Stepline(runtime, event_key=EVENT_KEY, authorization=f"Bearer {hash_signing_key(SIGNING_KEY)}")
        wait_for(lambda: runtime.backend.store.get_app(app_id), what=f"the {sdk} app to sync in cloud mode")
        yield Signed(sdk, app_id, stepline, app, recorder)
    finally:
        if app is not None:
            app.stop()
        runtime.stop()


def key() -> str:
    return uuid.uuid4().hex[:12]


def post_raw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def signed_headers(body: bytes, key: str, t: int) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Inngest-Signature": sign(body, key, t)}


def completed_run(signed: Signed, k: str) -> dict[str, Any]:
    [event_id] = signed.stepline.send({"name": "test/multi", "data": {"key": k, "x": 3}})
    [run] = signed.stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed", run
    return run


def replayable_run(signed: Signed, k: str) -> dict[str, Any]:
    """A completed run whose first call request the app can answer again on its own. A TS app
    checkpoints its steps to Stepline during a call, and Stepline refuses checkpoints from a
    call of a run that has ended (409, the SDK then answers StaleDispatchError), so for TS the
    run is of a function with checkpointing off."""
    if signed.sdk == "py":
        return completed_run(signed, k)
    [event_id] = signed.stepline.send({"name": "test/chain.plain", "data": {"key": k, "steps": 3}})
    [run] = signed.stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed", run
    return run


# -- the happy path, all signed ----------------------------------------------------------------


def test_the_app_syncs_with_its_bearer_token(signed):
    app = signed.stepline.runtime.backend.store.get_app(signed.app_id)
    assert app.url == signed.app.url
    assert app.sdk.startswith({"py": "py:", "ts3": "js:v3.", "ts4": "js:v4."}[signed.sdk]), app.sdk


def test_a_run_completes_on_signed_call_requests(signed):
    k = key()
    run = completed_run(signed, k)
    assert run["output"]["a"] == 3 and run["output"]["b"] == 30 and run["output"]["c"] == {"sum": 33}
    assert [signed.app.count("multi-step", s, k) for s in "abc"] == [1, 1, 1]
    calls = [c for c in signed.recorder.sent if json.loads(c[1])["ctx"]["run_id"] == run["run_id"]]
    assert calls and all(c[2].get("X-Inngest-Signature", "").startswith("t=") for c in calls)


def test_the_sdk_client_sends_with_the_event_key(signed):
    k = key()
    status, ids = http("POST", f"http://127.0.0.1:{signed.app.port}/send", [{"name": "test/multi", "data": {"key": k}}])
    assert status == 200, ids
    [run] = signed.stepline.wait_runs_done(ids[0])
    assert run["status"] == "Completed", run
    assert signed.app.count("multi-step", "c", k) == 1


def test_a_step_sends_an_event_in_cloud_mode(signed):
    k = key()
    [event_id] = signed.stepline.send({"name": "test/sender", "data": {"key": k}})
    [done] = signed.stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed", done
    [sent_id] = done["output"]["ids"]
    [followup] = signed.stepline.wait_runs_done(sent_id)
    assert followup["status"] == "Completed" and followup["output"]["b"] == 50
    assert signed.app.count("multi-step", "a", f"{k}-sent") == 1


# -- the SDK checks Stepline's signatures ------------------------------------------------------


def test_the_sdk_accepts_steplines_signature_and_refuses_a_tampered_one(signed):
    run = replayable_run(signed, key())
    url, body, headers = signed.recorder.first_call_of(run["run_id"])

    # Stepline's own request, sent again as it was: accepted, and the reply is signed back.
    status, reply_headers, reply = post_raw(url, body, headers)
    assert status in (200, 206), reply
    assert verify_signature(reply_headers.get("x-inngest-signature"), reply, [SIGNING_KEY],
                            int(time.time()), canonical=False)

    # The same signature over a body changed in flight.
    tampered = json.loads(body)
    tampered["event"]["data"]["x"] = 1000
    status, _, reply = post_raw(url, canonical_json(tampered), headers)
    assert status == 401, reply

    # Signed with a key the app does not have, or not signed at all.
    now = int(time.time())
    assert post_raw(url, body, signed_headers(body, WRONG_KEY, now))[0] == 401
    assert post_raw(url, body, {"Content-Type": "application/json"})[0] == 401

    # Signed with the app's fallback key (a key rotation in progress): accepted.
    status, _, reply = post_raw(url, body, signed_headers(body, FALLBACK_KEY, now))
    assert status in (200, 206), reply


@pytest.mark.parametrize("signed", ["ts3", "ts4"], indirect=True)
def test_the_ts_sdk_refuses_a_stale_signature(signed):
    # TS allows five minutes of clock skew; the Python SDK (0.5.19) does not check the time at all.
    run = replayable_run(signed, key())
    url, body, _ = signed.recorder.first_call_of(run["run_id"])
    now = int(time.time())
    status, _, reply = post_raw(url, body, signed_headers(body, SIGNING_KEY, now - 10 * 60))
    assert status == 401, reply
    status, _, reply = post_raw(url, body, signed_headers(body, SIGNING_KEY, now - 60))
    assert status in (200, 206), reply


# -- Stepline checks the SDK's credentials -----------------------------------------------------


def register_body(app_id: str) -> dict[str, Any]:
    url = "http://127.0.0.1:9/api/inngest"
    return {
        "url": url, "appName": app_id, "deployType": "ping", "framework": "nodejs", "sdk": "js:v4.24.0", "v": "0.1",
        "functions": [{
            "id": f"{app_id}-fn", "name": "fn", "triggers": [{"event": f"{app_id}/never"}],
            "steps": {"step": {"id": "step", "name": "step",
                               "runtime": {"type": "http", "url": f"{url}?fnId={app_id}-fn&stepId=step"}}},
        }],
    }


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer undefined",  # what TS sends without a key
        f"Bearer {hash_signing_key(WRONG_KEY)}",  # the Python SDK's form
        f"Bearer signkey-test-{hash_signing_key(WRONG_KEY)}",  # the TS SDK's form
        f"Bearer {SIGNING_KEY}",  # the key itself instead of its hash
    ],
    ids=["none", "undefined", "py-form", "ts-form", "raw-key"],
)
def test_register_with_a_wrong_bearer_is_refused(signed, authorization):
    app_id = f"intruder-{key()}"
    headers = {"Authorization": authorization} if authorization else {}
    status, body = http("POST", f"{signed.stepline.url}/fn/register", register_body(app_id), headers=headers)
    assert status == 401, body
    assert body["status"] == 401  # TS takes the sync's outcome from the body
    assert signed.stepline.runtime.backend.store.get_app(app_id) is None
    # The very same body with the right token is accepted: the bearer was the only problem.
    good = {"Authorization": f"Bearer signkey-test-{hash_signing_key(SIGNING_KEY)}"}
    assert http("POST", f"{signed.stepline.url}/fn/register", register_body(app_id), headers=good)[0] == 200


def test_an_sdk_with_the_wrong_keys_can_neither_sync_nor_send(signed, tmp_path):
    store = signed.stepline.runtime.backend.store
    before = store.get_app(signed.app_id)
    env = cloud_env(signed.stepline.url, WRONG_KEY, None, "evt-not-configured")
    intruder = start_app(signed.sdk, free_port(), env, tmp_path)
    try:
        # The PUT Stepline would send: the SDK registers with its (wrong) bearer and gets a 401.
        status, reply = http("PUT", intruder.url)
        if signed.sdk == "py":
            # Python answers the PUT with 200 whatever register said, passing its body on (docs/protocol.md §4.1).
            assert reply["status"] == 401 and "bearer" in reply["error"], reply
        else:
            # TS takes the PUT's status from the "status" in register's reply body.
            assert status == 401 and "bearer" in reply["message"], reply
        after = store.get_app(signed.app_id)
        assert (after.url, after.synced_at) == (before.url, before.synced_at)

        # Its event key is not configured: the SDK's send fails and nothing is stored.
        name = f"test/intruder-{key()}"
        status, reply = http("POST", f"http://127.0.0.1:{intruder.port}/send", [{"name": name, "data": {}}])
        assert status != 200, reply
        if signed.sdk != "py":
            assert "401" in reply["error"], reply
        status, listing = http("GET", f"{signed.stepline.url}/v1/events?name={name}", headers=signed.auth)
        assert status == 200 and listing["data"] == [], listing
    finally:
        intruder.stop()


def test_an_unknown_event_key_is_refused(signed):
    name = f"test/unknown-key-{key()}"
    status, body = http("POST", f"{signed.stepline.url}/e/not-a-configured-key", [{"name": name, "data": {}}])
    assert status == 401, body
    assert body["status"] == 401 and body["ids"] == []
    status, listing = http("GET", f"{signed.stepline.url}/v1/events?name={name}", headers=signed.auth)
    assert status == 200 and listing["data"] == [], listing
