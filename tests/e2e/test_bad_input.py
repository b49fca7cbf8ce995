"""Bad input gets a 4xx whose error names what is wrong; never a 500, never a half-written run."""

from __future__ import annotations

import json
import uuid

import inngest
import pytest
from inngest._internal.errors import SendEventsError

from tests.e2e.conftest import http, start_runtime


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    runtime = start_runtime("sqlite", tmp_path_factory.mktemp("bad-input"), [])
    yield runtime.url
    runtime.stop()


@pytest.mark.parametrize(
    "raw, status, fragment",
    [
        (b"{not json", 400, "invalid JSON"),
        (b"", 400, "body"),
        (b"[]", 400, "body"),
        (b'{"data": {}}', 400, "name"),
        (b'[{"name": "ok/one"}, {"name": 42}]', 400, "events[1].name"),
        (b'{"name": "a/b", "data": [1, 2]}', 400, "data"),
        (b'{"name": "a/b", "ts": "yesterday"}', 400, "ts"),
        (b'{"name": "a/b", "id": 7}', 400, "id"),
        (b'{"name": "inngest/function.failed"}', 400, "inngest/"),
        (b'"just a string"', 400, "body"),
    ],
)
def test_event_api_names_the_problem(url, raw, status, fragment):
    code, body = http("POST", f"{url}/e/key", raw=raw)
    assert code == status, body
    assert fragment in body["error"], body
    assert body["status"] == status


def test_oversized_event_body_is_refused(url):
    big = json.dumps({"name": "a/b", "data": {"blob": "x" * (4 * 1024 * 1024)}}).encode()
    code, body = http("POST", f"{url}/e/key", raw=big)
    assert code == 413, body
    assert "body" in body["error"]


def test_too_many_events_are_refused(url):
    code, body = http("POST", f"{url}/e/key", [{"name": "a/b"}] * 5001)
    assert code == 413, body
    assert "events" in body["error"]


def test_a_batch_with_a_bad_event_stores_the_ones_before_it(url):
    code, body = http("POST", f"{url}/e/key", raw=b'[{"name": "fine/one"}, {"name": ""}, {"name": "fine/two"}]')
    assert code == 400 and body["error"].startswith("events[1].name"), body
    _, listing = http("GET", f"{url}/v1/events?name=fine/one")
    assert [e["internal_id"] for e in listing["data"]] == body["ids"] and len(body["ids"]) == 1
    # Reading stops at the bad event, as on Inngest: the one after it is not stored either.
    _, listing = http("GET", f"{url}/v1/events?name=fine/two")
    assert listing["data"] == []


def test_the_official_sdks_send_raises_with_the_ids_of_the_events_stored(url):
    client = inngest.Inngest(app_id="partial-send", event_api_base_url=url, is_production=False, logger=None)
    name = f"partial/{uuid.uuid4().hex[:8]}"
    with pytest.raises(SendEventsError) as raised:
        client.send_sync([inngest.Event(name=name), inngest.Event(name=""), inngest.Event(name="")])
    [stored_id] = raised.value.ids
    _, listing = http("GET", f"{url}/v1/events?name={name}")
    assert [e["internal_id"] for e in listing["data"]] == [stored_id]
    assert "events[1].name" in str(raised.value)


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"nope", "invalid JSON"),
        (b'{"url": "http://x/api", "functions": []}', "app"),
        (b'{"appname": "a", "url": "http://x/api", "functions": [{"id": "a-f", "name": "f", "triggers": [{"cron": "not a cron"}], "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://x/api?fnId=a-f&stepId=step"}}}}]}', "cron"),
        (b'{"appname": "a", "url": "http://x/api", "functions": [{"id": "a-f", "name": "f", "triggers": [{"event": "e", "expression": "event.data.x =="}], "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://x/api?fnId=a-f&stepId=step"}}}}]}', "expression"),
    ],
)
def test_register_names_the_problem(url, raw, fragment):
    code, body = http("POST", f"{url}/fn/register", raw=raw)
    assert code == 400, body
    assert fragment in body["error"], body
    assert body["status"] == 400


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/nowhere", 404),
        ("POST", "/e", 404),
        ("GET", "/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404),
        ("GET", "/v1/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404),
        ("DELETE", "/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404),
        ("GET", "/v1/events?limit=0", 400),
        ("GET", "/v1/events?limit=abc", 400),
        ("GET", "/v1/events?received_after=someday", 400),
    ],
)
def test_unknown_paths_and_bad_queries(url, method, path, status):
    code, body = http(method, f"{url}{path}")
    assert code == status, body
    assert body["error"]
