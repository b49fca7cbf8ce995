"""Signed (cloud) mode: requests must carry a valid signature over the JCS body, made with the
server's signing key; replies are signed back (docs/protocol.md §3)."""

from __future__ import annotations

import json
import time

import pytest

from stepline import Client, Context, SdkError
from stepline.protocol.signing import hash_signing_key, sign, verify_signature
from stepline.sdk.serve.handler import Handler, Request
from tests.sdk.conftest import call_body

KEY = "signkey-test-" + "ab" * 32
FALLBACK = "signkey-test-" + "cd" * 32
OTHER = "signkey-test-" + "ef" * 32


def cloud_handler(**kwargs) -> tuple[Handler, object]:
    client = Client("signed-app", dev=False, signing_key=KEY, **kwargs)

    @client.function("echo", trigger="t/echo")
    def echo(ctx: Context) -> dict:
        return {"n": ctx.event.data["n"]}

    return Handler(client, framework="test"), echo


def post(handler, fn, body: bytes, signature: str | None) -> object:
    headers = {"content-type": "application/json"}
    if signature:
        headers["X-Inngest-Signature"] = signature
    url = f"http://h/api/inngest?fnId={fn.composite_id}&stepId=step"
    return handler.handle(Request("POST", url, headers, body))


def test_cloud_mode_without_a_signing_key_refuses_to_serve():
    client = Client("unsigned", dev=False)
    with pytest.raises(SdkError, match="signing key"):
        Handler(client, framework="test")


def test_a_signed_call_runs_and_the_reply_is_signed_over_its_raw_bytes():
    handler, fn = cloud_handler()
    body = call_body()
    response = post(handler, fn, body, sign(body, KEY, int(time.time())))
    assert response.status == 200 and json.loads(response.body) == {"n": 2}
    signature = response.headers["x-inngest-signature"]
    assert verify_signature(signature, response.body, [KEY], int(time.time()), canonical=False)


def test_signature_is_checked_over_the_canonical_body():
    handler, fn = cloud_handler()
    pretty = json.dumps(json.loads(call_body()), indent=2).encode()  # same JSON, other bytes
    assert post(handler, fn, pretty, sign(call_body(), KEY, int(time.time()))).status == 200


@pytest.mark.parametrize("signature", [
    None,
    "t=123&s=deadbeef",
    "s=" + "0" * 64,
])
def test_unsigned_or_badly_signed_calls_are_401(signature):
    handler, fn = cloud_handler()
    response = post(handler, fn, call_body(), signature)
    assert response.status == 401 and response.json == {"message": "Unauthorized"}
    assert "x-inngest-sdk" not in response.headers


def test_wrong_key_and_stale_signatures_are_refused_and_the_fallback_key_works():
    handler, fn = cloud_handler(signing_key_fallback=FALLBACK)
    body = call_body()
    now = int(time.time())
    assert post(handler, fn, body, sign(body, OTHER, now)).status == 401
    assert post(handler, fn, body, sign(body, KEY, now - 3600)).status == 401
    response = post(handler, fn, body, sign(body, FALLBACK, now))
    assert response.status == 200
    assert verify_signature(response.headers["x-inngest-signature"], response.body, [FALLBACK], now, canonical=False)


def test_introspection_needs_a_signature_in_cloud_mode_and_then_says_more():
    handler, _ = cloud_handler()
    assert handler.handle(Request("GET", "http://h/api/inngest", {}, b"")).status == 401
    signed = handler.handle(Request("GET", "http://h/api/inngest",
                                    {"X-Inngest-Signature": sign(b"", KEY, int(time.time()))}, b""))
    assert signed.status == 200
    assert signed.json["authentication_succeeded"] is True and signed.json["mode"] == "cloud"
    assert signed.json["signing_key_hash"] == hash_signing_key(KEY)


def test_trust_probe():
    handler, _ = cloud_handler()
    url = "http://h/api/inngest?probe=trust"
    assert handler.handle(Request("POST", url, {}, b"")).status == 401
    ok = handler.handle(Request("POST", url, {"X-Inngest-Signature": sign(b"", KEY, int(time.time()))}, b""))
    assert ok.status == 200 and ok.json is None and "x-inngest-signature" in ok.headers


def test_interop_with_the_official_sdks_signing_code():
    """Requests signed by the official SDK's server-side signer are accepted, and our reply
    signature passes the official SDK's response verifier."""
    from inngest._internal import net, server_lib

    handler, fn = cloud_handler()
    body = call_body()
    response = post(handler, fn, body, net.sign_request(body, KEY))
    assert response.status == 200
    verdict = net.validate_response_sig(body=response.body, headers=dict(response.headers),
                                        mode=server_lib.ServerKind.CLOUD, signing_key=KEY)
    assert verdict == KEY
