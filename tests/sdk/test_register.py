"""Declaring functions, and syncing them: the register body parses with the server's own
parser, a PUT makes the SDK POST it to /fn/register, GET reports the app's health."""

from __future__ import annotations

import datetime
import json

import pytest

from stepline import (
    Batch,
    Cancel,
    Concurrency,
    Context,
    Debounce,
    EventData,
    RateLimit,
    SdkError,
    Singleton,
    Throttle,
    Timeouts,
    cron,
    on,
)
from stepline.protocol.register import parse_register
from stepline.sdk.serve.handler import Handler, Request
from tests.sdk.conftest import FakeTransport, make_client


class Configured(EventData, name="app/configured"):
    user_id: str
    ok: bool = True


class Cancelled(EventData, name="app/cancel"):
    id: str


def configured_client(transport=None):
    client = make_client("lab-app", transport=transport or FakeTransport())

    @client.function(
        "configured",
        name="Configured Function",
        trigger=[on(Configured, if_="event.data.ok == true"), cron("TZ=Europe/Paris 0 9 * * 1")],
        retries=5,
        concurrency=[Concurrency(limit=2, key="event.data.user_id", scope="fn"), 10],
        throttle=Throttle(limit=5, period="10s", key="event.data.user_id", burst=2),
        rate_limit=RateLimit(limit=10, period=datetime.timedelta(minutes=1), key="event.data.user_id"),
        debounce=Debounce(period="10s", key="event.data.user_id", timeout="2m"),
        priority="event.data.priority",
        singleton=Singleton(mode="skip", key="event.data.user_id"),
        idempotency="event.data.order_id",
        cancel_on=[Cancel(Cancelled, if_="event.data.id == async.data.id", timeout="1h")],
        timeouts=Timeouts(start="30s", finish=datetime.timedelta(minutes=5)),
        on_failure=lambda ctx: {"failed": ctx.failure.message},
    )
    def configured(ctx: Context) -> None:
        return None

    @client.function("batched", trigger="app/batched", batch_events=Batch(max_size=50, timeout="5s",
                                                                          key="event.data.user_id"))
    def batched(ctx: Context) -> int:
        return len(ctx.events)

    return client


def test_register_body_parses_with_the_servers_parser_and_keeps_every_option():
    handler = Handler(configured_client(), framework="flask")
    body = handler.register_body("http://127.0.0.1:8939/api/inngest")
    app = parse_register(json.dumps(body).encode())
    assert app.app_id == "lab-app" and app.url == "http://127.0.0.1:8939/api/inngest"
    assert body["deploy_type"] == "ping" and body["framework"] == "flask" and body["v"] == "0.1"
    fn = app.function("lab-app-configured")
    assert fn.name == "Configured Function"
    assert fn.url == "http://127.0.0.1:8939/api/inngest?fnId=lab-app-configured&stepId=step"
    assert fn.retries == 5
    wire = fn.normalized()
    assert wire["triggers"] == [{"event": "app/configured", "expression": "event.data.ok == true"},
                                {"cron": "TZ=Europe/Paris 0 9 * * 1"}]
    assert wire["concurrency"] == [{"key": "event.data.user_id", "limit": 2, "scope": "fn"}, {"limit": 10}]
    assert wire["throttle"] == {"key": "event.data.user_id", "limit": 5, "period": "10s", "burst": 2}
    assert wire["rateLimit"] == {"key": "event.data.user_id", "limit": 10, "period": "1m"}
    assert wire["debounce"] == {"key": "event.data.user_id", "period": "10s", "timeout": "2m"}
    assert wire["priority"] == {"run": "event.data.priority"}
    assert wire["singleton"] == {"key": "event.data.user_id", "mode": "skip"}
    assert wire["idempotency"] == "event.data.order_id"
    assert wire["cancel"] == [{"event": "app/cancel", "if": "event.data.id == async.data.id", "timeout": "1h"}]
    assert wire["timeouts"] == {"start": "30s", "finish": "5m"}
    assert app.function("lab-app-batched").normalized()["batchEvents"] == {
        "maxSize": 50, "timeout": "5s", "key": "event.data.user_id"}


def test_on_failure_is_synced_as_its_own_function():
    handler = Handler(configured_client(), framework="flask")
    app = parse_register(json.dumps(handler.register_body("http://h/api/inngest")).encode())
    failure = app.function("lab-app-configured-failure")
    assert failure.name == "Configured Function (failure)"
    assert failure.retries == 0
    assert failure.normalized()["triggers"] == [{
        "event": "inngest/function.failed", "expression": "event.data.function_id == 'lab-app-configured'"}]


def test_function_ids_are_unique_per_app():
    client = make_client()

    @client.function("same", trigger="a/b")
    def one(ctx: Context) -> None: ...

    with pytest.raises(SdkError, match="already declared"):
        @client.function("same", trigger="a/c")
        def two(ctx: Context) -> None: ...

    with pytest.raises(SdkError, match="already declared"):
        @client.function("x", trigger="a/b", on_failure=lambda ctx: None)
        def x(ctx: Context) -> None: ...

        @client.function("x-failure", trigger="a/b")
        def clash(ctx: Context) -> None: ...


