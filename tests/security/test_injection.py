"""Event data, names and ids built to break expressions or store keys. Each is either refused
with a 400 naming the field, or accepted and treated as plain data: CEL sees event data only as
values bound to `event` and `async`, never as expression text, so no payload can make a wait,
a cancel rule or a trigger match what it should not. Checked with real runs of the official-SDK
app on both backends."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from stepline.engine.waiter_index import event_keys
from stepline.protocol.events import MAX_DEPTH, MAX_ID_BYTES, MAX_NAME_BYTES, MAX_TS_MS
from tests.e2e.conftest import http, wait_for
from tests.security.conftest import EVENT_KEY, unique

# Text that would break out of a CEL string literal, or a SQL one, if anything pasted data into
# an expression or a statement.
BREAKOUTS = [
    '" || true || "',
    '") || true || ("',
    "' || true || '",
    '\\" || true || \\"',
    "\\",
    "'; DROP TABLE waiters;--",
    "true",
    "event.data.key",
    "async.data.key",
]


def waiting_keys(prefix: str) -> list[str]:
    """Keys for runs that wait: each a breakout itself, so exact matching is what is tested."""
    return [f"{prefix}-{i}{breakout}" for i, breakout in enumerate(BREAKOUTS)] + [
        f"{prefix}-uni-é😀", f"{prefix}-nul-\x00-", f"{prefix}-sep#RUN#x", f"{prefix}-path/../x",
    ]


def forged_keys(real: str) -> list[Any]:
    """What a sender who knows one waiting key could try in order to match other runs."""
    return [*BREAKOUTS, real + " ", real.upper(), real[:-1], real + "\x00", None, True, 1, [real], {"key": real}, ""]


def waiter_run_ids(cloud, event_name: str, keys: list[str]) -> set[str]:
    """The runs waiting for ``event_name`` that an event with one of ``keys`` would read: in the
    buckets its key gives (the waits say `event.data.key == async.data.key`) and the unkeyed one."""
    now = int(time.time() * 1000)
    fields = cloud.store.waiter_fields(event_name)
    buckets = {None, *(b for k in keys for b in event_keys(event_name, fields, {"data": {"key": k}}))}
    return {w.run_id for b in buckets for w in cloud.store.waiters_for_event(event_name, now, b).waiters}


def start_waiting(cloud, fn_event: str, wait_event: str, keys: list[str], **data: Any) -> dict[str, str]:
    """One run per key, each parked on a waiter for ``wait_event``: {key: run_id}."""
    event_ids = cloud.stepline.send(*[{"name": fn_event, "data": {"key": k, **data}} for k in keys])
    run_ids = {}
    for k, event_id in zip(keys, event_ids):
        run_ids[k] = wait_for(lambda e=event_id: (cloud.run_of(e) or {}).get("run_id"), what=f"a run for {k!r}")
    wait_for(lambda: set(run_ids.values()) <= waiter_run_ids(cloud, wait_event, keys), what="every run to wait")
    return run_ids


def test_wait_for_event_matches_only_the_exact_value(cloud):
    keys = waiting_keys(unique("wait"))
    run_ids = start_waiting(cloud, "test/approval.requested", "test/approval.decided", keys, timeout_s=120)

    forged = [{"name": "test/approval.decided", "data": {"key": f, "decision": "forged"}}
              for f in forged_keys(keys[0])]
    # The name with a key separator after it is another event: it must not reach these waiters.
    forged += [{"name": f"test/approval.decided#{run_ids[keys[0]]}", "data": {"key": keys[0], "decision": "forged"}},
               {"name": "test/approval.decided/..", "data": {"key": keys[0], "decision": "forged"}}]
    cloud.stepline.send(*forged)
    # Waits are matched while the Event API answers: had anything matched, its waiter would be gone.
    assert set(run_ids.values()) <= waiter_run_ids(cloud, "test/approval.decided", keys)

    cloud.stepline.send(*[{"name": "test/approval.decided", "data": {"key": k, "decision": f"ok-{i}"}}
                          for i, k in enumerate(keys)])
    for i, k in enumerate(keys):
        run = wait_for(lambda r=run_ids[k]: _finished(cloud, r), what=f"the run waiting on {k!r} to finish")
        assert run["status"] == "Completed" and run["output"] == {"decision": f"ok-{i}"}, (k, run)


def _finished(cloud, run_id: str) -> dict[str, Any] | None:
    status, body = cloud.authed("GET", f"/v1/runs/{run_id}")
    assert status == 200, body
    return body["data"] if body["data"]["status"] in ("Completed", "Failed", "Cancelled") else None


def test_cancel_rules_match_only_the_exact_value(cloud):
    keys = waiting_keys(unique("cancel"))
    run_ids = start_waiting(cloud, "test/cancellable", "test/cancel", keys)
    cloud.stepline.send(*[{"name": "test/cancel", "data": {"key": f}} for f in forged_keys(keys[1])])
    assert set(run_ids.values()) <= waiter_run_ids(cloud, "test/cancel", keys)
    for run_id in run_ids.values():
        assert _run(cloud, run_id)["status"] == "Running"

    # The exact key of one run cancels that run and no other.
    target = keys[3]
    cloud.stepline.send({"name": "test/cancel", "data": {"key": target}})
    assert _run(cloud, run_ids[target])["status"] == "Cancelled"
    others = [k for k in keys if k != target]
    assert all(_run(cloud, run_ids[k])["status"] == "Running" for k in others)
    cloud.stepline.send(*[{"name": "test/cancel", "data": {"key": k}} for k in others])
    assert all(_run(cloud, run_ids[k])["status"] == "Cancelled" for k in others)


def _run(cloud, run_id: str) -> dict[str, Any]:
    status, body = cloud.authed("GET", f"/v1/runs/{run_id}")
    assert status == 200, body
    return body["data"]


def test_a_trigger_expression_sees_data_as_values(cloud):
    # `filtered` runs on `event.data.ok == true`: only the boolean true starts it.
    forged = [{"name": "test/filtered", "data": {"ok": ok, "key": unique()}}
              for ok in ["true", "true || true", '" || true || "', 1, [True], {"ok": True}, None]]
    forged_ids = cloud.stepline.send(*forged)
    [control_id] = cloud.stepline.send({"name": "test/filtered", "data": {"ok": True, "key": unique()}})
    [control] = cloud.stepline.wait_runs_done(control_id)
    assert control["status"] == "Completed" and control["output"] == "matched", control
    assert all(cloud.stepline.runs(e) == [] for e in forged_ids)


# -- payloads accepted as plain data -------------------------------------------------------------


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = {"d": value}
    return value


PLAIN = {
    "quotes": {"q": '"); true || ("', "s": "'; DROP TABLE events;--"},
    "nul-and-unicode": {"nul": "a\x00b", "uni": "é😀\u2028", "\x00key": 1},
    "numbers": {"big": 2**63 + 1, "huge": 10**300, "max": 1.7976931348623157e308, "tiny": 5e-324, "neg_zero": -0.0},
    # The deepest data taken: every SDK can still parse the call request that carries it.
    "deep": {"deep": deep(MAX_DEPTH - 1)},
}


@pytest.mark.parametrize("data", PLAIN.values(), ids=PLAIN.keys())
def test_odd_data_is_stored_as_sent_and_runs_as_plain_data(cloud, data):
    k = unique("plain-")
    [event_id] = cloud.stepline.send({"name": "test/multi", "data": {"key": k, "x": 2, **data}})
    status, body = cloud.authed("GET", f"/v1/events/{event_id}")
    assert status == 200, body
    assert body["data"]["data"] == json.loads(json.dumps({"key": k, "x": 2, **data})), body
    [run] = cloud.stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed" and run["output"]["c"] == {"sum": 22}, run


ODD_NAMES = ["sec/a#b#c", "sec/'; DROP TABLE events;--", "sec/../../etc/passwd", "sec/a/b/c", "sec/é😀", "sec/nul\x00",
             "EVENT#x", "WAIT#test/approval.decided", "n" * MAX_NAME_BYTES]


@pytest.mark.parametrize("name", ODD_NAMES, ids=range(len(ODD_NAMES)))
def test_odd_names_and_ids_are_plain_keys(cloud, name):
    suffix = unique()
    event_id = f"{name[:400]}#{suffix}"
    status, body = http("POST", f"{cloud.url}/e/{EVENT_KEY}", [{"name": name, "id": event_id, "data": {"k": 1}}])
    assert status == 200, body
    [internal] = body["ids"]
    stored = [e for e in cloud.events_named(name) if e["internal_id"] == internal]
    assert [(e["name"], e["id"]) for e in stored] == [(name, event_id)]
    # The id is an idempotency key of its own: the same id again is the same event, and an id
    # that only shares the part before a separator is another one.
    again = http("POST", f"{cloud.url}/e/{EVENT_KEY}", [{"name": name, "id": event_id}])[1]["ids"]
    other = http("POST", f"{cloud.url}/e/{EVENT_KEY}", [{"name": name, "id": name[:400]}])[1]["ids"]
    assert again == [internal] and other != [internal]
    # Listing every event, odd ones included, still works.
    assert cloud.authed("GET", "/v1/events?limit=100")[0] == 200


# -- payloads refused, naming the field ----------------------------------------------------------


REFUSED = {
    "nan": (b'[{"name":"%s","data":{"x":NaN}}]', "NaN"),
    "infinity": (b'[{"name":"%s","data":{"x":-Infinity}}]', "Infinity"),
    "overflowing-float": (b'[{"name":"%s","data":{"x":1e400}}]', "out of range"),
    "overflowing-int": (b'[{"name":"%s","data":{"x":' + b"9" * 400 + b"}}]", "out of range"),
    "lone-surrogate-value": (b'[{"name":"%s","data":{"x":"\\ud800"}}]', "[1].data.x"),
    "lone-surrogate-key": (b'[{"name":"%s","data":{"\\udfff":1}}]', "lone surrogate"),
    "lone-surrogate-user": (b'[{"name":"%s","user":{"u":"a\\udc00"}}]', "[1].user.u"),
    "deeper-than-sdks-parse": (b'[{"name":"%s","data":' + json.dumps(deep(MAX_DEPTH + 1)).encode() + b"}]",
                               f"events[1].data: nested more than {MAX_DEPTH} levels deep"),
    "too-deep": (b'[{"name":"%s","data":' + b'{"d":' * 100_000 + b"1" + b"}" * 100_001 + b"]", "nested too deeply"),
    "long-name": (b'[{"name":"%s' + b"n" * MAX_NAME_BYTES + b'"}]', "events[1].name"),
    "long-id": (b'[{"name":"%s","id":"' + b"i" * (MAX_ID_BYTES + 1) + b'"}]', "events[1].id"),
    "far-future-ts": (b'[{"name":"%s","ts":' + str(MAX_TS_MS + 1).encode() + b"}]", "events[1].ts"),
    "huge-ts": (b'[{"name":"%s","ts":1e300}]', "events[1].ts"),
}


@pytest.mark.parametrize("template, fragment", REFUSED.values(), ids=REFUSED.keys())
def test_unstorable_payloads_are_400_naming_the_field(cloud, template, fragment):
    name = unique("sec/refused-")
    # The last event of the batch is the bad one. A body that is not JSON as a whole stores
    # nothing; otherwise the good event before the bad one is stored and its id returned beside
    # the error (as Inngest's Event API does). Never is the bad one stored.
    bad = template.replace(b"%s", name.encode(), 1)
    raw = b'[{"name":"' + name.encode() + b'"},' + bad[1:]
    status, body = http("POST", f"{cloud.url}/e/{EVENT_KEY}", raw=raw)
    assert status == 400, body
    assert body["status"] == 400 and fragment in body["error"], body
    stored = cloud.events_named(name)
    assert [e["internal_id"] for e in stored] == body["ids"], (body, stored)
    assert len(stored) == (0 if not body["error"].startswith("events[1]") else 1), (body, stored)
