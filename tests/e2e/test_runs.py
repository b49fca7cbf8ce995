"""Events in, runs out: the official Python SDK against `stepline dev`, on SQLite and on the AWS
adapters (moto). Step counters from the app prove how many times each step body ran."""

from __future__ import annotations

import time
import uuid

from tests.e2e.conftest import wait_for


def key() -> str:
    return uuid.uuid4().hex[:12]


def test_multi_step_run_completes_with_output(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/multi", "data": {"key": k, "x": 2}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed"
    assert run["output"]["a"] == 2 and run["output"]["b"] == 20 and run["output"]["c"] == {"sum": 22}
    assert run["output"]["run_id"] == run["run_id"]
    assert [app.count("multi-step", s, k) for s in "abc"] == [1, 1, 1]


def test_sleep_is_honoured(stack):
    stepline, app = stack
    k = key()
    started = time.monotonic()
    [event_id] = stepline.send({"name": "test/sleep", "data": {"key": k, "seconds": 3}})
    [run] = stepline.wait_runs_done(event_id, timeout_s=30)
    elapsed = time.monotonic() - started
    assert run["status"] == "Completed"
    assert run["output"]["slept"] >= 2.9, run["output"]
    assert elapsed < 10
    assert app.count("sleeper", "before", k) == 1
    assert app.count("sleeper", "after", k) == 1


def test_flaky_step_is_retried_until_it_succeeds(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/flaky", "data": {"key": k, "failures": 2}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Completed", run
    assert run["output"] == {"first": "steady", "result": "ok after 3"}
    # The failing step ran three times (two failures, one success); the step before it once.
    assert app.count("flaky", "unreliable", k) == 3
    assert app.count("flaky", "steady", k) == 1


def test_retries_run_out_into_failed(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/doomed", "data": {"key": k}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Failed"
    assert run["error"]["message"] == "always broken"
    assert app.count("doomed", "body", k) == 3  # retries=2: three attempts in all


def test_non_retriable_error_fails_after_one_attempt(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/refuse", "data": {"key": k}})
    [run] = stepline.wait_runs_done(event_id)
    assert run["status"] == "Failed"
    assert "do not retry me" in run["error"]["message"]
    assert app.count("refuser", "body", k) == 1


def test_one_event_starts_two_functions(stack):
    stepline, app = stack
    k = key()
    [event_id] = stepline.send({"name": "test/fanout", "data": {"key": k}})
    runs = stepline.wait_runs_done(event_id, count=2)
    assert sorted(r["function_id"] for r in runs) == ["e2e-app-fan-a", "e2e-app-fan-b"]
    assert sorted(r["output"] for r in runs) == ["a", "b"]
    assert app.count("fan-a", "work", k) == 1 and app.count("fan-b", "work", k) == 1


def test_trigger_expression_filters_events(stack):
    stepline, app = stack
    k = key()
    skipped, matched = stepline.send(
        {"name": "test/filtered", "data": {"key": k, "ok": False}},
        {"name": "test/filtered", "data": {"key": k, "ok": True}},
    )
    [run] = stepline.wait_runs_done(matched)
    assert run["output"] == "matched"
    assert stepline.runs(skipped) == []
    assert app.count("filtered", "work", k) == 1


def test_repeated_event_id_starts_nothing(stack):
    stepline, app = stack
    k = key()
    event = {"name": "test/multi", "id": f"order-{k}", "data": {"key": k, "x": 1}}
    [first] = stepline.send(event)
    stepline.wait_runs_done(first)
    [second] = stepline.send(event)
    assert second == first  # the same stored event, acknowledged again
    time.sleep(0.5)
    assert len(stepline.runs(first)) == 1
    assert app.count("multi-step", "a", k) == 1


def test_events_sent_by_the_sdk_client_start_runs(stack):
    stepline, app = stack
    from tests.e2e.conftest import http

    k = key()
    status, ids = http("POST", f"http://127.0.0.1:{app.port}/send", [{"name": "test/multi", "data": {"key": k}}])
    assert status == 200, ids
    [run] = stepline.wait_runs_done(ids[0])
    assert run["status"] == "Completed"
    wait_for(lambda: app.count("multi-step", "c", k) == 1, what="step c")
