"""The same operator views on the AWS adapters (moto): step details written by the executor and
by resumed ops, a rerun's copied memos and origin, and runs listed across functions."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import http
from tests.operating.harness import key, start_ops, stop_ops


@pytest.fixture(scope="module")
def ops_moto(tmp_path_factory):
    stack = start_ops(tmp_path_factory.mktemp("ops-moto"), backend="moto")
    try:
        yield stack
    finally:
        stop_ops(stack)


def test_run_detail_rerun_and_listing_on_the_aws_adapters(ops_moto):
    ops = ops_moto
    k = key()
    pipeline = ops.run_of(ops.send("ops/order.placed", {"key": k}))["run_id"]
    steps_run = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"])

    run = ops.wait_done(pipeline)
    assert run["status"] == "Completed", run
    steps = {s["name"]: s for s in run["steps"]}
    assert {n: s["kind"] for n, s in steps.items()} == {
        "load-order": "run", "check-stock": "run", "check-fraud": "run",
        "cool-down": "sleep", "charge": "run", "wait-receipt": "wait",
    }
    assert steps["charge"]["attempts"] == 2
    assert steps["check-fraud"]["queued_at"] is not None
    assert steps["cool-down"]["input"]["wake_at"] and steps["cool-down"]["started_at"]
    assert steps["wait-receipt"]["input"]["event"] == "ops/receipt.sent" and steps["wait-receipt"]["timed_out"]

    three = next(s for s in steps_run["steps"] if s["name"] == "three")
    code, body = http("POST", f"{ops.url}/v1/runs/{steps_run['run_id']}/rerun", {"step_id": three["step_id"]})
    assert code == 200, body
    rerun = ops.wait_done(body["data"]["run_id"])
    assert rerun["status"] == "Completed" and rerun["origin"]["step_name"] == "three"
    assert [s.get("copied_from") for s in rerun["steps"]] == [steps_run["run_id"], steps_run["run_id"], None]
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [1, 1, 2]

    listed = [r["run_id"] for r in ops.get("/v1/runs?limit=100")["data"]]
    assert listed[:1] == [rerun["run_id"]] and {pipeline, steps_run["run_id"]} <= set(listed)
