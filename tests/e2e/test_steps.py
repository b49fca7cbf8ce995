"""Every step kind and lifecycle rule with the official Python SDK, on SQLite and on the AWS
adapters (moto): wait_for_event, send_event, invoke, parallel steps, step errors, Retry-After,
on_failure, cancel_on, REST and bulk cancellation, timeouts and lifecycle events."""

from __future__ import annotations

import threading
import time
import uuid

from tests.e2e.conftest import http, wait_for


def key() -> str:
    return uuid.uuid4().hex[:12]


def run_of(stepline, event_id: str) -> dict:
    return wait_for(lambda: (stepline.runs(event_id) or [None])[0], what=f"a run of event {event_id}")


def wait_status(stepline, event_id: str, statuses: tuple[str, ...], timeout_s: float = 30) -> dict:
    def check():
        runs = stepline.runs(event_id)
        return runs and runs[0]["status"] in statuses and runs[0]

    return wait_for(check, timeout_s, what=f"run of {event_id} to reach {statuses}")


def waiting(stepline, run_id: str, step_name: str) -> bool:
    state = stepline.runtime.backend.store.load_run(run_id)
    return state is not None and any(op.name == step_name for op in state.pending.values())


def test_wait_for_event_resumes_with_the_matching_event(stack):
    stepline, app = stack
    k = key()
    [requested] = stepline.send({"name": "test/approval.requested", "data": {"key": k}})
    run = run_of(stepline, requested)
    wait_for(lambda: waiting(stepline, run["run_id"], "wait-decision"), what="the run to wait")
    # An event for another key does not match the `if` expression.
    stepline.send({"name": "test/approval.decided", "data": {"key": "someone-else", "decision": "no"}})
    time.sleep(0.3)
    assert stepline.runs(requested)[0]["status"] == "Running"
    stepline.send({"name": "test/approval.decided", "data": {"key": k, "decision": "yes"}})
    [done] = stepline.wait_runs_done(requested)
    assert done["status"] == "Completed" and done["output"] == {"decision": "yes"}
    assert app.count("approval", "ask", k) == 1


def test_wait_for_event_times_out_with_null(stack):
    stepline, app = stack
    k = key()
    started = time.monotonic()
    [requested] = stepline.send({"name": "test/approval.requested", "data": {"key": k, "timeout_s": 2}})
    [done] = stepline.wait_runs_done(requested)
    assert done["output"] == {"decision": None}
    assert time.monotonic() - started >= 1.9


