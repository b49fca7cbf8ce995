"""The Event API (`POST /e/{key}`, and `POST /v1/events` which takes the same body) under any
body: a refusal is a 4xx naming the event and the field; the events before a refused one are
stored and their ids returned beside the error, as Inngest does, and nothing else is (no event, no
run); an accepted batch reads back as sent, and starts its runs, through every flow-control rule that
evaluates the event's data."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from stepline.engine.ids import seeded_ulid
from tests.fuzz.harness import World, assert_names_problem, assert_well_formed
from tests.fuzz.strategies import body_of, deep_json, garbage_body, json_object, json_value, raw_json_value, unicode_text

HIT = "fuzz/hit"
MAX_TS = 253_402_300_799_999  # the last ms before the year 10000
PLAIN = "fuzz-events-plain"
KEY = "event.data.k"
# Every rule that evaluates a user's CEL against the event at ingest, keyed on fuzzed data.
FUNCTIONS = {
    PLAIN: {"triggers": [{"event": HIT}]},
    "fuzz-events-expr": {"triggers": [{"event": HIT, "expression": "event.data.n > 1 && event.user.k == 'x'"}]},
    "fuzz-events-idem": {"triggers": [{"event": HIT}], "idempotency": KEY},
    "fuzz-events-rate": {"triggers": [{"event": HIT}], "rateLimit": {"limit": 1, "period": "1h", "key": KEY}},
    "fuzz-events-throttle": {"triggers": [{"event": HIT}], "throttle": {"limit": 1, "period": "1h", "key": KEY}},
    "fuzz-events-debounce": {"triggers": [{"event": HIT}], "debounce": {"period": "1h", "key": KEY}},
    "fuzz-events-batch": {"triggers": [{"event": HIT}], "batchEvents": {"maxSize": 3, "timeout": "1h", "key": KEY}},
    "fuzz-events-single": {"triggers": [{"event": HIT}], "singleton": {"mode": "cancel", "key": KEY}},
    "fuzz-events-cancel": {"triggers": [{"event": HIT}], "priority": {"run": "event.data.n"},
                           "cancel": [{"event": HIT, "if": "event.data.k == async.data.k", "timeout": "1h"}]},
}


@pytest.fixture(scope="module", autouse=True)
def functions(world: World) -> None:
    world.register("fuzz-events", FUNCTIONS)


# The Event API, and the REST API's send route (the same body with the signing key).
ROUTES = st.sampled_from(["/e/any-key", "/v1/events"])


def post(world: World, body: bytes, headers: dict[str, str] | None = None, route: str = "/e/any-key"):
    return world.request("POST", route, body, headers)


# -- what a good event and a bad one look like ------------------------------------------------

def _valid_name(name: str) -> bool:
    return bool(name.strip()) and not name.startswith("inngest/")


GOOD = {
    "name": st.sampled_from([HIT, "fuzz/miss"]) | unicode_text.filter(_valid_name),
    "data": st.none() | json_object | st.fixed_dictionaries({"k": json_value, "n": json_value}),
    "user": st.none() | json_object | st.fixed_dictionaries({"k": json_value}),
    "id": st.none() | unicode_text,
    "ts": st.none() | st.integers(min_value=0, max_value=MAX_TS) | st.integers(0, 2**40).map(float),
    "v": st.none() | unicode_text,
}
_not_object = json_value.filter(lambda v: v is not None and not isinstance(v, dict))
_not_text = json_value.filter(lambda v: v is not None and not isinstance(v, str))
BAD = {
    "name": _not_text | st.none() | st.text(" \t\n", max_size=3) | unicode_text.map(lambda s: "inngest/" + s),
    "data": _not_object,
    "user": _not_object,
    "id": _not_text,
    "ts": (st.integers(max_value=-1) | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
           | st.integers(min_value=MAX_TS + 1) | st.booleans() | unicode_text | st.lists(st.integers(), max_size=2)),
    "v": _not_text,
}
OPTIONAL = [f for f in GOOD if f != "name"]


@st.composite
def good_event(draw: st.DrawFn) -> dict[str, Any]:
    event = {"name": draw(GOOD["name"])}
    for name in draw(st.lists(st.sampled_from(OPTIONAL), unique=True)):
        event[name] = draw(GOOD[name])
    if draw(st.booleans()):
        event[draw(st.sampled_from(["extra", "_inngest", "data2"]))] = draw(json_value)  # ignored keys
    return event


@st.composite
def bad_event(draw: st.DrawFn) -> tuple[Any, str]:
    """An event with exactly one thing wrong, and the path (under events[i]) an error names."""
    kind = draw(st.sampled_from(["field", "field", "field", "no name", "not an object"]))
    if kind == "not an object":
        return draw(_not_object | st.none()), ""
    event = draw(good_event())
    if kind == "no name":
        del event["name"]
        return event, ".name"
    field = draw(st.sampled_from(list(BAD)))
    event[field] = draw(BAD[field])
    return event, f".{field}"


# -- what was sent, as it must read back -------------------------------------------------------

def expected(sent: dict[str, Any]) -> dict[str, Any]:
    data = dict(sent.get("data") or {})
    data.pop("_inngest", None)  # server-set metadata: a client cannot forge it
    out = {"name": sent["name"], "data": data, "user": sent.get("user") or {}, "v": sent.get("v")}
    if sent.get("id"):
        out["id"] = sent["id"]
    if sent.get("ts"):
        out["ts"] = int(sent["ts"])  # 0 reads as "not given", as in Inngest: the time received
    return out


def assert_round_trip(world: World, sent: list[dict[str, Any]], ids: list[str], since: int) -> None:
    assert len(ids) == len(sent)
    first_with_id: dict[str, int] = {}
    for index, (event, internal_id) in enumerate(zip(sent, ids)):
        if event.get("id"):
            first = first_with_id.setdefault(event["id"], index)
            if first != index:
                # The same id twice in one batch is one event (24 h dedupe).
                assert internal_id == ids[first]
                continue
        reply = world.request("GET", f"/v1/events/{internal_id}")
        assert reply.status == 200, reply
        stored = reply.body["data"]
        want = expected(event)
        assert {k: stored[k] for k in ("name", "data", "user", "v")} == {k: want[k] for k in ("name", "data", "user", "v")}
        assert stored["id"] == want.get("id", internal_id)
        assert stored["ts"] == want.get("ts", since)
        runs = world.store.runs_for_event(internal_id)
        plain = [r for r in runs if r.fn_id == PLAIN]
        if event["name"] == HIT:
            # Every accepted trigger starts its run; the rules decide only for their own function.
            assert len(plain) == 1 and plain[0].events[0]["data"] == want["data"], runs
        else:
            assert runs == []


def sent_events_since(world: World, since: int) -> list[Any]:
    """Events stored since ``since`` other than the lifecycle events the runs they started emit."""
    return [e for e in world.events_since(since) if not e.name.startswith("inngest/")]


def assert_nothing_stored(world: World, since: int) -> None:
    assert world.events_since(since) == []
    assert world.runs_since(since) == []


# -- properties --------------------------------------------------------------------------------

event_like = good_event() | bad_event().map(lambda pair: pair[0]) | raw_json_value | st.dictionaries(
    st.sampled_from(["name", "data", "user", "id", "ts", "v"]), raw_json_value)
batch_like = st.lists(event_like, max_size=4)


@given(body=garbage_body | body_of(event_like) | body_of(batch_like), route=ROUTES)
@example(body=deep_json(100_000), route="/e/any-key")
@example(body=b'{"name": "fuzz/hit", "data": ' + deep_json(5_000) + b"}", route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "ts": 2**64}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "ts": 10**40}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "\ud800", "id": "\udfff", "v": "\ud800"}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "data": {"k": "\ud800"}}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "data": {"k": 2**70, "n": 1e308}}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "x" * 4096}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "id": "i" * 4096}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "v": "v" * 500_000}).encode(), route="/e/any-key")
@example(body=json.dumps({"name": "fuzz/hit", "data": {"blob": "x" * 600_000}}).encode(), route="/e/any-key")
def test_any_body_is_answered_and_only_what_is_acknowledged_is_stored(world, body, route):
    since = world.tick()
    reply = post(world, body, route=route)
    event(f"status {reply.status}")
    assert_well_formed(reply)
    if reply.status != 200:
        accepted = reply.body.get("ids") or []
        if not accepted:
            assert_nothing_stored(world, since)
            return
        # A batch refused at one event: the ones before it are stored, and only they.
        sent = json.loads(body)
        sent = sent if isinstance(sent, list) else [sent]
        assert_round_trip(world, sent[: len(accepted)], accepted, since)
        assert len(sent_events_since(world, since)) == len(set(accepted))
        return
    sent = json.loads(body)
    assert_round_trip(world, sent if isinstance(sent, list) else [sent], reply.body["ids"], since)


@given(good=st.lists(good_event(), max_size=4), bad=bad_event(), at=st.integers(min_value=0), route=ROUTES)
def test_a_bad_event_is_named_and_only_the_events_before_it_are_stored(world, good, bad, at, route):
    since = world.tick()
    event, field = bad
    index = at % (len(good) + 1)
    batch = good[:index] + [event] + good[index:]
    reply = post(world, json.dumps(batch).encode(), route=route)
    assert_names_problem(reply, f"events[{index}]{field}")
    assert reply.status == 400
    # As Inngest's Event API: the events before the bad one are stored and their ids returned
    # beside the error (the SDKs raise it with those ids); the bad one and those after it are not.
    assert len(reply.body["ids"]) == index
    if index:
        assert_round_trip(world, good[:index], reply.body["ids"], since)
        assert len(sent_events_since(world, since)) == len(set(reply.body["ids"]))
    else:
        assert_nothing_stored(world, since)


@given(batch=st.lists(good_event(), min_size=1, max_size=5) | good_event())
def test_good_events_are_accepted_and_read_back(world, batch):
    since = world.tick()
    reply = post(world, json.dumps(batch).encode())
    assert reply.status == 200, reply
    assert_round_trip(world, batch if isinstance(batch, list) else [batch], reply.body["ids"], since)


@given(seed=st.text(max_size=40) | st.builds(lambda ms, raw: f"{ms},{base64.b64encode(raw).decode()}",
                                                st.integers(min_value=-1, max_value=2**49), st.binary(min_size=9, max_size=11)))
@example(seed="1,AAAAAAAAAAAAAA==")
@example(seed="99999999999999999999999,AAAAAAAAAAAAAA==")
def test_any_id_seed_header_is_used_or_ignored(world, seed):
    since = world.tick()
    reply = post(world, json.dumps([{"name": "fuzz/miss"}, {"name": "fuzz/miss"}]).encode(),
                 {"x-inngest-event-id-seed": seed})
    assert reply.status == 200, reply
    ids = reply.body["ids"]
    assert len(set(ids)) == 2
    ms_text, _, b64 = seed.partition(",")
    try:
        entropy = base64.b64decode(b64, validate=True)
        usable = len(entropy) == 10 and 0 <= int(ms_text) < 2**48
    except ValueError:
        usable = False
    if usable:
        # A retried send with the same seed gets the same ids back (and stores nothing new).
        assert ids == [seeded_ulid(int(ms_text), entropy, i) for i in range(2)]
    else:
        assert [e.internal_id for e in world.events_since(since)] == sorted(ids, reverse=True)


def test_found_by_fuzzing_an_event_larger_than_an_item_is_batched_and_debounced(world):
    # A batch's and a debounce's state hold whole events: on DynamoDB one over the 400 KB item
    # limit was a 500, after the event was stored.
    world.tick()
    blob = "x" * 600_000
    reply = post(world, json.dumps({"name": HIT, "data": {"k": "big", "blob": blob}}).encode())
    assert reply.status == 200, reply
    [event_id] = reply.body["ids"]
    world.clock.advance(3600 * 1000 + 60_000)  # both windows are an hour
    world.backend.timers.fire_due(world.clock.now_ms())
    for body in world.drain_queue():
        if body.get("kind") in ("batch", "debounce"):
            world.engine.executor.handle(body)
    runs = {r.fn_id: r for r in world.store.runs_for_event(event_id)}
    for fn_id in ("fuzz-events-batch", "fuzz-events-debounce"):
        assert runs[fn_id].events[0]["data"]["blob"] == blob, fn_id
