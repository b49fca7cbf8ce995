"""Large payloads end to end with the official Python SDK, on SQLite and on the AWS adapters (moto,
where they go to S3): step outputs past the use_api threshold, a 2.5 MiB event, the 4 MiB step
output limit and the 3 MiB event limit; then the run-state limit and the call-request policy on
the engine alone."""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import pytest

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.engine.http import HttpResponse
from stepline.engine.payload_policy import MAX_RUN_STATE_BYTES, RUN_STATE_TOO_LARGE, call_body
from stepline.engine.records import AppRecord, FunctionRecord, Memo, Run, RunState, RunStatus
from stepline.local import local_backend
from stepline.protocol.calls import build_call_request
from stepline.protocol.errors import ProtocolError
from stepline.protocol.events import parse_event_batch
from stepline.protocol.jsoncanon import canonical_json
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.e2e.conftest import free_port, http, wait_for

MIB = 1024 * 1024
_V0 = re.compile(r'"GET /v0/runs/([0-9A-Z]+)/(batch|actions) HTTP/1\.1" (\d+)')


class AccessLog(logging.Handler):
    """The dev server's request log: which /v0 routes the SDK called, for which run."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def v0_calls(self, run_id: str) -> list[tuple[str, int]]:
        found = (_V0.search(line) for line in list(self.lines))
        return [(m.group(2), int(m.group(3))) for m in found if m and m.group(1) == run_id]


@pytest.fixture(scope="module")
def access_log():
    logger = logging.getLogger("stepline.dev.http_server")
    handler, level = AccessLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def key() -> str:
    return uuid.uuid4().hex[:12]


def big_part(i: int) -> str:
    """The app's own (tests/e2e/sdk_app.py): about 1 MiB that says which part it is."""
    return f"part-{i}:" + "x" * MIB