def test_two_clients_serving_the_same_id_in_one_handler_is_refused():
    a, b = make_client("same-app"), make_client("same-app")

    @a.function("f", trigger="a/b")
    def fa(ctx: Context) -> None: ...

    @b.function("f", trigger="a/b")
    def fb(ctx: Context) -> None: ...

    with pytest.raises(SdkError, match="two functions"):
        Handler(a, [fa, fb], framework="test")


@pytest.mark.parametrize("kwargs, problem", [
    ({"trigger": on("a/b", if_="event.data.x ==")}, "invalid expression"),
    ({"trigger": cron("not a cron")}, "cron"),
    ({"trigger": "a/b", "throttle": Throttle(limit=0, period="1s")}, "limit"),
    ({"trigger": "a/b", "rate_limit": RateLimit(limit=1, period="soon")}, "invalid duration"),
    ({"trigger": "a/b", "retries": 99}, "retries"),
    ({"trigger": "a/b", "concurrency": [1, 2, 3]}, "at most two"),
    ({"trigger": 42}, "trigger"),
])
def test_bad_options_fail_at_declaration(kwargs, problem):
    client = make_client()
    with pytest.raises(SdkError, match=problem):
        @client.function("bad", **kwargs)
        def bad(ctx: Context) -> None: ...


def test_put_posts_the_config_to_fn_register():
    transport = FakeTransport((200, {"ok": True, "modified": True, "status": 200}))
    client = configured_client(transport)
    client._settings["base_url"] = "http://127.0.0.1:8288"
    handler = Handler(client, framework="flask")
    response = handler.handle(Request("PUT", "http://127.0.0.1:8939/api/inngest?deployId=dep-1",
                                      {"X-Inngest-Server-Kind": "dev"}, b""))
    assert response.status == 200 and response.json == {"message": "Successfully registered", "modified": True}
    [sent] = transport.requests
    assert sent["method"] == "POST" and sent["url"] == "http://127.0.0.1:8288/fn/register?deployId=dep-1"
    assert sent["headers"]["x-inngest-framework"] == "flask"
    assert sent["headers"]["x-inngest-expected-server-kind"] == "dev"
    assert "authorization" not in sent["headers"]  # dev mode without a key
    app = parse_register(json.dumps(sent["body"]).encode())
    assert app.url == "http://127.0.0.1:8939/api/inngest"  # deployId is not part of the app URL
    assert len(app.functions) == 3


def test_a_failed_register_is_a_failed_put():
    transport = FakeTransport((400, {"ok": False, "error": "functions[0].id: bad", "status": 400}))
    handler = Handler(configured_client(transport), framework="flask")
    response = handler.handle(Request("PUT", "http://127.0.0.1:8939/api/inngest", {}, b""))
    assert response.status == 400 and response.json["message"] == "functions[0].id: bad"


def test_register_sends_the_bearer_and_falls_back_to_the_second_key():
    transport = FakeTransport((401, {"error": "unauthorized"}), (200, {"ok": True, "modified": False}))
    primary, fallback = "signkey-test-" + "ab" * 32, "signkey-test-" + "cd" * 32
    client = make_client("keyed", transport=transport, signing_key=primary, signing_key_fallback=fallback)

    @client.function("f", trigger="a/b")
    def f(ctx: Context) -> None: ...

    response = Handler(client, framework="test").handle(Request("PUT", "http://h/api/inngest", {}, b""))
    assert response.status == 200
    from stepline.protocol.signing import hash_signing_key

    assert [r["headers"]["authorization"] for r in transport.requests] == [
        f"Bearer {hash_signing_key(primary)}", f"Bearer {hash_signing_key(fallback)}"]


def test_serve_origin_and_path_override_the_request_url():
    transport = FakeTransport((200, {"ok": True}))
    client = make_client("behind-proxy", transport=transport, serve_origin="https://public.example.com",
                         serve_path="/hooks/stepline")

    @client.function("f", trigger="a/b")
    def f(ctx: Context) -> None: ...

    Handler(client, framework="test").handle(Request("PUT", "http://10.0.0.5:8000/api/inngest", {}, b""))
    body = transport.requests[0]["body"]
    assert body["url"] == "https://public.example.com/hooks/stepline"
    assert body["functions"][0]["steps"]["step"]["runtime"]["url"].startswith("https://public.example.com/hooks/")


def test_get_introspection_and_server_kind_mismatch():
    client = configured_client()
    handler = Handler(client, framework="flask")
    response = handler.handle(Request("GET", "http://h/api/inngest", {}, b""))
    assert response.status == 200
    assert response.json == {"schema_version": "2024-05-24", "function_count": 3, "has_event_key": False,
                             "has_signing_key": False, "has_signing_key_fallback": False, "mode": "dev"}
    mismatch = handler.handle(Request("GET", "http://h/api/inngest", {"x-inngest-server-kind": "cloud"}, b""))
    assert mismatch.status == 403
    put = handler.handle(Request("PUT", "http://h/api/inngest", {"x-inngest-server-kind": "cloud"}, b""))
    assert put.status == 400 and put.json["code"] == "server_kind_mismatch"
    assert handler.handle(Request("DELETE", "http://h/api/inngest", {}, b"")).status == 405
