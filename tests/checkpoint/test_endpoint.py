"""Contract of `POST /v1/checkpoint/{run_id}/async` on each adapter family (SQLite, and the AWS
adapters on moto), driven through the API resolver exactly as API Gateway and `stepline dev`
drive it: what is stored, what is refused, and what a stale call is told."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stepline.api.app import build_api
from stepline.dev.http_server import to_http_api_event
from stepline.engine.core import Engine
from stepline.engine.ports import RunStatus
from stepline.protocol.signing import hash_signing_key
from stepline.settings import Settings
from tests.contract.helpers import make_run

TOKEN = "01JLEASEOWNER0000000000001"
FN = "shop-fulfil"
SIGNING_KEY = "signkey-prod-" + "ab" * 32


def ts_step(step_id: str, data: Any, name: str = "s") -> dict[str, Any]:
    """A step as the TypeScript SDK 4.x puts it in a checkpoint: its internal fields included."""
    return {
        "id": step_id,
        "hashedId": step_id,
        "op": "StepRun",
        "name": name,
        "displayName": name,
        "opts": {},
        "userland": {"id": name},
        "mode": "sync",
        "rawArgs": [],
        "promise": {},
        "fulfilled": True,
        "hasStepState": True,
        "timing": {"a": 1, "b": 2},
        "data": data,
    }


def body_for(run_id: str, steps: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    body = {
        "run_id": run_id,
        "fn_id": FN,
        "qi_id": TOKEN,
        "request_id": "req-1",
        "generation_id": 0,
        "request_started_at": 1_700_000_000_000,
        "steps": steps,
        "ts": 1_700_000_000_001,
    }
    body.update(changes)
    return body


class Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.resolver = build_api(engine)

    def post(self, run_id: str, body: Any, *, raw: bytes | None = None, auth: str | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body).encode()
        headers = {"content-type": "application/json"}
        if auth:
            headers["authorization"] = auth
        event = to_http_api_event("POST", f"/v1/checkpoint/{run_id}/async", headers, data, "127.0.0.1")
        result = self.resolver.resolve(event, None)
        return int(result["statusCode"]), json.loads(result["body"])


@pytest.fixture
def api(backend, clock):
    return Api(Engine(backend, Settings(mode="dev"), clock=clock))


@pytest.fixture
def run(backend, clock):
    """A live run whose lease is held by the call that carries TOKEN."""
    run = make_run(clock, fn_id=FN)
    backend.store.create_run(run)
    assert backend.store.acquire_lease(run.run_id, TOKEN, clock.now_ms() + 60_000, clock.now_ms())
    return run


def memos(backend, run_id: str) -> dict[str, Any]:
    return backend.store.load_run(run_id).memo_map()


def test_each_step_becomes_a_memo(api, backend, run):
    code, body = api.post(run.run_id, body_for(run.run_id, [ts_step("h1", {"a": 1}), ts_step("h2", [1, 2], "two")]))
    assert (code, body) == (200, {"data": {"written": 2, "repeated": 0}})
    assert memos(backend, run.run_id) == {"h1": {"data": {"a": 1}}, "h2": {"data": [1, 2]}}
    stored = {m.step_id: m for m in backend.store.load_run(run.run_id).memos}
    assert stored["h2"].name == "two" and stored["h2"].detail["checkpointed"] is True
    assert backend.store.load_run(run.run_id).stack() == ["h1", "h2"]


def test_a_repeat_is_acknowledged_and_not_written_twice(api, backend, run):
    assert api.post(run.run_id, body_for(run.run_id, [ts_step("h1", "first")]))[0] == 200
    code, body = api.post(run.run_id, body_for(run.run_id, [ts_step("h1", "second"), ts_step("h2", "new")]))
    assert (code, body) == (200, {"data": {"written": 1, "repeated": 1}})
    assert memos(backend, run.run_id) == {"h1": {"data": "first"}, "h2": {"data": "new"}}


@pytest.mark.parametrize("why", ["another holder", "lease expired", "completed", "cancelled"])
def test_a_stale_call_is_told_409_and_nothing_is_written(api, backend, clock, run, why):
    token = TOKEN
    if why == "another holder":
        token = "01JSOMEONEELSE000000000000"
    elif why == "lease expired":
        clock.advance(61_000)
    else:
        status = RunStatus.COMPLETED if why == "completed" else RunStatus.CANCELLED
        assert backend.store.update_run(run.run_id, {"status": status})
    code, body = api.post(run.run_id, body_for(run.run_id, [ts_step("h1", 1)], qi_id=token))
    assert code == 409, body
    assert body["error"].startswith("stale call:")
    assert memos(backend, run.run_id) == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"qi_id": None}, "qi_id"),
        ({"qi_id": ""}, "qi_id"),
        ({"fn_id": 7}, "fn_id"),
        ({"steps": "h1"}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": [7]}, "steps[0]"),
        ({"steps": [{"op": "StepRun", "data": 1}]}, "steps[0].id"),
        ({"steps": [ts_step("h1", 1), {**ts_step("h2", None), "op": "Sleep", "name": "1s"}]}, "steps[1].op"),
        ({"run_id": "01JOTHERRUN000000000000000"}, "run_id"),
        ({"fn_id": "shop-other"}, "fn_id"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_field(api, backend, run, change, field):
    body = {**body_for(run.run_id, [ts_step("h1", 1)]), **change}
    if change.get("qi_id", "") is None:
        del body["qi_id"]
    code, reply = api.post(run.run_id, body)
    assert code == 400, reply
    assert reply["error"].startswith(f"{field}:"), reply
    assert memos(backend, run.run_id) == {}


def test_a_body_that_is_not_json_is_a_400(api, run):
    code, reply = api.post(run.run_id, None, raw=b"{not json")
    assert code == 400 and reply["error"].startswith("body:"), reply


def test_an_oversized_output_is_refused_and_nothing_is_written(api, backend, run):
    big = "x" * (4 * 1024 * 1024 + 1)
    code, reply = api.post(run.run_id, body_for(run.run_id, [ts_step("h1", "small"), ts_step("h2", big)]))
    assert code == 413, reply
    assert reply["error"].startswith("steps[1].data: step output is"), reply
    assert memos(backend, run.run_id) == {}


def test_an_unknown_run_is_a_404(api, clock):
    code, reply = api.post("01JNOSUCHRUN00000000000000", body_for("01JNOSUCHRUN00000000000000", [ts_step("h1", 1)]))
    assert code == 404, reply


def test_deployed_it_takes_the_signing_keys_bearer(backend, clock, run):
    api = Api(Engine(backend, Settings(mode="cloud", signing_key=SIGNING_KEY), clock=clock))
    body = body_for(run.run_id, [ts_step("h1", 1)])
    assert api.post(run.run_id, body)[0] == 401
    assert api.post(run.run_id, body, auth="Bearer signkey-prod-" + "00" * 32)[0] == 401
    code, reply = api.post(run.run_id, body, auth=f"Bearer signkey-prod-{hash_signing_key(SIGNING_KEY)}")
    assert code == 200, reply
    assert memos(backend, run.run_id) == {"h1": {"data": 1}}


def test_a_run_read_for_one_checkpoint_serves_the_next_for_half_a_second(api, backend, clock, run):
    """Each step costs its memo write alone: the run is read again only every RUN_RECHECK_MS,
    so a cancel reaches a call checkpointing through the API within that time."""
    from stepline.engine.checkpoint import RUN_RECHECK_MS

    assert api.post(run.run_id, body_for(run.run_id, [ts_step("h1", 1)]))[0] == 200
    assert backend.store.update_run(run.run_id, {"status": RunStatus.CANCELLED})
    clock.advance(RUN_RECHECK_MS - 1)
    assert api.post(run.run_id, body_for(run.run_id, [ts_step("h2", 2)]))[0] == 200
    clock.advance(1)
    code, reply = api.post(run.run_id, body_for(run.run_id, [ts_step("h3", 3)]))
    assert code == 409 and "has ended (Cancelled)" in reply["error"], reply
    assert set(memos(backend, run.run_id)) == {"h1", "h2"}
