"""Keys from Secrets Manager at cold start (stepline.handlers.wiring), in the formats the stack
creates and the rotation procedure writes."""

from __future__ import annotations

import json

import pytest

from stepline.handlers.wiring import (
    SecretFormatError,
    parse_event_keys_secret,
    parse_signing_key_secret,
    resolve_secrets,
)
from stepline.settings import Settings

KEY = "a" * 64
OLD = "b" * 64


@pytest.mark.parametrize(
    "text, expected",
    [
        (KEY, (KEY, None)),
        (f"signkey-prod-{KEY}\n", (f"signkey-prod-{KEY}", None)),
        (json.dumps({"signing_key": KEY}), (KEY, None)),
        (json.dumps({"signing_key": KEY, "signing_key_fallback": OLD}), (KEY, OLD)),
        (json.dumps({"signing_key": KEY, "signing_key_fallback": ""}), (KEY, None)),
    ],
)
def test_signing_key_formats(text, expected):
    assert parse_signing_key_secret(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("not-hex-at-all", "must be hex"),
        ('{"signing_key": 5}', "JSON must be"),
        ("{oops", "not JSON"),
        (json.dumps({"signing_key": KEY, "signing_key_fallback": "zz"}), "signing_key_fallback must be hex"),
        ("", "signing_key"),
    ],
)
def test_bad_signing_key_secrets_never_echo_the_value(text, message):
    with pytest.raises(SecretFormatError, match=message) as info:
        parse_signing_key_secret(text)
    if text and len(text) > 8:
        assert text not in str(info.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("k1", ["k1"]),
        ("k1, k2\nk3\n", ["k1", "k2", "k3"]),
        ('["k1", " k2 "]', ["k1", "k2"]),
    ],
)
def test_event_key_formats(text, expected):
    assert parse_event_keys_secret(text) == expected


@pytest.mark.parametrize("text", ["", " , \n", "[]", "[1]"])
def test_bad_event_key_secrets(text):
    with pytest.raises(SecretFormatError):
        parse_event_keys_secret(text)


def test_resolve_reads_each_named_secret_once():
    fetched: list[str] = []
    store = {"sk": json.dumps({"signing_key": KEY, "signing_key_fallback": OLD}), "ek": b"e1,e2"}

    def fetch(secret_id: str):
        fetched.append(secret_id)
        return store[secret_id]

    settings = Settings(mode="cloud", signing_key_secret_id="sk", event_keys_secret_id="ek",
                        signing_key="from-env-is-replaced")
    resolved = resolve_secrets(settings, fetch)
    assert fetched == ["sk", "ek"]
    assert resolved.signing_keys == [KEY, OLD] and resolved.event_keys == ["e1", "e2"]
    assert settings.signing_key == "from-env-is-replaced"  # the input is left alone


def test_nothing_to_resolve_reads_nothing():
    settings = Settings(mode="dev", signing_key=KEY)

    def fetch(secret_id: str):
        raise AssertionError("no secret is named")

    assert resolve_secrets(settings, fetch) is settings


def test_resolve_reads_from_secrets_manager():
    """Through powertools' parameters utility, against Secrets Manager (moto), by name or ARN."""
    import moto

    from stepline.aws.moto_env import moto_session

    with moto.mock_aws():
        client = moto_session().client("secretsmanager")
        arn = client.create_secret(Name="app/signing", SecretString=json.dumps({"signing_key": KEY}))["ARN"]
        client.create_secret(Name="app/events", SecretString="first")
        settings = Settings(mode="cloud", signing_key_secret_id=arn, event_keys_secret_id="app/events")
        assert resolve_secrets(settings).event_keys == ["first"]
        client.put_secret_value(SecretId="app/events", SecretString="second")
        # A new container (a cold start) reads the current value, not a cached one.
        resolved = resolve_secrets(settings)
    assert resolved.signing_key == KEY and resolved.event_keys == ["second"]
