"""Deliveries end to end on both backends (SQLite, and the AWS adapters on moto): a signed
delivery in, a run of the official-SDK app out with each step run once; the provider's
redelivery starts nothing more; forged, unsigned, stale and replayed deliveries get a 401, are
counted, and store nothing."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import http, stack, wait_for  # noqa: F401 - stack is the fixture
from tests.webhooks.deliveries import CEL, MAPPING, PROVIDERS, Provider, now_s
from tests.webhooks.signing import stripe_header


def configure(url: str, provider: Provider, transform: dict) -> None:
    body = {"source": f"e2e-{provider.name}", "provider": provider.name, "secret": provider.secret,
            "transform": transform, **(provider.config or {})}  # fmt: skip
    code, reply = http("POST", f"{url}/v1/webhooks", body)
    assert code in (200, 201), reply


def deliver(url: str, provider: Provider, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    return http("POST", f"{url}/webhooks/e2e-{provider.name}", raw=body, headers=headers)


def stored_events(runtime, name: str = "test/multi") -> int:
    events, _ = runtime.backend.store.list_events(limit=100, name=name)
    return len(events)


def refused(url: str, provider: Provider) -> dict[str, int]:
    listing = http("GET", f"{url}/v1/webhooks")[1]["data"]
    return next(s["rejected"] for s in listing if s["source"] == f"e2e-{provider.name}")


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.name)
def test_a_signed_delivery_runs_once_and_a_redelivery_starts_nothing(stack, provider):  # noqa: F811
    stepline, app = stack
    url = stepline.url
    configure(url, provider, {"cel": CEL} if provider.name != "shopify" else {"mapping": MAPPING})
    key, delivery_id = uuid.uuid4().hex[:10], f"dlv-{uuid.uuid4().hex[:12]}"
    body = provider.body(key, delivery_id)
    headers = provider.sign(provider.secret, body, delivery_id)

    code, reply = deliver(url, provider, body, headers)
    assert code == 200 and reply["delivery_id"] == delivery_id and len(reply["ids"]) == 1, reply
    [run] = stepline.wait_runs_done(reply["ids"][0])
    assert run["status"] == "Completed" and run["output"]["c"] == {"sum": 33}
    event = runtime_event(stepline, reply["ids"][0])
    assert event["id"] == f"e2e-{provider.name}:{delivery_id}"

    # The provider delivers it again (its retry, or a redelivery from its dashboard): same ids,
    # the same one run, each step still run once.
    again = deliver(url, provider, body, provider.sign(provider.secret, body, delivery_id))
    assert again == (200, reply)
    assert len(stepline.runs(reply["ids"][0])) == 1
    assert [app.count("multi-step", step, key) for step in "abc"] == [1, 1, 1]

    # Signed with another secret, or not at all: 401, counted, nothing stored.
    before = stored_events(stepline.runtime)
    forged_id = f"dlv-{uuid.uuid4().hex[:12]}"
    forged_body = provider.body(key + "-forged", forged_id)
    code, reply = deliver(
        url, provider, forged_body, provider.sign("not-the-secret" + provider.secret[-8:], forged_body, forged_id)
    )
    assert code == 401 and reply["reason"] == "bad_signature", reply
    code, reply = deliver(url, provider, forged_body, {})
    assert code == 401 and reply["reason"] == "unsigned", reply
    assert stored_events(stepline.runtime) == before
    counts = refused(url, provider)
    assert counts["bad_signature"] == 1 and counts["unsigned"] == 1, counts
    assert app.count("multi-step", "a", key + "-forged") == 0


def runtime_event(stepline, internal_id: str) -> dict:
    code, reply = http("GET", f"{stepline.url}/v1/events/{internal_id}")
    assert code == 200, reply
    return reply["data"]


def test_stale_and_replayed_deliveries_are_refused(stack):  # noqa: F811
    stepline, app = stack
    url = stepline.url
    stripe, github = PROVIDERS[0], PROVIDERS[1]
    configure(url, stripe, {"cel": CEL})
    configure(url, github, {"mapping": MAPPING})
    key = uuid.uuid4().hex[:10]

    # Stripe: signed ten minutes ago, outside its five-minute window.
    body = stripe.body(key, f"evt_{key}")
    code, reply = deliver(url, stripe, body, {"Stripe-Signature": stripe_header(stripe.secret, body, now_s() - 600)})
    assert code == 401 and reply["reason"] == "outside_window", reply

    # GitHub signs the body only: the same signed body under a new delivery id is a replay.
    body = github.body(key, "")
    first = deliver(url, github, body, github.sign(github.secret, body, "guid-1-" + key))
    assert first[0] == 200, first
    stepline.wait_runs_done(first[1]["ids"][0])
    code, reply = deliver(url, github, body, github.sign(github.secret, body, "guid-2-" + key))
    assert code == 401 and reply["reason"] == "replayed", reply
    assert refused(url, github)["replayed"] >= 1 and refused(url, stripe)["outside_window"] >= 1
    assert [app.count("multi-step", step, key) for step in "abc"] == [1, 1, 1]


def test_one_delivery_becomes_several_events_and_pings_become_none(stack):  # noqa: F811
    stepline, app = stack
    url = stepline.url
    standard = PROVIDERS[2]
    # CEL's map() is refused (its cost is not bounded by the data it reads), so a transform
    # lists the events it makes.
    fan_out = ('event.body.type == "ping" ? [] : [{"name": "test/multi", "data": {"key": event.body.items[0]}}, '
               '{"name": "test/multi", "data": {"key": event.body.items[1]}}]')  # fmt: skip
    code, reply = http("POST", f"{url}/v1/webhooks", {"source": "e2e-fan", "provider": "standard",
                                                       "secret": standard.secret, "transform": {"cel": fan_out}})  # fmt: skip
    assert code in (200, 201), reply
    keys = [uuid.uuid4().hex[:10] for _ in range(2)]
    body = json.dumps({"type": "batch", "items": keys}).encode()
    code, reply = http(
        "POST", f"{url}/webhooks/e2e-fan", raw=body, headers=standard.sign(standard.secret, body, "msg_fan_" + keys[0])
    )
    assert code == 200 and len(reply["ids"]) == 2, reply
    for internal_id in reply["ids"]:
        stepline.wait_runs_done(internal_id)
    assert [app.count("multi-step", "a", k) for k in keys] == [1, 1]
    ping = b'{"type": "ping"}'
    code, reply = http(
        "POST", f"{url}/webhooks/e2e-fan", raw=ping, headers=standard.sign(standard.secret, ping, "msg_ping")
    )
    assert (code, reply["ids"]) == (200, []), reply


def test_unknown_sources_and_bad_payloads_are_4xx_naming_what(stack):  # noqa: F811
    stepline, _ = stack
    url = stepline.url
    code, reply = http("POST", f"{url}/webhooks/nobody", raw=b"{}")
    assert code == 404 and "nobody" in reply["error"]
    github = PROVIDERS[1]
    configure(url, github, {"mapping": {"name_path": "$.kind", "data": {}}})
    body = b'{"no_kind": true}'
    code, reply = deliver(url, github, body, github.sign(github.secret, body, "guid-bad-" + uuid.uuid4().hex))
    assert code == 400 and reply["error"].startswith("transform.mapping.name_path"), reply
    body = b"not json"
    code, reply = deliver(url, github, body, github.sign(github.secret, body, "guid-bad-" + uuid.uuid4().hex))
    assert code == 400 and reply["error"].startswith("body:"), reply


def test_concurrent_redeliveries_start_one_run_and_concurrent_replays_admit_one(stack):  # noqa: F811
    """A provider's retry racing its original, eight at once: one event, one run. The same
    GitHub body under eight delivery ids at once: exactly one is admitted."""
    from concurrent.futures import ThreadPoolExecutor

    stepline, app = stack
    url = stepline.url
    stripe, github = PROVIDERS[0], PROVIDERS[1]
    configure(url, stripe, {"cel": CEL})
    configure(url, github, {"mapping": MAPPING})
    key = uuid.uuid4().hex[:10]
    body = stripe.body(key, f"evt_{key}")
    headers = stripe.sign(stripe.secret, body, "")
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: deliver(url, stripe, body, headers), range(8)))
    assert {code for code, _ in replies} == {200}, replies
    assert len({tuple(reply["ids"]) for _, reply in replies}) == 1
    stepline.wait_runs_done(replies[0][1]["ids"][0])
    assert len(stepline.runs(replies[0][1]["ids"][0])) == 1
    assert [app.count("multi-step", step, key) for step in "abc"] == [1, 1, 1]

    other = uuid.uuid4().hex[:10]
    body = github.body(other, "")
    with ThreadPoolExecutor(8) as pool:
        replies = list(
            pool.map(lambda i: deliver(url, github, body, github.sign(github.secret, body, f"g{i}-{other}")), range(8))
        )
    admitted = [reply for code, reply in replies if code == 200]
    assert len(admitted) == 1 and sorted(r.get("reason") for c, r in replies if c != 200) == ["replayed"] * 7, replies
    stepline.wait_runs_done(admitted[0]["ids"][0])
    assert [app.count("multi-step", step, other) for step in "abc"] == [1, 1, 1]
