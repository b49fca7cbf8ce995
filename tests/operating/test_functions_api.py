"""Functions with their flow-control settings and last sync, and syncing an app by URL."""

from __future__ import annotations

import time

from tests.e2e.conftest import free_port, http
from tests.operating.harness import key


def test_functions_are_listed_with_triggers_flow_control_and_last_sync(ops):
    functions = {f["function_id"]: f for f in ops.get("/v1/functions")["data"]}
    assert set(functions) == {"ops-app-pipeline", "ops-app-slow", "ops-app-steps"}
    pipeline = functions["ops-app-pipeline"]
    assert pipeline["name"] == "Order pipeline" and pipeline["app_id"] == "ops-app"
    assert pipeline["triggers"] == [{"event": "ops/order.placed"}]
    assert pipeline["retries"] == 3 and functions["ops-app-steps"]["retries"] == 0
    assert pipeline["flow_control"]["concurrency"] == [{"limit": 5, "key": "event.data.key"}]
    assert pipeline["flow_control"]["throttle"]["limit"] == 100
    assert functions["ops-app-slow"]["flow_control"] == {
        "cancel": [{"event": "ops/slow.cancel", "if": "event.data.key == async.data.key"}]
    }
    assert functions["ops-app-steps"]["flow_control"] == {}
    apps = ops.get("/v1/apps")["data"]
    assert pipeline["last_synced_at"] == apps[0]["synced_at"]
    assert pipeline["config"]["id"] == "ops-app-pipeline"
    assert ops.get("/v1/functions/ops-app-slow")["data"] == functions["ops-app-slow"]
    code, body = http("GET", f"{ops.url}/v1/functions/nope")
    assert code == 404 and "nope" in body["error"]


def test_an_app_is_synced_by_url(ops):
    before = ops.get("/v1/apps")["data"][0]["synced_at"]
    time.sleep(0.01)
    code, body = http("POST", f"{ops.url}/v1/apps/sync", {"url": ops.app.url})
    assert code == 200, body
    [app] = body["data"]["apps"]
    assert app["app_id"] == "ops-app" and app["url"] == ops.app.url and app["synced_at"] > before
    assert body["data"]["synced"] is True


def test_sync_refusals_name_the_url(ops):
    code, body = http("POST", f"{ops.url}/v1/apps/sync", {"url": "ftp://nowhere"})
    assert code == 400 and body["error"].startswith("url:")
    code, body = http("POST", f"{ops.url}/v1/apps/sync", {})
    assert code == 400 and body["error"].startswith("url:")
    dead = f"http://127.0.0.1:{free_port()}/api/inngest"
    code, body = http("POST", f"{ops.url}/v1/apps/sync", {"url": dead})
    assert code == 502 and dead in body["error"]


def test_a_function_is_invoked_directly_with_event_data(ops):
    k = key()
    code, reply = http("POST", f"{ops.url}/v1/functions/ops-app-steps/invoke", {"data": {"key": k}})
    assert code == 200, reply
    run = ops.wait_done(reply["data"]["run_id"])
    assert run["status"] == "Completed" and run["output"] == {"sum": 6}
    # Its event is an invocation carrying the data, and every step ran once.
    event = ops.get(f"/v1/events/{reply['data']['event_id']}")["data"]
    assert event["name"] == "inngest/function.invoked" and event["data"]["key"] == k
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [1, 1, 1]

    for path, body, status, field in (
        ("/v1/functions/nope/invoke", {"data": {}}, 404, "nope"),
        ("/v1/functions/ops-app-steps/invoke", {"data": [1]}, 400, "data"),
    ):
        code, reply = http("POST", f"{ops.url}{path}", body)
        assert code == status and field in reply["error"], (path, reply)
    code, reply = http("POST", f"{ops.url}/v1/functions/ops-app-steps/invoke", raw=b"{nope")
    assert code == 400 and "invalid JSON" in reply["error"]
