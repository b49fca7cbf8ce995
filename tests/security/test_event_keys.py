"""The Event API in cloud mode takes configured event keys only: anything else is a 401 whose body
says so (with the `ids` and `status` the SDKs read), and no event is stored, so no run starts."""

from __future__ import annotations

import pytest

from stepline.protocol.signing import hash_event_key, hash_signing_key
from tests.e2e.conftest import http
from tests.security.conftest import EVENT_KEY, OTHER_ENV_EVENT_KEY, SIGNING_KEY, unique

WRONG_KEYS = {
    "unknown": "evt-not-configured",
    "other-environment": OTHER_ENV_EVENT_KEY,
    "upper-case": EVENT_KEY.upper(),
    "prefix": EVENT_KEY[:-1],
    "suffix": EVENT_KEY + "x",
    "hash-of-the-key": hash_event_key(EVENT_KEY),
    "signing-key": SIGNING_KEY,
    "signing-key-hash": hash_signing_key(SIGNING_KEY),
    "encoded-dot-segment-before": "..%2F" + EVENT_KEY,
    "encoded-dot-segment-after": EVENT_KEY + "%2F..",
    "encoded-dots": "%2E%2E",
    "encoded-nul": EVENT_KEY + "%00",
    "encoded-hash": EVENT_KEY + "%23",
    "encoded-space": "%20" + EVENT_KEY,
    "very-long": "k" * 8000,
}


@pytest.mark.parametrize("key", WRONG_KEYS.values(), ids=WRONG_KEYS.keys())
def test_a_wrong_event_key_is_401_and_stores_nothing(cloud, key):
    name = unique("sec/wrong-key-")
    status, body = http("POST", f"{cloud.url}/e/{key}", [{"name": name, "data": {"key": unique()}}])
    assert status == 401, body
    assert body == {"ids": [], "error": "event key not found", "status": 401}
    assert cloud.events_named(name) == []


@pytest.mark.parametrize("path", ["/e/", "/e"], ids=["slash", "bare"])
def test_an_empty_event_key_is_401_and_stores_nothing(cloud, path):
    name = unique("sec/no-key-")
    status, body = http("POST", f"{cloud.url}{path}", [{"name": name}])
    assert status == 401, body
    assert body["status"] == 401 and body["ids"] == [] and "event key" in body["error"], body
    assert cloud.events_named(name) == []


@pytest.mark.parametrize("path", [f"/e/../e/{EVENT_KEY}", f"/e/./{EVENT_KEY}", f"/e//{EVENT_KEY}", f"/e/{EVENT_KEY}/x"])
def test_literal_path_tricks_around_a_good_key_reach_no_route(cloud, path):
    # The server does not normalise paths: none of these is the Event API, whatever key it holds.
    name = unique("sec/dot-segments-")
    status, body = http("POST", f"{cloud.url}{path}", [{"name": name}])
    assert status == 404, body
    assert body["status"] == 404 and "no route" in body["error"], body
    assert cloud.events_named(name) == []


def test_a_url_too_long_for_the_server_is_refused_in_json(cloud):
    status, body = http("POST", f"{cloud.url}/e/{'k' * 70_000}", [{"name": "sec/never"}])
    assert status == 414, body
    assert body["status"] == 414 and "request" in body["error"], body


def test_the_configured_key_is_accepted_and_the_event_runs(cloud):
    # The control for every refusal above: the same body, with the configured key, is stored.
    name = unique("sec/right-key-")
    status, body = http("POST", f"{cloud.url}/e/{EVENT_KEY}", [{"name": name}])
    assert status == 200 and body["status"] == 200, body
    [stored] = cloud.events_named(name)
    assert stored["internal_id"] == body["ids"][0]
