"""Configuring sources through the REST API and the CLI, on a real `stepline start`-style
runtime (cloud mode: the operator key only)."""

from __future__ import annotations

import json

import pytest

from stepline.cli import main as stepline
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http

SIGNING_KEY = "signkey-prod-0123456789abcdef0123456789abcdef"
OPERATOR_KEY = "fedcba9876543210" * 4


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hash_signing_key(key)}"}


def start(tmp_path, **settings) -> DevRuntime:
    base = Settings(mode="cloud", event_keys=["evt"], signing_key=SIGNING_KEY, operator_key=OPERATOR_KEY, **settings)
    return DevRuntime(DevOptions(port=free_port(), db_path=str(tmp_path / "db")), base).start()


@pytest.fixture
def cloud(tmp_path):
    runtime = start(tmp_path)
    yield runtime
    runtime.stop()


def test_rest_configures_sources_and_names_what_is_wrong(cloud):
    url, op = f"{cloud.url}/v1/webhooks", bearer(OPERATOR_KEY)
    good = {"source": "stripe", "provider": "stripe", "secret": "whsec_abc"}
    assert http("POST", url, good)[0] == 401
    code, reply = http("POST", url, good, headers=bearer(SIGNING_KEY))
    assert code == 403, reply  # the apps' key may not configure what becomes events
    code, reply = http("POST", url, good, headers=op)
    assert code == 201 and reply["data"]["secret"] == "(set)" and "whsec_abc" not in json.dumps(reply), reply
    assert http("POST", url, {**good, "replay_window_s": 60}, headers=op)[0] == 200  # replaced
    for body, field in (
        ({**good, "provider": "paypal"}, "provider"),
        ({**good, "transform": {"cel": "event.body.type =="}}, "transform.cel"),
        ({"source": "x", "provider": "github"}, "secret"),
    ):
        code, reply = http("POST", url, body, headers=op)
        assert code == 400 and reply["error"].startswith(f"{field}:"), reply
    code, reply = http("GET", url, headers=op)
    assert code == 200 and [(s["source"], s["replay_window_s"]) for s in reply["data"]] == [("stripe", 60)]
    assert reply["data"][0]["rejected"]["bad_signature"] == 0
    assert http("DELETE", f"{url}/stripe", headers=op)[0] == 200
    code, reply = http("DELETE", f"{url}/stripe", headers=op)
    assert code == 404 and "stripe" in reply["error"]


def test_deployed_secrets_must_be_named_in_secrets_manager(tmp_path):
    runtime = start(tmp_path, webhook_secret_prefix="Stepline/webhooks/")
    try:
        url, op = f"{runtime.url}/v1/webhooks", bearer(OPERATOR_KEY)
        code, reply = http("POST", url, {"source": "gh", "provider": "github", "secret": "s"}, headers=op)
        assert code == 400 and reply["error"].startswith("secret:") and "Stepline/webhooks/gh" in reply["error"]
        code, reply = http("POST", url, {"source": "gh", "provider": "github", "secret_id": "other/x"}, headers=op)
        assert code == 400 and reply["error"].startswith("secret_id:"), reply
        body = {"source": "gh", "provider": "github", "secret_id": "Stepline/webhooks/gh"}
        assert http("POST", url, body, headers=op)[0] == 201
    finally:
        runtime.stop()


def test_deployment_sources_are_listed_and_read_only(tmp_path):
    deployed = [{"source": "shop", "provider": "shopify", "secret_id": "S/webhooks/shop"}]
    runtime = start(tmp_path, webhook_sources=json.dumps(deployed))
    try:
        url, op = f"{runtime.url}/v1/webhooks", bearer(OPERATOR_KEY)
        assert http("GET", url, headers=op)[1]["data"][0]["origin"] == "deployment"
        code, reply = http("POST", url, {"source": "shop", "provider": "github", "secret": "s"}, headers=op)
        assert code == 409 and "stepline:webhooks" in reply["error"]
        assert http("DELETE", f"{url}/shop", headers=op)[0] == 409
    finally:
        runtime.stop()


def test_the_cli_sets_lists_and_deletes(cloud, capsys, monkeypatch):
    monkeypatch.setenv("GH_SECRET", "It's a Secret to Everybody")
    common = ["--url", cloud.url, "--operator-key", OPERATOR_KEY]
    assert stepline(["webhooks", "set", "gh", "--provider", "github", "--secret-env", "GH_SECRET", *common,
                     "--cel", '{"name": "github/" + event.headers["x-github-event"], "data": event.body}']) == 0  # fmt: skip
    assert "POST /webhooks/gh" in capsys.readouterr().out
    assert stepline(["webhooks", "list", *common]) == 0
    listing = capsys.readouterr().out
    assert "gh" in listing and "github" in listing and "259200 s" in listing and "It's a Secret" not in listing
    # Refusals come back naming the field, with exit status 1.
    assert stepline(["webhooks", "set", "bad", "--provider", "github", "--secret-env", "GH_SECRET", *common,
                     "--mapping", '{"name": "x", "data": {"id": "id"}}']) == 1  # fmt: skip
    assert "transform.mapping.data.id" in capsys.readouterr().err
    assert stepline(["webhooks", "set", "bad", "--provider", "github", *common]) == 1
    assert "--secret-id" in capsys.readouterr().err
    assert stepline(["webhooks", "list", "--json", *common]) == 0
    assert [s["source"] for s in json.loads(capsys.readouterr().out)] == ["gh"]
    assert stepline(["webhooks", "delete", "gh", *common]) == 0
    assert stepline(["webhooks", "list", *common]) == 0
    assert "no webhook sources" in capsys.readouterr().out
