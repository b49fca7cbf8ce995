"""Request signatures (docs/protocol.md §3.2) guard one direction: Stepline → app. Stepline signs every
call request in cloud mode; the app's SDK must refuse a request that Stepline did not sign for
that very body. The other direction, SDK → Stepline, is guarded by bearer tokens and event keys
(test_bearer.py, test_event_keys.py): no SDK signs its requests to Stepline, and Stepline does
not check the signatures SDKs put on their call responses (the protocol leaves that optional).

Here: Stepline's real call requests, captured and altered, sent to the official Python SDK's
app, and the same forgeries against the verifier Stepline's own SDK uses.
"""

from __future__ import annotations

import json
import time

import pytest

from stepline.protocol.jsoncanon import canonical_json
from stepline.protocol.signing import sign, verify_signature
from tests.e2e.test_signed import post_raw
from tests.security.conftest import FALLBACK_KEY, REVOKED_KEY, SIGNING_KEY, unique

WINDOW_S = 300


def flip_last_hex(signature: str) -> str:
    last = signature[-1]
    return signature[:-1] + ("0" if last != "0" else "1")


def with_data(body: bytes, **data) -> bytes:
    request = json.loads(body)
    request["event"]["data"].update(data)
    return canonical_json(request)


@pytest.fixture(scope="module")
def captured(cloud):
    """Two call requests Stepline really sent to the app, for two different runs."""
    if cloud.recorder is None:
        pytest.skip("stepline start sends its calls from its own process: they are captured in-process only")
    calls = []
    for _ in range(2):
        [event_id] = cloud.stepline.send({"name": "test/multi", "data": {"key": unique("sig-"), "x": 4}})
        [run] = cloud.stepline.wait_runs_done(event_id)
        assert run["status"] == "Completed", run
        calls.append(cloud.recorder.first_call_of(run["run_id"]))
    return calls


def forgeries(body: bytes, header: str, other_body: bytes, other_header: str) -> dict[str, tuple[bytes, dict]]:
    now = int(time.time())
    t, s = header.split("&")
    json_headers = {"Content-Type": "application/json"}
    return {
        "no-signature": (body, json_headers),
        "empty": (body, {**json_headers, "X-Inngest-Signature": ""}),
        "garbage": (body, {**json_headers, "X-Inngest-Signature": "nonsense"}),
        "missing-s": (body, {**json_headers, "X-Inngest-Signature": t}),
        "missing-t": (body, {**json_headers, "X-Inngest-Signature": s}),
        "t-not-a-number": (body, {**json_headers, "X-Inngest-Signature": f"t=soon&{s}"}),
        "flipped-byte": (body, {**json_headers, "X-Inngest-Signature": f"{t}&s={flip_last_hex(s[2:])}"}),
        "wrong-key": (body, {**json_headers, "X-Inngest-Signature": sign(body, "signkey-prod-" + "77" * 32, now)}),
        "revoked-key": (body, {**json_headers, "X-Inngest-Signature": sign(body, REVOKED_KEY, now)}),
        # A valid signature replayed: onto a changed body, onto another run's request, or with
        # another time than the one it signed.
        "changed-body": (with_data(body, x=1000), {**json_headers, "X-Inngest-Signature": header}),
        "other-requests-signature": (body, {**json_headers, "X-Inngest-Signature": other_header}),
        "signature-onto-other-request": (other_body, {**json_headers, "X-Inngest-Signature": header}),
        "moved-time": (body, {**json_headers, "X-Inngest-Signature": f"t={int(t[2:]) + 60}&{s}"}),
    }


FORGERY_IDS = ["no-signature", "empty", "garbage", "missing-s", "missing-t", "t-not-a-number", "flipped-byte",
               "wrong-key", "revoked-key", "changed-body", "other-requests-signature",
               "signature-onto-other-request", "moved-time"]


@pytest.mark.parametrize("forgery", FORGERY_IDS)
def test_the_python_sdk_refuses_a_forged_call_request(cloud, captured, forgery):
    (url, body, headers), (_, other_body, other_headers) = captured
    sent_body, sent_headers = forgeries(body, headers["X-Inngest-Signature"], other_body,
                                        other_headers["X-Inngest-Signature"])[forgery]
    status, reply_headers, reply = post_raw(url, sent_body, sent_headers)
    assert status == 401, reply
    assert json.loads(reply) == {"message": "Unauthorized"} or b"Unauthorized" in reply, reply
    assert "x-inngest-signature" not in reply_headers


def test_the_python_sdk_accepts_steplines_request_and_the_fallback_key(cloud, captured):
    (url, body, headers), _ = captured
    # Stepline's request as sent, and the same body signed with the fallback key of a rotation.
    for signature in (headers["X-Inngest-Signature"], sign(body, FALLBACK_KEY, int(time.time()))):
        status, reply_headers, reply = post_raw(url, body, {"Content-Type": "application/json",
                                                            "X-Inngest-Signature": signature})
        assert status in (200, 206), reply
        # The reply is signed back, over its raw bytes, with the key that verified the request.
        assert verify_signature(reply_headers.get("x-inngest-signature"), reply, [SIGNING_KEY, FALLBACK_KEY],
                                int(time.time()), canonical=False)


def test_the_python_sdk_does_not_check_the_time(cloud, captured):
    """A known gap of the official Python SDK 0.5.19: it checks the MAC but not `t`, so a captured
    request can be replayed at any later time (the TypeScript SDKs refuse one more than five
    minutes old; see test_signed.py). The MAC still covers `t`: it cannot be moved (above)."""
    (url, body, _), _ = captured
    for age_s in (10 * 60, 30 * 24 * 3600, -3600):
        stale = sign(body, SIGNING_KEY, int(time.time()) - age_s)
        status, _, reply = post_raw(url, body, {"Content-Type": "application/json", "X-Inngest-Signature": stale})
        assert status in (200, 206), (age_s, reply)


# -- the verifier Stepline's own SDK uses (stepline.sdk.serve) ------------------------------------


@pytest.mark.parametrize("forgery", FORGERY_IDS)
def test_steplines_verifier_refuses_the_same_forgeries(captured, forgery):
    (_, body, headers), (_, other_body, other_headers) = captured
    sent_body, sent_headers = forgeries(body, headers["X-Inngest-Signature"], other_body,
                                        other_headers["X-Inngest-Signature"])[forgery]
    assert not verify_signature(sent_headers.get("X-Inngest-Signature"), sent_body, [SIGNING_KEY, FALLBACK_KEY],
                                int(time.time()))


def test_steplines_verifier_holds_signatures_to_a_five_minute_window(captured):
    (_, body, _), _ = captured
    keys = [SIGNING_KEY, FALLBACK_KEY]
    now = int(time.time())
    for offset, accepted in [(0, True), (WINDOW_S, True), (-WINDOW_S, True), (WINDOW_S + 1, False),
                             (-WINDOW_S - 1, False), (30 * 24 * 3600, False)]:
        header = sign(body, FALLBACK_KEY, now - offset)
        assert verify_signature(header, body, keys, now) is accepted, offset
    # A request captured now is refused once the window has passed, whatever it signs.
    captured_now = sign(body, SIGNING_KEY, now)
    assert verify_signature(captured_now, body, keys, now + WINDOW_S)
    assert not verify_signature(captured_now, body, keys, now + WINDOW_S + 1)
