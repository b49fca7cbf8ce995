"""An app deployed by the app construct gets the ids of the key secrets, never the keys: the SDK
reads them from Secrets Manager (moto here) and signs and checks with them."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from stepline import Client
from stepline.sdk import key_secrets

SIGNING = "signkey-prod-" + "ab" * 32


@pytest.fixture
def secrets(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    key_secrets._read.cache_clear()
    with mock_aws():
        sm = boto3.client("secretsmanager")
        sm.create_secret(Name="Stepline/signing-key", SecretString=json.dumps({"signing_key": SIGNING}))
        sm.create_secret(Name="Stepline/event-keys", SecretString="evt-key-one,evt-key-two")
        yield sm
    key_secrets._read.cache_clear()


def test_the_sdk_reads_its_keys_from_the_secrets_the_environment_names(secrets, monkeypatch):
    monkeypatch.setenv("STEPLINE_SIGNING_KEY_SECRET_ID", "Stepline/signing-key")
    monkeypatch.setenv("STEPLINE_EVENT_KEY_SECRET_ID", "Stepline/event-keys")
    for name in ("SIGNING_KEY", "EVENT_KEY"):
        monkeypatch.delenv(f"STEPLINE_{name}", raising=False)
        monkeypatch.delenv(f"INNGEST_{name}", raising=False)
    env = Client("orders-app", api_base_url="https://stepline.example.com").env
    assert env.signing_key == SIGNING and env.event_key == "evt-key-one"
    # Read once per container: the secret changing later is not read again by this process.
    secrets.put_secret_value(SecretId="Stepline/event-keys", SecretString="evt-key-three")
    assert Client("orders-app").env.event_key == "evt-key-one"


def test_a_key_given_to_the_client_wins_and_no_secret_is_read(monkeypatch):
    monkeypatch.setenv("STEPLINE_SIGNING_KEY_SECRET_ID", "Stepline/signing-key")
    key_secrets._read.cache_clear()
    env = Client("orders-app", signing_key=SIGNING, event_key="given").env
    assert env.signing_key == SIGNING and env.event_key == "given"
    assert key_secrets._read.cache_info().currsize == 0


def test_the_example_lambda_app_passes_its_own_check(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    from stepline.check import Status
    from stepline.check.module import inspect_module
    from stepline.check.registry import run_checks

    reports = run_checks(inspect_module("examples/lambda_app.py"))
    assert [(r.id, f.message) for r in reports for f in r.failures] == []
    assert all(r.status in (Status.PASSED, Status.NOT_APPLICABLE) for r in reports)
