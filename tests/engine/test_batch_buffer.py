"""A batch buffer on both backends holds its events by reference, not whole: adding an event
rewrites a few dozen bytes per event held rather than every event of the batch again, and the
run still receives every event whole, in order."""

from __future__ import annotations

import json

from stepline.engine.core import Engine
from stepline.engine.flow.batching import MAX_BATCH_BYTES
from stepline.engine.flow.keys import rule_key
from stepline.settings import Settings
from tests.engine.scripted_app import ScriptedApp, pump, register

BIG = "x" * 20_000  # each event's data: a whole-event buffer would grow by this per event


def test_a_batch_buffer_holds_references_and_the_run_gets_whole_events(backend, clock):
    app = ScriptedApp({"go": [("run", "a")]})
    engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=app)
    register(engine, ["go"], {"go": {"batchEvents": {"maxSize": 5, "timeout": "1h"}}})
    ids = []
    for i in range(4):
        ids += engine.ingest.accept([{"name": "app/go", "data": {"i": i, "big": BIG}}])
    state = backend.store.get_flow_state(rule_key("batch", "go", None, {}), clock.now_ms())
    held = json.dumps(state.data)
    assert len(held) < 1_000 < 4 * len(BIG)  # four events held in well under one of them
    assert [e["internal_id"] for e in state.data["events"]] == ids

    ids += engine.ingest.accept([{"name": "app/go", "data": {"i": 4, "big": BIG}}])  # fills it
    pump(backend, engine, clock)
    [run] = backend.store.runs_for_event(ids[0])
    assert [e["data"]["i"] for e in run.events] == [0, 1, 2, 3, 4]
    assert all(e["data"]["big"] == BIG for e in run.events)
    assert app.executed["a"] == 1
    assert 5 * len(BIG) < MAX_BATCH_BYTES  # the batch ran because it was full, not too big

