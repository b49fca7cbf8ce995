"""Keys from Secrets Manager (stepline.handlers.wiring), in the formats the stack creates and the
rotation procedure writes, read at cold start and again every ``keys_refresh_s`` (at most five
minutes, timed by an injected clock here), so a rotated or revoked key stops working without a
deploy; and the operator key, apart from the apps' signing key, on the API Lambda's handler."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.engine.clock import ManualClock
from stepline.engine.keys import RETRY_AFTER_FAILURE_MS, Keys, RefreshingKeys, StaticKeys
from stepline.handlers.wiring import (
    SecretFormatError,
    key_ring,
    parse_event_keys_secret,
    parse_operator_key_secret,
    parse_signing_key_secret,
    read_keys,
    resolve_secrets,
)
from stepline.protocol.signing import hash_signing_key
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
        (json.dumps({"signing_key": f" {KEY} ", "signing_key_fallback": f"\n{OLD} "}), (KEY, OLD)),
        (json.dumps({"signing_key": f"signkey-prod-{KEY}", "signing_key_fallback": None}), (f"signkey-prod-{KEY}", None)),
        (json.dumps({"signing_key": KEY, "signing_key_fallback": "  "}), (KEY, None)),
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
        (json.dumps({"signing_key": " "}), "signing_key is empty"),
        (json.dumps({"signing_key": KEY, "signing_key_fallback": 5}), "signing_key_fallback must be a string"),
        (json.dumps({"signing_key_fallback": KEY}), "JSON must be"),
        (json.dumps([KEY]), "must be hex"),
        ("signkey-prod-", "must be hex"),
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
        ('["k1", "", " "]', ["k1"]),
        ("k1\r\nk2,,k3", ["k1", "k2", "k3"]),
        (' ["k1"]\n', ["k1"]),
    ],
)
def test_event_key_formats(text, expected):
    assert parse_event_keys_secret(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [("", "holds no key"), (" , \n", "holds no key"), ("[]", "holds no key"), ('[""]', "holds no key"),
     ("[1]", "strings only"), ('["k1", null]', "strings only"), ('["k1"', "not JSON")],
)  # fmt: skip
def test_bad_event_key_secrets(text, message):
    with pytest.raises(SecretFormatError, match=message):
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


@pytest.mark.parametrize(
    "text, expected",
    [
        (KEY, KEY),
        (f" {KEY}\n", KEY),
        (json.dumps({"operator_key": KEY}), KEY),
        (json.dumps({"operator_key": f" {KEY} "}), KEY),
        (f"signkey-ops-{KEY}", f"signkey-ops-{KEY}"),
    ],
)
def test_operator_key_formats(text, expected):
    assert parse_operator_key_secret(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "not-hex", '{"operator_key": 7}', "{nope", json.dumps({"operator_key": ""}), json.dumps({"key": KEY})],
)
def test_bad_operator_key_secrets_never_echo_the_value(text):
    with pytest.raises(SecretFormatError, match="operator key secret") as info:
        parse_operator_key_secret(text)
    if len(text) > 8:
        assert text not in str(info.value)


def test_the_operator_key_is_read_from_its_own_secret():
    store = {"sk": KEY, "op": json.dumps({"operator_key": OLD})}
    settings = Settings(mode="cloud", signing_key_secret_id="sk", operator_key_secret_id="op")
    keys = read_keys(settings, store.__getitem__)
    assert keys.signing_keys == (KEY,) and keys.operator_keys == (OLD,)


def test_keys_are_re_read_once_older_than_the_refresh_interval():
    """A key changed in the secret is used from the first request after ``keys_refresh_s``, and
    not one read before: each read of the secrets is one Secrets Manager request."""
    clock = ManualClock()
    secret = {"sk": json.dumps({"signing_key": KEY}), "ek": "e1", "op": OLD}
    reads: list[str] = []

    def fetch(secret_id: str) -> str:
        reads.append(secret_id)
        return secret[secret_id]

    settings = Settings(mode="cloud", signing_key_secret_id="sk", event_keys_secret_id="ek",
                        operator_key_secret_id="op", keys_refresh_s=300)
    ring = key_ring(settings, clock, fetch)
    assert isinstance(ring, RefreshingKeys) and reads == ["sk", "ek", "op"]
    secret.update(sk=json.dumps({"signing_key": OLD}), ek="e2", op=KEY)  # rotated: the old ones revoked
    clock.advance(299_999)
    assert ring.current().signing_keys == (KEY,) and ring.current().event_keys == ("e1",)
    assert len(reads) == 3
    clock.advance(1)
    now = ring.current()
    assert now.signing_keys == (OLD,) and now.event_keys == ("e2",) and now.operator_keys == (KEY,)
    assert len(reads) == 6
    ring.current()
    assert len(reads) == 6  # fresh again for another five minutes


def test_a_failed_re_read_keeps_the_keys_and_tries_again_later():
    clock = ManualClock()
    failing = {"now": False}

    def load() -> Keys:
        if failing["now"]:
            raise RuntimeError("Secrets Manager unreachable")
        return Keys(signing_keys=(KEY,))

    ring = RefreshingKeys(load, clock, max_age_ms=300_000)
    failing["now"] = True
    clock.advance(300_000)
    assert ring.current().signing_keys == (KEY,) and ring.reads == 1
    failing["now"] = False
    clock.advance(RETRY_AFTER_FAILURE_MS - 1)
    ring.current()
    assert ring.reads == 1
    clock.advance(1)
    ring.current()
    assert ring.reads == 2


def test_keys_without_secrets_are_the_settings_own():
    ring = key_ring(Settings(mode="cloud", signing_key=KEY, operator_key=OLD), ManualClock())
    assert isinstance(ring, StaticKeys)
    assert ring.current().signing_key == KEY and ring.current().operator_keys == (OLD,)


@pytest.mark.parametrize("seconds", [0, 301, 3600])
def test_the_refresh_interval_is_at_most_five_minutes(seconds):
    with pytest.raises(ValidationError, match="keys_refresh_s"):
        Settings(keys_refresh_s=seconds)


# -- the API Lambda's handler, keys in Secrets Manager (moto), time from a manual clock --------

SIGNING = "signkey-prod-" + "5e1f" * 16
OPERATOR = "9c04" * 16
NEXT_OPERATOR = "71ad" * 16
EVENT_KEY = "evt-refresh"


class DeployedApi:
    def __init__(self, secrets: Any, clock: ManualClock) -> None:
        self.secrets = secrets
        self.clock = clock

    def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
        from stepline.dev.http_server import to_http_api_event
        from stepline.handlers import api as api_module
        from tests.handlers.test_lambda_entrypoints import LambdaContext

        headers = {"content-type": "application/json"}
        if key is not None:
            headers["authorization"] = f"Bearer {hash_signing_key(key)}"
        data = json.dumps(body).encode() if body is not None else b""
        event = to_http_api_event(method, path, headers, data, "203.0.113.7")
        result = api_module.handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))
        text = result.get("body") or ""
        return result["statusCode"], json.loads(text) if text else None


@pytest.fixture(scope="module")
def deployed_api():
    from stepline.aws.moto_env import moto_backend
    from stepline.engine.clock import SystemClock
    from stepline.handlers import api as api_module
    from stepline.handlers import wiring

    monkeypatch = pytest.MonkeyPatch()
    clock = ManualClock()
    with moto_backend(SystemClock()) as backend:
        secrets = backend.session.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="t/signing-key", SecretString=json.dumps({"signing_key": SIGNING}))
        secrets.create_secret(Name="t/event-keys", SecretString=EVENT_KEY)
        secrets.create_secret(Name="t/operator-key", SecretString=json.dumps({"operator_key": OPERATOR}))
        settings = Settings(
            mode="cloud", signing_key_secret_id="t/signing-key", event_keys_secret_id="t/event-keys",
            operator_key_secret_id="t/operator-key", **backend.names.settings_values(),
        )
        for name, value in settings.to_env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setattr(wiring, "_engine", None)
        monkeypatch.setattr(api_module, "_handler", None)
        wiring.engine_from_env(clock)  # the container's engine, its key re-reads on our clock
        try:
            yield DeployedApi(secrets, clock)
        finally:
            wiring.reset()
            monkeypatch.undo()


OPERATOR_ROUTES = [
    ("DELETE", "/v1/runs/01J0000000000000000000000X", None),
    ("POST", "/v1/cancellations", {"function_id": "nope"}),
    ("POST", "/v1/runs/01J0000000000000000000000X/replay", {}),
    ("POST", "/v1/runs/01J0000000000000000000000X/rerun", {"step_id": "s"}),
    ("GET", "/v1/dead-letters", None),
    ("POST", "/v1/dead-letters/redrive", {"all": True}),
    ("POST", "/v1/sweep", {}),
    ("POST", "/v1/events", {"name": "t/op"}),
]


@pytest.mark.parametrize("method, path, body", OPERATOR_ROUTES)
def test_the_signing_key_cannot_steer_runs(deployed_api, method, path, body):
    status, reply = deployed_api.call(method, path, SIGNING, body)
    assert status == 403 and "operator key" in reply["error"], reply
    status, reply = deployed_api.call(method, path, None, body)
    assert status == 401, reply
    status, reply = deployed_api.call(method, path, OPERATOR, body)
    assert status not in (401, 403) and status < 500, (status, reply)


def test_what_the_sdks_do_needs_only_the_signing_key(deployed_api):
    assert deployed_api.call("GET", "/v1/events", SIGNING)[0] == 200
    assert deployed_api.call("GET", "/v0/runs/01J0000000000000000000000X/actions", SIGNING)[0] == 404
    assert deployed_api.call("GET", "/v1/events", OPERATOR)[0] == 200  # operators read too


def test_a_revoked_operator_key_stops_working_within_the_refresh_interval(deployed_api):
    """No deploy, no cold start: the secret changes, and five minutes later the old key is
    refused and the new one accepted."""
    secrets, clock = deployed_api.secrets, deployed_api.clock
    try:
        secrets.put_secret_value(SecretId="t/operator-key", SecretString=NEXT_OPERATOR)
        assert deployed_api.call("POST", "/v1/sweep", OPERATOR, {})[0] == 200  # not re-read yet
        clock.advance(300_000)
        status, reply = deployed_api.call("POST", "/v1/sweep", OPERATOR, {})
        assert status == 401, reply
        assert deployed_api.call("POST", "/v1/sweep", NEXT_OPERATOR, {})[0] == 200
    finally:
        secrets.put_secret_value(SecretId="t/operator-key", SecretString=OPERATOR)
        clock.advance(300_000)


def test_a_removed_event_key_stops_working_within_the_refresh_interval(deployed_api):
    secrets, clock = deployed_api.secrets, deployed_api.clock
    try:
        assert deployed_api.call("POST", f"/e/{EVENT_KEY}", body={"name": "t/refresh"})[0] == 200
        secrets.put_secret_value(SecretId="t/event-keys", SecretString="evt-next")
        clock.advance(300_000)
        status, reply = deployed_api.call("POST", f"/e/{EVENT_KEY}", body={"name": "t/refresh"})
        assert status == 401, reply
        assert deployed_api.call("POST", "/e/evt-next", body={"name": "t/refresh"})[0] == 200
    finally:
        secrets.put_secret_value(SecretId="t/event-keys", SecretString=EVENT_KEY)
        clock.advance(300_000)
