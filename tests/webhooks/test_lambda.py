"""The API Lambda as deployed (its handler, built from the environment the stack sets, on the AWS
adapters and Secrets Manager in moto): a deployment's source with its secret in Secrets Manager,
read and kept like the signing keys."""

from __future__ import annotations

import json
import uuid

import boto3
import pytest

from stepline.engine.clock import ManualClock
from stepline.webhooks.model import parse_source
from stepline.webhooks.secrets import SecretUnavailable, WebhookSecrets
from tests.e2e.conftest import http, wait_for
from tests.handlers.test_lambda_entrypoints import lambda_deployment
from tests.webhooks.deliveries import MAPPING
from tests.webhooks.signing import github_header

PREFIX = "Stepline/webhooks/"
SECRET = "gh-lambda-secret"


def delivery(url: str, key: str, guid: str, secret: str = SECRET) -> tuple[int, dict]:
    body = json.dumps({"order": {"key": key, "amount": 2}}).encode()
    headers = {"X-Hub-Signature-256": github_header(secret, body), "X-GitHub-Delivery": guid}
    return http("POST", f"{url}/webhooks/gh", raw=body, headers=headers)


def test_a_deployed_source_with_its_secret_in_secrets_manager(monkeypatch):
    deployed = [{"source": "gh", "provider": "github", "secret_id": PREFIX + "gh", "transform": {"mapping": MAPPING}}]
    with lambda_deployment(monkeypatch, webhook_secret_prefix=PREFIX, webhook_sources=json.dumps(deployed)) as (
        url,
        app,
        backend,
        _pump,
    ):
        assert http("PUT", app.url)[0] == 200
        wait_for(lambda: backend.store.get_app("e2e-app"), what="the app to sync through the API Lambda")
        key = uuid.uuid4().hex[:10]

        # The secret is not there yet: 503 (the provider retries), not a 401 counted against it.
        code, reply = delivery(url, key, "guid-1")
        assert code == 503 and "'gh'" in reply["error"], reply
        assert backend.store.list_events(limit=10, name="test/multi")[0] == []

        boto3.client("secretsmanager").create_secret(Name=PREFIX + "gh", SecretString=SECRET)
        code, reply = delivery(url, key, "guid-1")
        assert code == 200 and reply["delivery_id"] == "guid-1", reply

        def completed():
            runs = http("GET", f"{url}/v1/events/{reply['ids'][0]}/runs")[1]["data"]
            return runs and runs[0]["status"] == "Completed" and runs[0]

        assert wait_for(completed, what="the webhook's run")["output"]["c"] == {"sum": 22}
        assert delivery(url, key, "guid-1") == (code, reply)  # GitHub's redelivery keeps the guid
        assert delivery(url, key, "guid-2")[1]["reason"] == "replayed"
        assert delivery(url, key, "guid-3", secret="wrong")[1]["reason"] == "bad_signature"
        assert [app.count("multi-step", step, key) for step in "abc"] == [1, 1, 1]
        listing = http("GET", f"{url}/v1/webhooks")[1]["data"]
        assert listing[0]["origin"] == "deployment" and listing[0]["rejected"]["replayed"] == 1

        # Deployed, a source configured through the API names its secret in Secrets Manager.
        code, reply = http("POST", f"{url}/v1/webhooks", {"source": "other", "provider": "shopify", "secret": "s"})
        assert code == 400 and reply["error"].startswith("secret:"), reply


def test_secrets_are_read_once_then_again_when_old_and_kept_through_a_failed_read():
    clock = ManualClock()
    values = {"S/webhooks/a": "first"}
    reads: list[str] = []

    def fetch(secret_id: str) -> str:
        reads.append(secret_id)
        if secret_id not in values:
            raise RuntimeError("ResourceNotFoundException")
        return values[secret_id]

    secrets = WebhookSecrets(clock, max_age_ms=300_000, fetch=fetch)
    source = parse_source({"source": "a", "provider": "github", "secret_id": "S/webhooks/a"})
    assert secrets.secret_for(source) == "first" and secrets.secret_for(source) == "first"
    assert len(reads) == 1
    values["S/webhooks/a"] = '{"secret": "rolled"}'  # the stack's JSON form
    clock.advance(299_000)
    assert secrets.secret_for(source) == "first"
    clock.advance(2_000)
    assert secrets.secret_for(source) == "rolled" and len(reads) == 2
    del values["S/webhooks/a"]
    clock.advance(301_000)
    assert secrets.secret_for(source) == "rolled"  # an outage keeps the value in hand
    with pytest.raises(SecretUnavailable):
        secrets.secret_for(parse_source({"source": "b", "provider": "github", "secret_id": "S/webhooks/b"}))
    # Inline secrets (stepline dev, start) are never fetched.
    assert secrets.secret_for(parse_source({"source": "c", "provider": "github", "secret": "inline"})) == "inline"
    assert "S/webhooks/c" not in reads