def finished(stepline, event: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    [event_id] = stepline.send(event)
    [run] = stepline.wait_runs_done(event_id, timeout_s=timeout_s)
    return run


# -- through the official SDK ---------------------------------------------------------------------


def test_steps_with_large_outputs_complete_through_use_api(stack, access_log):
    stepline, app = stack
    k = key()
    run = finished(stepline, {"name": "test/big-steps", "data": {"key": k, "parts": 3}})

    assert run["status"] == "Completed", run
    assert run["output"] == {"sizes": [MIB + 7] * 3, "intact": True, "events": 1}
    assert [app.count("big-steps", f"part-{i}", k) for i in range(3)] == [1, 1, 1]
    # Past the first 1 MiB memo every call said use_api, and the SDK fetched the state.
    calls = access_log.v0_calls(run["run_id"])
    assert calls.count(("actions", 200)) >= 3 and calls.count(("batch", 200)) >= 3, calls
    assert all(status == 200 for _, status in calls)


def test_small_runs_carry_their_state_in_the_request(stack, access_log):
    stepline, _ = stack
    run = finished(stepline, {"name": "test/multi", "data": {"key": key(), "x": 2}})
    assert run["output"]["c"] == {"sum": 22}
    assert access_log.v0_calls(run["run_id"]) == []


def test_a_large_event_reaches_the_function_whole(stack, access_log):
    stepline, _ = stack
    blob = "é" * 1_250_000  # 2.5 MB of UTF-8, sent unescaped (escaped it would pass 3 MiB)
    event = {"name": "test/big-event", "data": {"key": key(), "blob": blob}}
    code, body = http("POST", f"{stepline.url}/e/key", raw=json.dumps([event], ensure_ascii=False).encode())
    assert code == 200, body
    [run] = stepline.wait_runs_done(body["ids"][0], timeout_s=60)

    assert run["status"] == "Completed", run
    assert run["output"] == {"blob_len": len(blob), "events": 1, "batch_matches": [True]}
    # The Python SDK takes `event` from the body and the batch from /v0/runs/{id}/batch.
    assert ("batch", 200) in access_log.v0_calls(run["run_id"])


def test_a_batch_of_large_events_reaches_the_function_whole_up_to_10_mib(stack, access_log):
    stepline, _ = stack
    k = key()
    # Twelve events of about 1 MiB each (one request each: a request carries at most 3 MiB). As
    # on Inngest, a batch holds at most 10 MiB: nine of them make the first run, the rest the
    # next one, at the batch's timeout.
    ids = [stepline.send({"name": "test/big-batch", "data": {"key": k, "i": i, "blob": big_part(i)}})[0]
           for i in range(12)]
    [first] = stepline.wait_runs_done(ids[0], timeout_s=60)
    [second] = stepline.wait_runs_done(ids[-1], timeout_s=60)
    assert first["status"] == second["status"] == "Completed", (first, second)
    assert first["output"] == {"indices": list(range(9)), "intact": True}
    assert second["output"] == {"indices": [9, 10, 11], "intact": True}
    # The Python SDK fetched each batch from /v0/runs/{id}/batch, as use_api told it to.
    assert ("batch", 200) in access_log.v0_calls(first["run_id"])


def test_a_step_output_over_4_mib_fails_the_step_catchably(stack):
    stepline, app = stack
    k = key()
    run = finished(stepline, {"name": "test/big-output", "data": {"key": k}})

    assert run["status"] == "Completed", run
    caught = run["output"]["caught"]
    assert caught["name"] == "OutputTooLarge"
    assert "4194304" in caught["message"], caught
    assert run["output"]["after"] == "still running"
    assert app.count("big-output", "too-big", k) == 1  # not retried: the limit is final


def test_an_event_over_3_mib_is_refused_with_413(stack):
    stepline, _ = stack
    name = f"test/too-big-{key()}"
    event = {"name": name, "data": {"blob": "x" * (4 * MIB)}}
    code, body = http("POST", f"{stepline.url}/e/key", [event])
    assert code == 413 and body["status"] == 413, body
    assert "bytes exceeds" in body["error"]
    _, listing = http("GET", f"{stepline.url}/v1/events?name={name}")
    assert listing["data"] == []


def test_v0_routes_answer_in_the_shapes_the_sdks_parse(stack):
    stepline, _ = stack
    run = finished(stepline, {"name": "test/big-steps", "data": {"key": key(), "parts": 1}})

    code, batch = http("GET", f"{stepline.url}/v0/runs/{run['run_id']}/batch")
    assert code == 200 and isinstance(batch, list) and batch[0]["name"] == "test/big-steps"
    assert isinstance(batch[0]["id"], str) and isinstance(batch[0]["ts"], int)
    code, actions = http("GET", f"{stepline.url}/v0/runs/{run['run_id']}/actions")
    assert code == 200 and isinstance(actions, dict)
    [(step_id, memo)] = actions.items()
    assert re.fullmatch(r"[0-9a-f]{40}", step_id) and memo == {"data": "part-0:" + "x" * MIB}

    for route in ("batch", "actions"):
        code, body = http("GET", f"{stepline.url}/v0/runs/no-such-run/{route}")
        assert code == 404 and body == {"error": "run 'no-such-run' not found", "status": 404}


def test_v0_routes_require_the_signing_key_in_cloud_mode(tmp_path):
    signing_key = "signkey-test-0123456789"
    settings = Settings(mode="cloud", event_keys=["evt"], signing_key=signing_key)
    options = DevOptions(port=free_port(), db_path=str(tmp_path / "cloud.db"))
    with DevRuntime(options, settings) as runtime:
        for route in ("batch", "actions"):
            url = f"{runtime.url}/v0/runs/r-1/{route}"
            code, body = http("GET", url)
            assert code == 401 and body["status"] == 401, body
            code, body = http("GET", url, headers={"Authorization": "Bearer " + hash_signing_key(signing_key)})
            assert code == 404 and body["status"] == 404, body


# -- the engine alone -----------------------------------------------------------------------------


class ChunkySdk:
    """Answers call requests as an SDK would for a function whose every step returns ``size``
    bytes: the next step to run is the one after the last in ``ctx.stack``. Records each
    request's size and ``use_api`` flag."""

    def __init__(self, steps: int, size: int) -> None:
        self.steps, self.size = steps, size
        self.requests: list[tuple[int, bool]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        request = json.loads(body)
        self.requests.append((len(body), request["use_api"]))
        done = request["ctx"]["stack"]["current"]
        if done >= self.steps:
            return HttpResponse(200, json.dumps({"steps": done}).encode())
        op = {"op": "StepRun", "id": f"{done:040x}", "displayName": f"step-{done}", "data": "x" * self.size}
        return HttpResponse(206, json.dumps([op]).encode())


def test_a_run_past_32_mib_gets_run_state_too_large(tmp_path):
    clock = ManualClock()
    sdk = ChunkySdk(steps=9, size=4 * MIB - 1024)  # each under the 4 MiB step limit; 8 fit in 32 MiB
    with local_backend(str(tmp_path / "engine.db"), clock) as backend:
        engine = Engine(backend, Settings(), clock=clock, caller=sdk)
        fn = FunctionRecord(
            fn_id="app-chunky", app_id="app", name="chunky", url="http://app.invalid/api?fnId=app-chunky",
            config={"id": "app-chunky", "triggers": [{"event": "test/chunky"}]}, event_triggers=["test/chunky"],
        )
        backend.store.put_app(AppRecord(app_id="app", url="http://app.invalid/api", synced_at=1), [fn])
        [event_id] = engine.ingest.accept([{"name": "test/chunky", "data": {}}])
        for _ in range(5):
            for message in backend.queue.receive(10, 60):
                engine.executor.handle(message.body)
                backend.queue.ack(message.handle)
        [run] = backend.store.runs_for_event(event_id)
        state = backend.store.load_run(run.run_id)

    assert run.status is RunStatus.COMPLETED and run.output == {"steps": 9}
    values = [m.value for m in state.memos]
    assert all(v == {"data": "x" * (4 * MIB - 1024)} for v in values[:8])
    assert values[8]["error"]["name"] == RUN_STATE_TOO_LARGE
    assert str(MAX_RUN_STATE_BYTES) in values[8]["error"]["message"]
    # The first call carried the (empty) state; every later one was slim and said use_api.
    assert sdk.requests[0][1] is False
    assert all(use_api and size < 4096 for size, use_api in sdk.requests[1:]), sdk.requests


def _request_for(memos: list[Memo], event: dict[str, Any]) -> tuple[dict[str, Any], RunState]:
    run = Run(run_id="01RUN", fn_id="f", app_id="a", status=RunStatus.RUNNING, events=[event],
              event_ids=["01EVT"], created_at=1)
    state = RunState(run=run, memos=memos)
    request = build_call_request(
        run_id=run.run_id, attempt=0, max_attempts=4, events=run.events, steps=state.memo_map(),
        stack=state.stack(), disable_immediate=False, use_api=False, version=-1,
    )
    return request, state


def test_call_requests_go_slim_past_the_threshold():
    event = {"name": "app/go", "data": {"k": "v"}, "id": "01EVT", "ts": 1, "user": {}}
    small = [Memo(step_id=f"{i:040x}", value={"data": i}, seq=f"{i:04d}") for i in range(3)]
    request, state = _request_for(small, event)
    assert call_body(request, state, 4096) == canonical_json(request)

    large = small + [Memo(step_id="f" * 40, value={"data": "x" * 8192}, seq="0009")]
    request, state = _request_for(large, event)
    assert len(canonical_json(request)) > 8192
    slim = json.loads(call_body(request, state, 4096))
    assert slim["use_api"] is True and slim["ctx"]["use_api"] is True
    assert slim["steps"] == {} and slim["events"] == []
    # What the Python SDK still reads from the body: the event, and ctx with its stack object.
    assert slim["event"] == request["event"]
    assert slim["ctx"]["stack"] == {"current": 4, "stack": state.stack()}
    assert slim["ctx"]["run_id"] == "01RUN" and slim["version"] == -1
    assert call_body(request, state, 4096) == canonical_json(slim)


def test_one_event_over_3_mib_is_named_by_its_index():
    body = json.dumps([{"name": "a/ok"}, {"name": "a/big", "data": {"blob": "x" * (3 * MIB)}}]).encode()
    with pytest.raises(ProtocolError) as err:
        parse_event_batch(body, max_bytes=8 * MIB)
    assert err.value.status == 413 and err.value.message.startswith("events[1]: ")
    # Under the per-event limit, the same batch is fine.
    assert len(parse_event_batch(body, max_bytes=8 * MIB, max_event_bytes=4 * MIB)) == 2
