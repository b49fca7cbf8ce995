"""Signing keys, signatures and bearer tokens (docs/protocol.md §3), proven against the Python SDK."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from inngest._internal import net, server_lib, transforms

from stepline.protocol import (
    ProtocolError,
    bearer_matches,
    build_call_request,
    canonical_json,
    hash_event_key,
    hash_signing_key,
    sign,
    strip_key_prefix,
    verify_signature,
)
from tests.protocol.captures import PY_BEARER, SIGNING_KEY, SIGNING_KEY_HASH, TS_BEARER

NOW_S = 1_795_382_807
PRIMARY = "signkey-test-" + "ab" * 32
FALLBACK = "signkey-test-" + "cd" * 32


def call_body() -> bytes:
    return canonical_json(
        build_call_request(
            run_id="01HRUN0000000000000000000A",
            attempt=0,
            max_attempts=4,
            events=[{"name": "app/run", "data": {"k": "v"}, "id": "01HEVT0000000000000000000A",
                     "ts": 1700000000000, "user": {}}],
            steps={"86f7e437faa5a7fce15d1ddcb9eaeaea377667b8": {"data": {"a": 1}}},
            stack=["86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"],
            disable_immediate=False,
            use_api=False,
            version=-1,
        )
    )


def sdk_accepts(body: bytes, header: str, key: str, fallback: str | None = None) -> bool:
    """The official Python SDK's own request verifier, in cloud mode."""
    result = net.validate_request_sig(
        body=body,
        headers={server_lib.HeaderKey.SIGNATURE.value: header},
        mode=server_lib.ServerKind.CLOUD,
        signing_key=key,
        signing_key_fallback=fallback,
    )
    return not isinstance(result, Exception)


# -- keys -------------------------------------------------------------------------------------


def test_spec_example_key_hash():
    assert hash_signing_key(SIGNING_KEY) == SIGNING_KEY_HASH
    assert hash_signing_key("12345678") == SIGNING_KEY_HASH
    assert hash_signing_key(SIGNING_KEY) == transforms.hash_signing_key(SIGNING_KEY)


@pytest.mark.parametrize(
    ("key", "stripped"),
    [("signkey-prod-12ab", "12ab"), ("signkey-branch-12ab", "12ab"), ("signkey-test-12ab", "12ab"),
     ("12ab", "12ab"), ("signkey-my_env-ff", "ff"), ("xsignkey-prod-12", "xsignkey-prod-12")],
)
def test_strip_key_prefix_matches_sdk(key, stripped):
    assert strip_key_prefix(key) == stripped
    assert transforms.remove_signing_key_prefix(key) == stripped


def test_non_hex_key_is_refused_without_leaking_it():
    with pytest.raises(ProtocolError) as info:
        hash_signing_key("signkey-prod-notasecrethex")
    assert "notasecrethex" not in info.value.message
    assert "signing key" in info.value.message


def test_event_key_hash():
    assert hash_event_key("evtkey123") == hashlib.sha256(b"evtkey123").hexdigest()
    assert hash_event_key("evtkey123") == transforms.hash_event_key("evtkey123")


# -- bearer -----------------------------------------------------------------------------------


def test_bearer_python_form_prefix_dropped():
    assert bearer_matches(PY_BEARER, [SIGNING_KEY])


def test_bearer_ts_form_prefix_kept():
    assert bearer_matches(TS_BEARER, [SIGNING_KEY])


def test_bearer_fallback_key():
    assert bearer_matches(PY_BEARER, [PRIMARY, SIGNING_KEY])
    assert bearer_matches(TS_BEARER, [PRIMARY, SIGNING_KEY])
    assert bearer_matches(PY_BEARER, [PRIMARY, None, SIGNING_KEY])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer undefined", f"Basic {SIGNING_KEY_HASH}",
     f"Bearer {SIGNING_KEY_HASH[:-1]}0", f"Bearer {SIGNING_KEY}"],
)
def test_bearer_refused(header):
    assert not bearer_matches(header, [SIGNING_KEY])


def test_bearer_with_no_keys_or_bad_keys():
    assert not bearer_matches(PY_BEARER, [])
    assert not bearer_matches(PY_BEARER, ["signkey-prod-zz"])


def test_bearer_case_and_spacing():
    assert bearer_matches(f"bearer {SIGNING_KEY_HASH}", [SIGNING_KEY])
    assert bearer_matches(f"Bearer {SIGNING_KEY_HASH.upper()}", [SIGNING_KEY])


