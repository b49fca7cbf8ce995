"""Event API bodies (docs/protocol.md §11)."""

from __future__ import annotations

import json

import pytest

from stepline.protocol import EventPayload, ProtocolError, parse_event_batch
from tests.protocol.captures import EVENT_SEND, dumps


def reject(body: bytes, **limits) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        parse_event_batch(body, **limits)
    return info.value


def test_captured_sdk_send():
    events = parse_event_batch(EVENT_SEND)
    assert [e.name for e in events] == ["app/one", "app/two"]
    assert events[0].id is None and events[0].ts == 1795382807469 and events[0].data == {"x": 1}
    assert events[1].id == "my-fixed-id" and events[1].ts == 1700000000000
    assert events[0].user == {} and events[0].v is None
    assert events[0].to_dict() == {"name": "app/one", "data": {"x": 1}, "user": {}, "ts": 1795382807469}


def test_single_object_and_defaults():
    (event,) = parse_event_batch(b'{"name": "app/x"}')
    assert event.data == {} and event.user == {} and event.id is None and event.ts is None


def test_nulls_become_empty_objects_and_extra_keys_are_ignored():
    (event,) = parse_event_batch(dumps([{"name": "a", "data": None, "user": None, "meta": {"x": 1}, "v": "2"}]))
    assert event.data == {} and event.user == {} and event.v == "2"
    assert "meta" not in event.to_dict()


def test_data_inngest_is_stripped():
    (event,) = parse_event_batch(dumps({"name": "a", "data": {"_inngest": {"fn_id": "x"}, "k": None}}))
    assert event.data == {"k": None}


def test_integral_float_ts_is_accepted_as_int():
    (event,) = parse_event_batch(b'[{"name":"a","ts":1700000000000.0}]')
    assert event.ts == 1700000000000 and isinstance(event.ts, int)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[{]", "body: invalid JSON"),
        (b"", "body: no events sent"),
        (b"[]", "body: no events sent"),
        (b'"app/x"', "body: must be an event object or an array of events"),
        (b'[{"name": "ok"}, 5]', "events[1]: must be an object"),
        (b'[{"name": "ok"}, {"name": ""}]', "events[1].name: must be a non-empty string"),
        (b'[{"name": "   "}]', "events[0].name: must be a non-empty string"),
        (b'[{"name": 5}]', "events[0].name: must be a non-empty string"),
        (b'[{"data": {}}]', "events[0].name: is required"),
        (b'[{"name": "a", "data": []}]', "events[0].data: must be an object"),
        (b'[{"name": "a", "data": "x"}]', "events[0].data: must be an object"),
        (b'[{"name": "a", "user": 1}]', "events[0].user: must be an object"),
        (b'[{"name": "a", "id": 5}]', "events[0].id: must be a string"),
        (b'[{"name": "a", "ts": "now"}]', "events[0].ts: must be an integer"),
        (b'[{"name": "a", "ts": 1.5}]', "events[0].ts: must be an integer"),
        (b'[{"name": "a", "ts": true}]', "events[0].ts: must be an integer"),
        (b'[{"name": "a", "ts": -1}]', "events[0].ts: must not be negative"),
        (b'[{"name": "a", "v": 1}]', "events[0].v: must be a string"),
        (b'[{"name": "a", "data": {"x": NaN}}]', "body: invalid JSON"),
        (b'[{"name": "ok"}, {"name": "inngest/function.failed"}]',
         "events[1].name: names starting with 'inngest/' are reserved"),
    ],
)
def test_bad_input_names_the_field(body, message):
    err = reject(body)
    assert err.status == 400
    assert err.message.startswith(message), err.message


def test_too_many_events_is_413():
    err = reject(dumps([{"name": "a"}] * 4), max_events=3)
    assert err.status == 413 and "4 events" in err.message


def test_too_large_body_is_413():
    body = dumps([{"name": "a", "data": {"blob": "x" * 200}}])
    err = reject(body, max_bytes=100)
    assert err.status == 413 and "body" in err.message


def test_default_limits():
    parse_event_batch(dumps([{"name": "a"}] * 5000))
    assert reject(dumps([{"name": "a"}] * 5001)).status == 413
    assert reject(b" " * (3 * 1024 * 1024 + 1)).status == 413


def test_model_is_usable_for_internal_events():
    event = EventPayload(name="inngest/function.finished", data=None, id="01H", ts=1)
    assert event.to_dict() == {"name": "inngest/function.finished", "data": {}, "user": {}, "id": "01H", "ts": 1}
    assert json.loads(json.dumps(event.to_dict()))["data"] == {}


def test_deeply_nested_json_is_a_400_not_a_crash():
    err = reject(b"[" * 100_000)
    assert err.status == 400 and "nested too deeply" in err.message
