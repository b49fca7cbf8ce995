"""JSON values round-trip exactly through every field that holds one: ints stay ints, floats stay
floats, unicode and nesting survive."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.engine.records import RunStatus

from .helpers import make_app, make_event, make_function, make_memo, make_pending, make_run, take

SAMPLE: dict[str, Any] = {
    "text": "héllo wörld ✓ 日本語 🚀 𝄞",
    "escapes": 'quote" backslash\\ newline\n tab\t nul\u0000 bell\u0007',
    "ints": [0, 1, -1, 2**31, 2**53 - 1, -(2**53 - 1), 10**15],
    "floats": [0.1, -2.5, 1e-7, 1.5e300, 1.0, -0.0],
    "bools": [True, False],
    "none": None,
    "empty": {"list": [], "dict": {}, "str": ""},
    "nested": {"a": {"b": {"c": [1, [2, [3, {"d": "e"}]]]}}},
    "keys": {"1": "numeric key", "01": "leading zero", "": "empty key", "ключ": "unicode key"},
}


def assert_same_json(got: Any, want: Any) -> None:
    """Equal, and of the same JSON type at every level (so 1 == 1.0 == True does not pass)."""
    assert type(got) is type(want), (got, want)
    if isinstance(want, dict):
        assert sorted(got) == sorted(want)
        for key in want:
            assert_same_json(got[key], want[key])
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same_json(g, w)
    else:
        assert got == want


def test_event_data_and_user(backend, clock):
    event = make_event(clock, data=SAMPLE)
    event.user = {"profile": SAMPLE["nested"], "id": 2**53 - 1}
    event.v = "2024-01-01.1"
    backend.store.save_events([event], clock.now_ms())

    got = backend.store.get_event(event.internal_id)
    assert_same_json(got.data, SAMPLE)
    assert_same_json(got.user, event.user)
    assert got.v == "2024-01-01.1" and got.ts == event.ts
    (listed,), _ = backend.store.list_events(limit=1)
    assert_same_json(listed.data, SAMPLE)


def test_function_config(backend):
    fn = make_function("shop-json", ["shop/json"])
    fn.config["meta"] = SAMPLE
    backend.store.put_app(make_app("shop"), [fn])

    assert_same_json(backend.store.get_function("shop-json").config, fn.config)
    assert_same_json(backend.store.functions_for_event("shop/json")[0].config, fn.config)


@pytest.mark.parametrize("output", [SAMPLE, "just a string", 42, 2.5, [1, "two", None], None, True])
def test_run_output(backend, clock, output):
    run = make_run(clock)
    run.events[0]["data"] = SAMPLE
    backend.store.create_run(run)
    backend.store.update_run(run.run_id, {"output": output, "status": RunStatus.COMPLETED})

    got = backend.store.load_run(run.run_id).run
    assert_same_json(got.output, output)
    assert_same_json(got.events, run.events)


def test_run_error(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    error = {"name": "NonRetriableError", "message": "ünïcode 💥", "stack": "line 1\nline 2", "data": SAMPLE}
    backend.store.update_run(run.run_id, {"error": error})
    assert_same_json(backend.store.get_run(run.run_id).error, error)


def test_memo_and_pending_values(backend, clock):
    run = make_run(clock)
    backend.store.create_run(run)
    backend.store.commit_memo(run.run_id, make_memo("s1", SAMPLE, "0001"))
    backend.store.commit_memo(run.run_id, make_memo("s2", 2**53 - 1, "0002"))
    backend.store.commit_memo(run.run_id, make_memo("s3", 1.0, "0003"))
    backend.store.add_pending(run.run_id, make_pending("w1", "WaitForEvent", payload=SAMPLE))

    state = backend.store.load_run(run.run_id)
    assert_same_json(state.memo_map(), {"s1": {"data": SAMPLE}, "s2": {"data": 2**53 - 1}, "s3": {"data": 1.0}})
    assert_same_json(state.pending["w1"].detail, {"payload": SAMPLE})


def test_queue_and_timer_bodies(backend, clock):
    backend.queue.send({"sample": SAMPLE})
    assert_same_json(take(backend.queue), [{"sample": SAMPLE}])

    backend.timers.schedule("json-timer", clock.now_ms() + 1000, {"sample": SAMPLE})
    clock.advance(1000)
    backend.timers.fire_due(clock.now_ms())
    assert_same_json(take(backend.queue), [{"sample": SAMPLE}])
