"""Poison messages end to end, on both backends: a real `stepline dev` and the official SDK app.

A sleeping run's wake meets a store fault on every delivery: after ``max_deliveries`` it is in
the dead-letter queue, the run Failed with the reason in GET /v1/runs/{id}. With the fault gone,
`stepline dlq redrive` (the CLI, as a user runs it) takes the run on to Completed, each step
having run once. A message that can never succeed goes to the DLQ at its first delivery.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from stepline.engine.ports import StoreError
from stepline.settings import Settings
from tests.e2e.conftest import APP_ID, SdkApp, Stepline, free_port, http, start_runtime, wait_for

SETTINGS = Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000,
                    max_deliveries=3, redelivery_base_ms=100, redelivery_cap_ms=200)


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def poison_stack(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"poison-{request.param}")
    app_port = free_port()
    runtime = start_runtime(request.param, tmp, [f"http://127.0.0.1:{app_port}/api/inngest"], settings=SETTINGS)
    app = SdkApp(runtime.url, port=app_port)
    try:
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the app to sync")
        yield Stepline(runtime), app
    finally:
        app.stop()
        runtime.stop()


class ResumeFault:
    """The store fails every read of a pending op (what resuming a step does first) while on."""

    def __init__(self, monkeypatch, store) -> None:
        self.on = True
        original = store.get_pending

        def get_pending(run_id, step_id):
            if self.on:
                raise StoreError("injected: DynamoDB is unreachable")
            return original(run_id, step_id)

        monkeypatch.setattr(store, "get_pending", get_pending)


def stepline_cli(url: str, *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return subprocess.run([sys.executable, "-m", "stepline.cli", *args, "--url", url],
                          capture_output=True, text=True, timeout=60, env=clean)


def get_run(stepline: Stepline, run_id: str) -> dict:
    status, body = http("GET", f"{stepline.url}/v1/runs/{run_id}")
    assert status == 200, body
    return body["data"]


def test_a_poisoned_wake_fails_the_run_and_a_redrive_completes_it(poison_stack, monkeypatch):
    stepline, app = poison_stack
    k = uuid.uuid4().hex[:8]
    fault = ResumeFault(monkeypatch, stepline.runtime.backend.store)
    [event_id] = stepline.send({"name": "test/sleep", "data": {"key": k, "seconds": 1}})

    [failed] = stepline.wait_runs_done(event_id)
    run_id = failed["run_id"]
    run = get_run(stepline, run_id)
    assert run["status"] == "Failed"
    assert run["error"] == {
        "name": "DeliveryFailed",
        "message": "wake message failed 3 deliveries: StoreError: injected: DynamoDB is unreachable",
    }
    assert app.count("sleeper", "before", k) == 1 and app.count("sleeper", "after", k) == 0

    listed = stepline_cli(stepline.url, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [entry] = [e for e in json.loads(listed.stdout) if e["run_id"] == run_id]
    assert entry["kind"] == "wake" and entry["receive_count"] == 3
    assert entry["reason"] == run["error"]["message"]
    table = stepline_cli(stepline.url, "dlq", "list")
    assert entry["id"] in table.stdout and "wake message failed 3 deliveries" in table.stdout

    fault.on = False
    redriven = stepline_cli(stepline.url, "dlq", "redrive", entry["id"])
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.splitlines() == ["redriven 1 message; reopened 1 run", f"  {run_id}"]

    done = wait_for(lambda: (r := get_run(stepline, run_id))["status"] == "Completed" and r, what="the run to complete")
    assert done["output"]["slept"] >= 0.9
    assert "error" not in done or done["error"] is None
    assert app.count("sleeper", "before", k) == 1 and app.count("sleeper", "after", k) == 1
    status, body = http("GET", f"{stepline.url}/v1/dead-letters")
    assert status == 200 and all(e["id"] != entry["id"] for e in body["data"])


def test_a_malformed_message_goes_straight_to_the_dlq(poison_stack):
    stepline, _ = poison_stack
    marker = uuid.uuid4().hex
    stepline.runtime.backend.queue.send({"kind": "teleport", "marker": marker})

    def dead():
        entries = http("GET", f"{stepline.url}/v1/dead-letters?limit=100")[1]["data"]
        return [e for e in entries if e["body"].get("marker") == marker]

    [entry] = wait_for(dead, what="the message to be dead-lettered")
    assert entry["receive_count"] == 1
    assert entry["reason"] == "teleport message is malformed: unknown message kind 'teleport'"
    assert entry["run_id"] is None and entry["dead_at"]


def test_redrive_refuses_what_it_cannot_do(poison_stack):
    stepline, _ = poison_stack
    url = f"{stepline.url}/v1/dead-letters/redrive"
    for body, field in [
        ({}, "body"), ({"ids": []}, "ids"), ({"ids": ["a"], "all": True}, "body"),
        ({"all": False}, "all"), ({"ids": [1]}, "ids"), ({"every": True}, "every"), ([1], "body"),
    ]:
        status, reply = http("POST", url, body)
        assert status == 400 and reply["error"].startswith(field), (body, reply)
    status, reply = http("POST", url, raw=b"{not json")
    assert status == 400 and reply["error"].startswith("body")
    status, reply = http("GET", f"{stepline.url}/v1/dead-letters?limit=0")
    assert status == 400 and reply["error"].startswith("limit")
    missing = stepline_cli(stepline.url, "dlq", "redrive", "no-such-id")
    assert missing.returncode == 1 and "redriven 0 messages" in missing.stdout
    neither = stepline_cli(stepline.url, "dlq", "redrive")
    assert neither.returncode == 1 and "--all" in neither.stderr
