"""The end-to-end scenarios of tests/e2e with an app on the npm `inngest` SDK, majors 3 and 4, on
SQLite and on the AWS adapters (moto). Step counters from the app prove how many times each step
body ran. Scenarios that wait on time were started by the fixture (see conftest.EARLY)."""

from __future__ import annotations

import time

from tests.e2e.conftest import http, wait_for
from tests.e2e.test_steps import run_of, wait_status, waiting
from tests.ts.conftest import key

FN = "ts-app-"


def test_the_app_runs_the_pinned_sdk_major(ts_stack):
    app_record = ts_stack.stepline.runtime.backend.store.get_app("ts-app")
    assert app_record.sdk.startswith(f"js:v{ts_stack.major}."), app_record.sdk
    assert http("GET", f"http://127.0.0.1:{ts_stack.app.port}/sdk")[1]["major"] == ts_stack.major


def test_multi_step_run_completes_with_output(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/multi", "data": {"key": k, "x": 2}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"a": 2, "b": 20, "c": {"sum": 22}, "run_id": run["run_id"]}
    assert [app.count("multi-step", s, k) for s in "abc"] == [1, 1, 1]
    # The execution version the SDK announced is kept for the run's later calls (docs/protocol.md §5.4):
    # TS3 picks V1 when left to decide, TS4 V2.
    stored = stepline.runtime.backend.store.get_run(run["run_id"])
    assert stored.req_version == {3: 1, 4: 2}[ts_stack.major]


def test_sleep_is_honoured(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["sleep"]
    [run] = stepline.wait_runs_done(started.event_id)
    assert run["status"] == "Completed", run
    assert run["output"]["slept"] >= 1.9, run["output"]
    assert time.monotonic() - started.at < 10
    assert app.count("sleeper", "before", started.key) == 1
    assert app.count("sleeper", "after", started.key) == 1


def test_flaky_step_is_retried_until_it_succeeds(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["flaky"]
    [run] = stepline.wait_runs_done(started.event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"first": "steady", "result": "ok after 3"}
    # The failing step ran three times (two failures, one success); the step before it once.
    assert app.count("flaky", "unreliable", started.key) == 3
    assert app.count("flaky", "steady", started.key) == 1


def test_retries_run_out_into_failed(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["doomed"]
    [run] = stepline.wait_runs_done(started.event_id)
    assert run["status"] == "Failed", run
    assert run["error"]["message"] == "always broken"
    assert app.count("doomed", "body", started.key) == 3  # retries: 2, so three attempts


def test_non_retriable_error_fails_after_one_attempt(ts_stack):
    # TS answers a NonRetriableError with a 400 (Python with a 500 and x-inngest-no-retry).
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/refuse", "data": {"key": k}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Failed", run
    assert "do not retry me" in run["error"]["message"]
    assert app.count("refuser", "body", k) == 1  # despite retries: 5


def test_one_event_starts_two_functions(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/fanout", "data": {"key": k}})
    runs = stepline.wait_runs_done(event_id, count=2)
    assert sorted(r["function_id"] for r in runs) == [FN + "fan-a", FN + "fan-b"]
    assert sorted(r["output"] for r in runs) == ["a", "b"]
    assert app.count("fan-a", "work", k) == 1 and app.count("fan-b", "work", k) == 1


def test_trigger_expression_filters_events(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    skipped, matched = stepline.send(
        {"name": "test/filtered", "data": {"key": k, "ok": False}},
        {"name": "test/filtered", "data": {"key": k, "ok": True}},
    )
    [run] = stepline.wait_runs_done(matched)
    assert run["output"] == "matched"
    assert stepline.runs(skipped) == []
    assert app.count("filtered", "work", k) == 1


def test_events_sent_by_the_sdk_client_start_runs(ts_stack):
    # The TS client treats an Event API reply without "status": 200 as a failure.
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    status, ids = http("POST", f"http://127.0.0.1:{app.port}/send", [{"name": "test/multi", "data": {"key": k}}])
    assert status == 200, ids
    [run] = stepline.wait_runs_done(ids[0])
    assert run["status"] == "Completed", run
    assert app.count("multi-step", "c", k) == 1


def test_wait_for_event_resumes_with_the_matching_event(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
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


def test_wait_for_event_times_out_with_null(ts_stack):
    stepline = ts_stack.stepline
    started = ts_stack.early["wait-timeout"]
    [done] = stepline.wait_runs_done(started.event_id)
    assert done["status"] == "Completed", done
    assert done["output"] == {"decision": None}
    assert time.monotonic() - started.at >= 1.9


def test_send_event_from_a_step_goes_through_ingest(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/sender", "data": {"key": k}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed", done
    [sent_id] = done["output"]["ids"]
    [followup] = stepline.wait_runs_done(sent_id)
    assert followup["function_id"] == FN + "multi-step" and followup["output"]["b"] == 50
    assert app.count("multi-step", "a", f"{k}-sent") == 1


def test_invoke_returns_the_child_output(ts_stack):
    stepline = ts_stack.stepline
    [event_id] = stepline.send({"name": "test/parent", "data": {"key": key(), "value": 21}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["output"] == {"child": {"child_got": 21, "double": 42}}, done


def test_invoke_feeds_the_child_error_back(ts_stack):
    stepline = ts_stack.stepline
    [event_id] = stepline.send({"name": "test/parent", "data": {"key": key(), "explode": True}})
    [done] = stepline.wait_runs_done(event_id)
    assert done["status"] == "Completed", done
    assert "child exploded" in done["output"]["child_error"]


def test_invoke_timeout_fails_the_step(ts_stack):
    stepline = ts_stack.stepline
    started = ts_stack.early["invoke-timeout"]
    [done] = stepline.wait_runs_done(started.event_id, timeout_s=20)
    assert done["status"] == "Completed", done
    assert "Timed out waiting for invoked function to complete" in done["output"]["child_error"]


def test_parallel_steps_run_concurrently_and_join_once(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["parallel"]
    [done] = stepline.wait_runs_done(started.event_id)
    assert done["status"] == "Completed", done
    assert done["output"]["joined"] == ["p1", "p2", "p3"]
    for branch in ("p1", "p2", "p3", "join"):
        assert app.count("parallel", branch, started.key) == 1, branch
    # The three branches ran side by side, not one after another.
    assert app.count("parallel", "max-active", started.key) >= 2


def test_step_error_is_memoized_after_retries_and_catchable(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["caught"]
    [done] = stepline.wait_runs_done(started.event_id)
    assert done["status"] == "Completed", done
    assert "step went boom" in done["output"]["caught"]
    assert app.count("careful", "breaks", started.key) == 2  # retries: 1, two attempts, then StepFailed


def test_uncaught_step_error_fails_the_run_and_runs_on_failure(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    started = ts_stack.early["rethrown"]
    [done] = stepline.wait_runs_done(started.event_id)
    assert done["status"] == "Failed", done
    assert app.count("careful", "breaks", started.key) == 2
    wait_for(lambda: app.count("careful-failure", "handler", started.key) == 1, what="the onFailure handler")
    failures = http("GET", f"http://127.0.0.1:{app.port}/failures")[1]
    assert "step went boom" in failures[started.key]
    _, failed_events = http("GET", f"{stepline.url}/v1/events?name=inngest/function.failed&limit=100")
    assert any(e["data"]["run_id"] == done["run_id"] and e["id"] == done["run_id"] for e in failed_events["data"])


def test_retry_after_is_honoured(ts_stack):
    # TS sends Retry-After in seconds (Python an ISO date).
    stepline = ts_stack.stepline
    started = ts_stack.early["patient"]
    [done] = stepline.wait_runs_done(started.event_id)
    assert done["output"] == "attempt 2", done
    assert time.monotonic() - started.at >= 1.9


def test_cancel_on_event_cancels_a_sleeping_run(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
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
    assert app.count("cancellable", "before", k) == 1
    assert app.count("cancellable", "after", k) == 0
    _, cancelled = http("GET", f"{stepline.url}/v1/events?name=inngest/function.cancelled&limit=100")
    assert any(e["id"] == run["run_id"] for e in cancelled["data"])


def test_race_mode_goes_on_with_the_first_branch(ts_stack):
    stepline, app = ts_stack.stepline, ts_stack.app
    k = key()
    [event_id] = stepline.send({"name": "test/race", "data": {"key": k, "slow_ms": 10000}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=20)
    assert run["status"] == "Completed", run
    assert run["output"] == {"winner": "fast", "after": "fast won"}
    # The run went on while the slow branch was still running: its result, if it has landed by
    # now, was written after the step that followed the race.
    state = stepline.runtime.backend.store.load_run(run["run_id"])
    seq = {m.name: m.seq for m in state.memos}
    assert "slow" not in seq or seq["slow"] > seq["after-race"], seq
    assert app.count("racer", "after", k) == 1
    # The slow branch's job may not even have started before the run ended; it never runs twice.
    assert app.count("racer", "slow", k) <= 1