def test_racing_events_resume_a_waiter_once(stack):
    stepline, app = stack
    k = key()
    [requested] = stepline.send({"name": "test/approval.requested", "data": {"key": k}})
    run = run_of(stepline, requested)
    wait_for(lambda: waiting(stepline, run["run_id"], "wait-decision"), what="the run to wait")
    decisions = [f"d{i}" for i in range(6)]
    threads = [
        threading.Thread(target=stepline.send, args=({"name": "test/approval.decided", "data": {"key": k, "decision": d}},))
        for d in decisions
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    [done] = stepline.wait_runs_done(requested)
    assert done["status"] == "Completed"
    assert done["output"]["decision"] in decisions
    assert app.count("approval", "ask", k) == 1


def test_send_event_from_a_step_goes_through_ingest(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/sender", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    [sent_id] = done["output"]["ids"]
    [followup] = stepline.wait_runs_done(sent_id)
    assert followup["function_id"] == "e2e-app-multi-step" and followup["output"]["b"] == 50
    assert app.count("multi-step", "a", f"{k}-sent") == 1


def test_invoke_returns_the_child_output(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/parent", "data": {"key": k, "value": 21}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["output"] == {"child": {"child_got": 21, "double": 42}}


def test_invoke_feeds_the_child_error_back(stack):
    stepline, app = stack
    [event_id] = stepline.send({"name": "test/parent", "data": {"key": key(), "explode": True}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed"
    assert "child exploded" in done["output"]["child_error"]


def test_invoke_timeout_fails_the_step(stack):
    stepline, app = stack
    [event_id] = stepline.send({"name": "test/parent", "data": {"key": key(), "linger_s": 30, "timeout_s": 2}})
    [done] = stepline.wait_runs_done(event_id, timeout_s=20)
    assert done["status"] == "Completed"
    # The error Inngest gives the caller, by name and message: the SDKs' users match on both.
    assert done["output"]["child_error_name"] == "InngestInvokeTimeoutError"
    assert done["output"]["child_error"] == "Timed out waiting for invoked function to complete"


def test_parallel_steps_run_concurrently_and_join_once(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/parallel", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["output"]["joined"] == ["p1", "p2", "p3"]
    for branch in ("p1", "p2", "p3", "join"):
        assert app.count("parallel", branch, k) == 1, branch
    # The three one-second branches ran side by side, not one after another.
    assert app.count("parallel", "max-active", k) >= 2


def test_a_parallel_group_joins_in_one_discovery_and_the_next_step_runs_inside_it(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/mixed-group", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed", done
    assert done["output"] == {"group": ["done", 1, 2, 1]}
    assert [app.count("mixed-group", s, k) for s in ("1a", "1b", "after")] == [1, 1, 1]
    # The Python SDK's own count for this case: discovery, three targeted calls (1a, 1b, send),
    # one discovery once the invoke returns, in which `after` runs at once, and the last one.
    assert app.count("mixed-group", "calls", k) == 6


def test_chains_inside_parallel_branches_advance_in_waves(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/chains", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["output"] == [["a.1", "a.2"], ["b.1", "b.2"]]
    order = http("GET", f"http://127.0.0.1:{app.port}/order/{k}")[1]
    # Both first steps, then one join, which plans both second steps (a.1, b.1, a.2, b.2).
    assert len(order) == 4 and set(order[:2]) == {"a.1", "b.1"} and set(order[2:]) == {"a.2", "b.2"}, order


def test_step_error_is_memoized_after_retries_and_catchable(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/careful", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed"
    assert "step went boom" in done["output"]["caught"]
    assert app.count("careful", "breaks", k) == 2  # retries=1: two attempts, then StepFailed


def test_uncaught_step_error_fails_the_run_and_runs_on_failure(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/careful", "data": {"key": k, "rethrow": True}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Failed"
    wait_for(lambda: app.count("careful-failure", "handler", k) == 1, what="the on_failure handler")
    failures = http("GET", f"http://127.0.0.1:{app.port}/failures")[1]
    assert "step went boom" in failures[k]["message"]
    # data.error in Inngest's shape: exactly these four keys, `error` summing up the app's answer
    # (an uncaught step error is a 500 from the Python SDK).
    assert set(failures[k]) == {"error", "message", "name", "stack"}
    assert failures[k]["error"] == "invalid status code: 500"
    assert isinstance(failures[k]["stack"], str)
    _, failed_events = http("GET", f"{stepline.url}/v1/events?name=inngest/function.failed&limit=100")
    assert any(e["data"]["run_id"] == done["run_id"] and e["id"] == done["run_id"] for e in failed_events["data"])


def test_retry_after_is_honoured(stack):
    stepline, app = stack
    k = key()
    started = time.monotonic()
    [event_id] = stepline.send({"name": "test/patient", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["output"] == "attempt 2"
    assert time.monotonic() - started >= 1.9


def test_cancel_on_event_cancels_a_sleeping_run(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/cancellable", "data": {"key": k}})
    run = run_of(stepline, event_id)
    wait_for(lambda: waiting(stepline, run["run_id"], "long-nap"), what="the run to sleep")
    stepline.send({"name": "test/cancel", "data": {"key": "not-this-one"}})
    time.sleep(0.3)
    assert stepline.runs(event_id)[0]["status"] == "Running"
    stepline.send({"name": "test/cancel", "data": {"key": k}})
    done = wait_status(stepline, event_id, ("Cancelled",))
    assert done["ended_at"]
    assert app.count("cancellable", "after", k) == 0
    _, cancelled = http("GET", f"{stepline.url}/v1/events?name=inngest/function.cancelled&limit=100")
    assert any(e["id"] == run["run_id"] for e in cancelled["data"])


def test_rest_cancel_stops_a_sleeping_run(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/cancellable", "data": {"key": k}})
    run = run_of(stepline, event_id)
    wait_for(lambda: waiting(stepline, run["run_id"], "long-nap"), what="the run to sleep")
    status, body = http("DELETE", f"{stepline.url}/v1/runs/{run['run_id']}")
    assert status == 200 and body["data"]["status"] == "Cancelled"
    status, again = http("DELETE", f"{stepline.url}/v1/runs/{run['run_id']}")
    assert status == 200 and again["data"]["status"] == "Cancelled"


def test_bulk_cancellation_by_function_window_and_expression(stack):
    stepline, app = stack
    keep, drop = key(), key()
    ids = stepline.send(
        {"name": "test/cancellable", "data": {"key": keep}},
        {"name": "test/cancellable", "data": {"key": drop}},
        {"name": "test/cancellable", "data": {"key": drop}},
    )
    runs = [run_of(stepline, i) for i in ids]
    for r in runs:
        wait_for(lambda r=r: waiting(stepline, r["run_id"], "long-nap"), what="runs to sleep")
    status, body = http(
        "POST",
        f"{stepline.url}/v1/cancellations",
        {"function_id": "e2e-app-cancellable", "if": f"event.data.key == '{drop}'"},
    )
    assert status == 200, body
    assert body["cancelled"] == 2
    assert stepline.runs(ids[0])[0]["status"] == "Running"
    assert [stepline.runs(i)[0]["status"] for i in ids[1:]] == ["Cancelled", "Cancelled"]
    http("DELETE", f"{stepline.url}/v1/runs/{runs[0]['run_id']}")


def test_bulk_cancellation_refuses_bad_requests(stack):
    stepline, _ = stack
    assert http("POST", f"{stepline.url}/v1/cancellations", {})[0] == 400
    assert http("POST", f"{stepline.url}/v1/cancellations", {"function_id": "nope"})[0] == 404
    status, body = http("POST", f"{stepline.url}/v1/cancellations", {"function_id": "e2e-app-cancellable", "if": "event.data.x =="})
    assert status == 400 and "if" in body["error"]


def test_timeouts_finish_cancels_a_run_that_takes_too_long(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/deadline", "data": {"key": k}})
    done = wait_status(stepline, event_id, ("Cancelled",), timeout_s=15)
    assert "timeouts.finish" in done["error"]["message"]


def test_finished_runs_emit_function_finished(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/multi", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)

    def finished_event():
        _, listing = http("GET", f"{stepline.url}/v1/events?name=inngest/function.finished&limit=100")
        return next((e for e in listing["data"] if e["data"]["run_id"] == done["run_id"]), None)

    event = wait_for(finished_event, what="the function.finished event")
    assert event["data"]["result"] == done["output"]
    assert event["data"]["function_id"] == "e2e-app-multi-step"


def test_invoke_reaches_a_function_in_another_app(stack):
    from pathlib import Path

    from tests.e2e.conftest import SdkApp

    stepline, _ = stack
    other = SdkApp(stepline.url, script=Path(__file__).parent / "other_app.py")
    try:
        assert http("PUT", other.url)[0] == 200
        wait_for(lambda: stepline.runtime.backend.store.get_function("other-app-remote-double"), what="the other app to sync")
        [event_id] = stepline.send({"name": "test/cross-app", "data": {"key": key(), "value": 21}})
        [done] = stepline.wait_runs_done(event_id)
        assert done["status"] == "Completed", done
        assert done["output"] == {"remote_result": {"remote": True, "doubled": 42}}
    finally:
        other.stop()
