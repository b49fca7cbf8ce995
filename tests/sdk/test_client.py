"""The client: where it finds the server, and sending events (validated, retried, idempotent)."""

from __future__ import annotations

import pytest

from stepline import Client, Event, EventData, SdkError, SendEventsError
from stepline.sdk.transport import TransportError
from tests.sdk.conftest import FakeTransport

ENV_NAMES = ["DEV", "BASE_URL", "API_BASE_URL", "EVENT_API_BASE_URL", "EVENT_KEY", "SIGNING_KEY",
             "SIGNING_KEY_FALLBACK", "ENV", "SERVE_ORIGIN", "SERVE_PATH"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ENV_NAMES:
        monkeypatch.delenv(f"INNGEST_{name}", raising=False)
        monkeypatch.delenv(f"STEPLINE_{name}", raising=False)
    return monkeypatch


def test_cloud_mode_by_default():
    env = Client("app").env
    assert env.mode == "cloud"
    assert (env.api_origin, env.event_api_origin) == ("https://api.inngest.com", "https://inn.gs")
    assert env.event_key is None


def test_inngest_dev_selects_dev_mode_and_may_name_the_server(clean_env):
    clean_env.setenv("INNGEST_DEV", "1")
    env = Client("app").env
    assert env.mode == "dev" and env.api_origin == "http://127.0.0.1:8288" and env.event_key == "NO_EVENT_KEY_SET"
    clean_env.setenv("INNGEST_DEV", "http://127.0.0.1:9000")
    assert Client("app").env.event_api_origin == "http://127.0.0.1:9000"
    clean_env.setenv("INNGEST_DEV", "0")
    assert Client("app").env.mode == "cloud"


def test_precedence_argument_then_specific_then_base_then_dev_url(clean_env):
    clean_env.setenv("INNGEST_DEV", "http://dev-url:1")
    clean_env.setenv("INNGEST_BASE_URL", "http://base:2")
    clean_env.setenv("INNGEST_EVENT_API_BASE_URL", "http://events:3")
    env = Client("app").env
    assert (env.api_origin, env.event_api_origin) == ("http://base:2", "http://events:3")
    assert Client("app", api_base_url="http://arg:4").env.api_origin == "http://arg:4"
    assert Client("app", dev=False).env.mode == "cloud"


def test_stepline_spellings_win_and_env_is_read_when_used(clean_env):
    client = Client("app")
    clean_env.setenv("INNGEST_DEV", "http://inngest-dev:1")
    clean_env.setenv("STEPLINE_DEV", "http://stepline-dev:2")
    assert client.env.api_origin == "http://stepline-dev:2"  # read at use, not at construction


def test_send_validates_and_shapes_events():
    transport = FakeTransport((200, {"ids": ["a", "b", "c"], "status": 200}))
    client = Client("app", dev=True, transport=transport)

    class Paid(EventData, name="client/paid"):
        order_id: str
        cents: int

    ids = client.send([Paid(order_id="o1", cents=5), Paid(order_id="o2", cents=6).to_event(id="idem-2", ts=7),
                       Event(name="client/other", data={"k": 1})])
    assert ids == ["a", "b", "c"]
    [request] = transport.requests
    assert request["url"] == "http://127.0.0.1:8288/e/NO_EVENT_KEY_SET"
    first, second, third = request["body"]
    assert first["name"] == "client/paid" and first["data"] == {"order_id": "o1", "cents": 5}
    assert isinstance(first["ts"], int) and "id" not in first
    assert (second["id"], second["ts"]) == ("idem-2", 7)
    assert third == {"name": "client/other", "data": {"k": 1}, "ts": third["ts"]}
    # A dict sent under a bound name is checked against the model.
    with pytest.raises(SdkError, match="does not match Paid"):
        client.send({"name": "client/paid", "data": {"order_id": "o3"}})
    with pytest.raises(SdkError, match="reserved"):
        client.send({"name": "inngest/function.failed", "data": {}})
    with pytest.raises(SdkError, match="name"):
        client.send({"data": {}})
    assert len(transport.requests) == 1


def test_send_retries_server_errors_with_the_same_body_and_seed():
    transport = FakeTransport(TransportError("connection reset"), (502, {"error": "bad gateway"}),
                              (200, {"ids": ["x"], "status": 200}))
    client = Client("app", dev=True, transport=transport)
    waits: list[float] = []
    client.sleep = waits.append
    assert client.send({"name": "client/retried", "data": {}}) == ["x"]
    assert len(transport.requests) == 3 and waits == [0.1, 0.2]
    seeds = {r["headers"]["x-inngest-event-id-seed"] for r in transport.requests}
    bodies = {str(r["body"]) for r in transport.requests}
    assert len(seeds) == 1 and len(bodies) == 1


def test_send_gives_up_after_five_attempts_and_never_retries_a_4xx():
    client = Client("app", dev=True, transport=FakeTransport(*[(503, {})] * 5))
    client.sleep = lambda s: None
    with pytest.raises(SendEventsError, match="after 5 attempts"):
        client.send({"name": "client/down", "data": {}})
    refused = FakeTransport((400, {"ids": [], "status": 400, "error": "events[0].name: reserved"}))
    client = Client("app", dev=True, transport=refused)
    with pytest.raises(SendEventsError, match="reserved") as info:
        client.send({"name": "client/refused", "data": {}})
    assert info.value.status == 400 and len(refused.requests) == 1


def test_cloud_mode_needs_an_event_key_to_send(clean_env):
    client = Client("app", transport=FakeTransport())
    with pytest.raises(SdkError, match="event key"):
        client.send({"name": "client/x", "data": {}})
    clean_env.setenv("INNGEST_EVENT_KEY", "key-123")
    transport = FakeTransport((200, {"ids": ["1"], "status": 200}))
    Client("app", transport=transport, base_url="https://stepline.example.com").send({"name": "client/x"})
    assert transport.requests[0]["url"] == "https://stepline.example.com/e/key-123"


def test_env_header_is_sent(clean_env):
    clean_env.setenv("INNGEST_ENV", "my-branch")
    transport = FakeTransport()
    Client("app", dev=True, transport=transport).send({"name": "client/x"})
    assert transport.requests[0]["headers"]["x-inngest-env"] == "my-branch"
