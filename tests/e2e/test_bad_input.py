"""Bad input gets a 4xx whose error names what is wrong; never a 500, never a half-written run."""

from __future__ import annotations

import json

import pytest

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


def test_refused_batch_stores_nothing(url):
    code, _ = http("POST", f"{url}/e/key", raw=b'[{"name": "fine/one"}, {"name": ""}]')
    assert code == 400
    _, listing = http("GET", f"{url}/v1/events?name=fine/one")
    assert listing["data"] == []


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