# -- signatures -------------------------------------------------------------------------------


def test_sign_format():
    body = b'{"a":1}'
    header = sign(body, PRIMARY, NOW_S)
    key = PRIMARY.removeprefix("signkey-test-").encode()
    expected = hmac.new(key, body + str(NOW_S).encode(), hashlib.sha256).hexdigest()
    assert header == f"t={NOW_S}&s={expected}"


def test_sign_matches_sdk_signer():
    body = call_body()
    assert sign(body, PRIMARY, NOW_S) == net.sign_request(body, PRIMARY, NOW_S)


def test_official_python_sdk_verifies_our_call_request_signature():
    body = call_body()
    header = sign(body, PRIMARY, NOW_S)
    assert sdk_accepts(body, header, PRIMARY)
    # And it is the key that matters: a different key is refused by the SDK.
    assert not sdk_accepts(body, header, FALLBACK)


def test_official_python_sdk_verifies_with_its_fallback_key():
    body = call_body()
    assert sdk_accepts(body, sign(body, FALLBACK, NOW_S), PRIMARY, fallback=FALLBACK)


def test_non_canonical_bytes_signed_raw_are_refused_by_the_sdk():
    # The §3.2 capture in miniature: why bodies must be JCS.
    raw = json.dumps(json.loads(call_body()), indent=1).encode()
    assert not sdk_accepts(raw, sign(raw, PRIMARY, NOW_S), PRIMARY)


def test_verify_accepts_sdk_signed_request():
    body = call_body()
    header = net.sign_request(body, PRIMARY, NOW_S)
    assert verify_signature(header, body, [PRIMARY], NOW_S)


def test_verify_is_over_the_jcs_form():
    canonical = call_body()
    header = sign(canonical, PRIMARY, NOW_S)
    reordered = json.dumps(json.loads(canonical), indent=2, sort_keys=False).encode()
    assert verify_signature(header, reordered, [PRIMARY], NOW_S)


def test_verify_fallback_key():
    body = call_body()
    assert verify_signature(sign(body, FALLBACK, NOW_S), body, [PRIMARY, FALLBACK], NOW_S)
    assert not verify_signature(sign(body, FALLBACK, NOW_S), body, [PRIMARY], NOW_S)


def test_verify_rejects_stale_and_future_signatures():
    body = call_body()
    assert verify_signature(sign(body, PRIMARY, NOW_S - 300), body, [PRIMARY], NOW_S)
    assert not verify_signature(sign(body, PRIMARY, NOW_S - 600), body, [PRIMARY], NOW_S)
    assert not verify_signature(sign(body, PRIMARY, NOW_S + 600), body, [PRIMARY], NOW_S)
    assert verify_signature(sign(body, PRIMARY, NOW_S - 600), body, [PRIMARY], NOW_S, max_age_s=900)


def test_verify_empty_body_signed_as_empty_string():
    header = sign(b"", PRIMARY, NOW_S)
    assert verify_signature(header, b"", [PRIMARY], NOW_S)
    assert header == net.sign_request(b"", PRIMARY, NOW_S)


@pytest.mark.parametrize(
    "header",
    [None, "", "s=abc", f"t={NOW_S}", f"t=abc&s=00", "garbage", f"t={NOW_S}&s=" + "0" * 64],
)
def test_verify_refuses_malformed_or_wrong(header):
    assert not verify_signature(header, call_body(), [PRIMARY], NOW_S)


def test_verify_refuses_tampered_body_and_non_json():
    body = call_body()
    header = sign(body, PRIMARY, NOW_S)
    assert not verify_signature(header, body.replace(b'"attempt":0', b'"attempt":1'), [PRIMARY], NOW_S)
    assert not verify_signature(header, b"not json", [PRIMARY], NOW_S)
    assert not verify_signature(header, body, [], NOW_S)


def test_verify_response_signature_over_raw_bytes():
    # §3.3: the SDK signs its response over the raw bytes, not JCS.
    raw = b'{"b": 1, "a": 2}'
    header = net.sign_response(raw, PRIMARY, NOW_S)
    assert verify_signature(header, raw, [PRIMARY], NOW_S, canonical=False)
    assert not verify_signature(header, raw, [PRIMARY], NOW_S)
