"""The REST API an operator reads runs through, against a live `stepline dev` and an app on the
official SDK: a run's steps (kinds, timings, attempts, inputs, outputs, errors), runs listed
across functions, replay and rerun from a step."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.e2e.conftest import http
from tests.operating.harness import key

PIPELINE = ["load-order", "check-stock", "check-fraud", "cool-down", "charge", "wait-receipt"]


def t(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(scope="module")
def runs(ops):
    """Runs started once for the whole module, so their waits overlap."""
    k = key()
    pipeline = ops.run_of(ops.send("ops/order.placed", {"key": k}))["run_id"]
    slow = ops.run_of(ops.send("ops/slow", {"key": k}))["run_id"]
    steps = ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"]
    failed = ops.run_of(ops.send("ops/steps", {"key": f"{k}-f", "fail_at": "two"}))["run_id"]
    return {"key": k, "pipeline": pipeline, "slow": slow, "steps": steps, "failed": failed}


def test_a_run_shows_each_step_with_kind_timing_attempts_and_result(ops, runs):
    run = ops.wait_done(runs["pipeline"])
    assert run["status"] == "Completed", run
    steps = {s["name"]: s for s in run["steps"]}
    names = [s["name"] for s in run["steps"]]
    assert sorted(names) == sorted(PIPELINE)
    # Stack order: the parallel branches (either order) after load-order, then the rest.
    assert names[0] == "load-order" and set(names[1:3]) == {"check-stock", "check-fraud"}
    assert names[3:] == ["cool-down", "charge", "wait-receipt"]

    assert [steps[n]["kind"] for n in PIPELINE] == ["run", "run", "run", "sleep", "run", "wait"]
    assert all(s["status"] == "Completed" and len(s["step_id"]) == 40 for s in run["steps"])
    assert steps["load-order"]["output"] == {"id": runs["key"]}
    assert steps["check-stock"]["output"] == "in stock"
    # Parallel branches were planned (queued) and each ran under its own call.
    assert steps["check-stock"]["queued_at"] and steps["check-fraud"]["queued_at"]
    assert steps["load-order"]["queued_at"] is None
    # The flaky step: the first attempt failed, the second succeeded.
    assert steps["charge"]["attempts"] == 2 and steps["charge"]["output"] == {"charged": 2400}
    assert steps["load-order"]["attempts"] == 1
    # The sleep: what it was given, and it lasted about that long.
    nap = steps["cool-down"]
    assert nap["op"] == "Sleep" and nap["attempts"] is None
    # The SDK asks for a wake time 1 s after its own clock; the op is recorded a moment later.
    assert 0.5 < t(nap["input"]["wake_at"]) - t(nap["started_at"]) <= 1.01
    assert nap["duration_ms"] >= 900
    # The wait: which event, until when, and that it timed out.
    wait = steps["wait-receipt"]
    assert wait["input"]["event"] == "ops/receipt.sent" and wait["input"]["expires_at"]
    assert wait["timed_out"] is True and wait["output"] is None
    # Timings are ordered within each step and along the stack.
    for step in run["steps"]:
        assert t(step["started_at"]) <= t(step["ended_at"]), step
        assert step["duration_ms"] == round((t(step["ended_at"]) - t(step["started_at"])) * 1000)
    assert t(steps["load-order"]["ended_at"]) <= t(nap["started_at"]) <= t(steps["charge"]["started_at"])
    assert t(run["run_started_at"]) <= t(steps["load-order"]["started_at"])
    assert t(wait["ended_at"]) <= t(run["ended_at"])
    # The trigger comes with the run, and /jobs is the same step list.
    assert run["events"][0]["name"] == "ops/order.placed" and run["events"][0]["data"] == {"key": runs["key"]}
    assert ops.get(f"/v1/runs/{runs['pipeline']}/jobs")["data"] == run["steps"]


def test_a_failed_step_shows_its_error(ops, runs):
    run = ops.wait_done(runs["failed"])
    assert run["status"] == "Failed"
    steps = {s["name"]: s for s in run["steps"]}
    assert steps["one"]["status"] == "Completed"
    assert steps["two"]["status"] == "Failed" and "output" not in steps["two"]
    assert "two refused" in steps["two"]["error"]["message"]
    assert "three" not in steps


def test_a_waiting_step_shows_what_it_waits_for_until_the_run_is_cancelled(ops, runs):
    nap = ops.wait_step(runs["slow"], "long-nap", "Sleeping")
    assert nap["kind"] == "sleep" and nap["ended_at"] is None and nap["duration_ms"] is None
    assert t(nap["input"]["wake_at"]) - t(nap["started_at"]) == pytest.approx(3600, abs=5)
    assert ops.run(runs["slow"])["status"] == "Running"

    status, body = http("DELETE", f"{ops.url}/v1/runs/{runs['slow']}")
    assert status == 200 and body["data"]["status"] == "Cancelled"
    run = ops.run(runs["slow"])
    assert [(s["name"], s["status"]) for s in run["steps"]] == [("begin", "Completed"), ("long-nap", "Cancelled")]


def test_runs_are_listed_newest_first_across_functions(ops, runs):
    for name in ("steps", "failed"):
        ops.wait_done(runs[name])
    listed = ops.get("/v1/runs?limit=100")["data"]
    ids = [r["run_id"] for r in listed]
    for name in ("pipeline", "slow", "steps", "failed"):
        assert runs[name] in ids
    assert {r["function_id"] for r in listed} >= {"ops-app-pipeline", "ops-app-slow", "ops-app-steps"}
    created = [(r["created_at"], r["run_id"]) for r in listed]
    assert created == sorted(created, reverse=True)
    by_id = {r["run_id"]: r for r in listed}
    assert by_id[runs["steps"]]["event_name"] == "ops/steps"

    only = ops.get("/v1/runs?function_id=ops-app-steps&limit=100")["data"]
    assert {r["function_id"] for r in only} == {"ops-app-steps"}
    assert {runs["steps"], runs["failed"]} <= {r["run_id"] for r in only}
    failed = ops.get("/v1/runs?status=Failed&limit=100")["data"]
    assert runs["failed"] in {r["run_id"] for r in failed} and {r["status"] for r in failed} == {"Failed"}
    both = ops.get("/v1/runs?status=Failed,Cancelled&function_id=ops-app-steps,ops-app-slow&limit=100")["data"]
    assert {r["status"] for r in both} <= {"Failed", "Cancelled"} and runs["failed"] in {r["run_id"] for r in both}
    by_app = ops.get("/v1/runs?app_id=ops-app&limit=100")["data"]
    assert [r["run_id"] for r in by_app] == ids


def test_runs_listing_pages_with_a_cursor_and_a_time_window(ops, runs):
    ops.wait_done(runs["steps"])
    everything = [r["run_id"] for r in ops.get("/v1/runs?limit=100")["data"]]
    assert len(everything) >= 4
    walked, cursor = [], None
    while True:
        page = ops.get("/v1/runs?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert len(page["data"]) <= 2
        walked += [r["run_id"] for r in page["data"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert walked[: len(everything)] == everything
    assert len(walked) == len(set(walked))

    steps_run = ops.run(runs["steps"])
    created_ms = int(t(steps_run["created_at"]) * 1000)
    window = ops.get(f"/v1/runs?created_after={created_ms - 1}&created_before={created_ms + 1}&limit=100")["data"]
    assert runs["steps"] in [r["run_id"] for r in window]
    assert all(abs(t(r["created_at"]) * 1000 - created_ms) <= 1 for r in window)
    assert ops.get(f"/v1/runs?created_after={created_ms + 60_000}")["data"] == []


@pytest.mark.parametrize("query, field", [
    ("status=Paused", "status"), ("limit=0", "limit"), ("limit=abc", "limit"),
    ("cursor=not-a-cursor", "cursor"), ("created_after=yesterday", "created_after"),
])
def test_bad_listing_parameters_are_named(ops, query, field):
    status, body = http("GET", f"{ops.url}/v1/runs?{query}")
    assert status == 400 and body["error"].startswith(f"{field}:"), body


def test_replay_starts_a_new_run_from_the_trigger_on_the_current_code(ops, runs):
    original = ops.wait_done(runs["steps"])
    status, body = http("POST", f"{ops.url}/v1/runs/{runs['steps']}/replay")
    assert status == 200, body
    replay = body["data"]
    assert replay["run_id"] != original["run_id"]
    assert replay["origin"] == {"kind": "replay", "run_id": original["run_id"]}
    assert replay["event_ids"] == original["event_ids"] and replay["function_id"] == "ops-app-steps"
    done = ops.wait_done(replay["run_id"])
    assert done["status"] == "Completed" and done["output"] == original["output"] == {"sum": 6}
    assert done["events"] == original["events"]
    assert not any(s.get("copied_from") for s in done["steps"])
    # Every step ran again; the original is untouched; the event lists both runs.
    assert [ops.app.count("steps", s, runs["key"]) for s in ("one", "two", "three")] == [2, 2, 2]
    assert ops.run(runs["steps"])["steps"] == original["steps"]
    event_runs = {r["run_id"]: r for r in ops.get(f"/v1/events/{original['event_id']}/runs")["data"]}
    assert set(event_runs) == {original["run_id"], replay["run_id"]}
    assert event_runs[replay["run_id"]]["origin"]["kind"] == "replay"


def test_rerun_from_a_step_keeps_the_results_before_it(ops):
    k = key()
    original = ops.wait_done(ops.run_of(ops.send("ops/steps", {"key": k}))["run_id"])
    two = next(s for s in original["steps"] if s["name"] == "two")
    status, body = http("POST", f"{ops.url}/v1/runs/{original['run_id']}/rerun", {"step_id": two["step_id"]})
    assert status == 200, body
    rerun = body["data"]
    assert rerun["origin"] == {"kind": "rerun", "run_id": original["run_id"], "step_id": two["step_id"], "step_name": "two"}
    done = ops.wait_done(rerun["run_id"])
    assert done["status"] == "Completed" and done["output"] == {"sum": 6}
    # Step one was memoized (not run again); two and three ran again.
    assert [ops.app.count("steps", s, k) for s in ("one", "two", "three")] == [1, 2, 2]
    steps = {s["name"]: s for s in done["steps"]}
    assert [s["name"] for s in done["steps"]] == ["one", "two", "three"]
    assert steps["one"]["copied_from"] == original["run_id"]
    assert steps["one"]["ended_at"] == next(s for s in original["steps"] if s["name"] == "one")["ended_at"]
    assert "copied_from" not in steps["two"] and "copied_from" not in steps["three"]


@pytest.mark.parametrize("run, body, status, field", [
    ("missing", {"step_id": "x"}, 404, "run"),
    ("steps", {}, 400, "step_id"),
    ("steps", {"step_id": "not-a-step"}, 400, "step_id"),
])
def test_rerun_refusals_say_why(ops, runs, run, body, status, field):
    run_id = runs.get(run, "01J0000000000000000000000X")
    code, reply = http("POST", f"{ops.url}/v1/runs/{run_id}/rerun", body)
    assert code == status and field in reply["error"], reply


def test_replay_of_an_unknown_run_is_404(ops):
    code, reply = http("POST", f"{ops.url}/v1/runs/01J0000000000000000000000X/replay")
    assert code == 404 and "not found" in reply["error"]


def test_send_an_event_with_the_rest_api(ops):
    k = key()
    code, reply = http("POST", f"{ops.url}/v1/events", [{"name": "ops/steps", "data": {"key": k}}])
    assert code == 200 and reply["status"] == 200 and len(reply["ids"]) == 1
    run = ops.wait_done(ops.run_of(reply["ids"][0])["run_id"])
    assert run["status"] == "Completed"
    code, reply = http("POST", f"{ops.url}/v1/events", {"data": {}})
    assert code == 400 and "name" in reply["error"]


def test_events_list_and_their_runs(ops, runs):
    ops.wait_done(runs["steps"])
    events = ops.get("/v1/events?name=ops/steps&limit=100")["data"]
    mine = [e for e in events if e["data"].get("key") == runs["key"]]
    assert len(mine) == 1
    assert runs["steps"] in [r["run_id"] for r in ops.get(f"/v1/events/{mine[0]['internal_id']}/runs")["data"]]


def test_run_not_found(ops):
    for path in ("/v1/runs/nope", "/v1/runs/nope/jobs"):
        code, body = http("GET", f"{ops.url}{path}")
        assert code == 404 and body["status"] == 404


def test_runs_of_an_unknown_event_are_a_404_like_the_event(ops, runs):
    unknown = "01J0000000000000000000000X"
    for path in (f"/v1/events/{unknown}", f"/v1/events/{unknown}/runs"):
        code, body = http("GET", f"{ops.url}{path}")
        assert code == 404 and body == {"error": f"event {unknown!r} not found", "status": 404}, (path, body)
    # An event that started nothing is still a 200 with no runs.
    code, reply = http("POST", f"{ops.url}/v1/events", {"name": "ops/nobody-listens", "data": {}})
    assert code == 200
    assert ops.get(f"/v1/events/{reply['ids'][0]}/runs")["data"] == []


def test_a_retried_step_shows_each_failed_attempt_with_its_error_and_duration(ops, runs):
    run = ops.wait_done(runs["pipeline"])
    steps = {s["name"]: s for s in run["steps"]}
    charge = steps["charge"]
    [failed] = charge["failed_attempts"]  # the first attempt failed, the second settled it
    assert failed["attempt"] == 1 and charge["attempts"] == 2
    assert failed["error"]["name"] == "RuntimeError" and "card network timeout" in failed["error"]["message"]
    assert failed["duration_ms"] == round((t(failed["ended_at"]) - t(failed["started_at"])) * 1000)
    # Before the attempt that succeeded, on the run's clock.
    assert t(run["run_started_at"]) <= t(failed["started_at"]) <= t(failed["ended_at"]) <= t(charge["started_at"])
    assert all("failed_attempts" not in s for name, s in steps.items() if name != "charge")
