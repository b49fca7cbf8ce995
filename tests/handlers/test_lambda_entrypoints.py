"""The two Lambda entry points, as deployed, over the AWS adapters on moto.

The module-level `handler`s build their engine from the environment (the settings the stack
sets). The API handler is put behind a local HTTP front that turns requests into API Gateway
HTTP API (v2) events, so an unmodified official-SDK app can sync and send events to it; a pump
plays the SQS event source mapping (batches in, partial failures out) and EventBridge Scheduler.
"""

from __future__ import annotations

import json
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from stepline.aws.moto_env import moto_backend
from stepline.dev.http_server import DevHttpServer
from stepline.engine.clock import SystemClock
from stepline.handlers import api as api_module
from stepline.handlers import executor as executor_module
from stepline.handlers import wiring
from stepline.settings import Settings
from tests.e2e.conftest import SdkApp, free_port, http, wait_for


@dataclass
class LambdaContext:
    function_name: str = "stepline-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:stepline-test"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        # A fresh invocation of the executor as deployed: its whole timeout is left.
        return Settings().executor_timeout_s * 1000


class ApiGatewayFront:
    """What API Gateway does for the API Lambda: one v2 event per request, one invocation."""

    def resolve(self, event: dict, _context: object) -> dict:
        return api_module.handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))


class EventSourcePump:
    """What the SQS event source mapping and Scheduler do: receive a batch, invoke the executor
    with it, delete what succeeded, leave the reported failures to reappear."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            self.backend.timers.fire_due(SystemClock().now_ms())
            batch = self.backend.queue.receive(10, 60)
            if not batch:
                self.stop.wait(0.05)
                continue
            self.invoke(batch)

    def invoke(self, batch) -> dict:
        event = {"Records": [record(str(i), m.handle, json.dumps(m.body), m.receive_count) for i, m in enumerate(batch)]}
        result = executor_module.handler(event, LambdaContext(aws_request_id=str(uuid.uuid4())))
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        self.failures.extend(failed)
        for i, m in enumerate(batch):
            if str(i) not in failed:
                self.backend.queue.ack(m.handle)
        return result


def record(message_id: str, handle: str, body: str, receive_count: int = 1) -> dict:
    return {
        "messageId": message_id,
        "receiptHandle": handle,
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stepline",
        "awsRegion": "us-east-1",
    }


@pytest.fixture
def deployment(monkeypatch):
    with lambda_deployment(monkeypatch) as deployed:
        yield deployed


@contextmanager
def lambda_deployment(monkeypatch, **overrides):
    """Both Lambdas on moto, configured through the environment as the stack configures them
    (with ``overrides`` of the settings), behind a local API Gateway and an event source pump."""
    with moto_backend(SystemClock()) as backend:
        names = backend.names
        settings = Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000, **overrides, **names.settings_values())
        for key, value in settings.to_env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SteplineTest")
        # Cold start: each test builds its engine from the environment, as a new container would.
        monkeypatch.setattr(wiring, "_engine", None)
        monkeypatch.setattr(api_module, "_handler", None)
        monkeypatch.setattr(executor_module, "_handler", None)
        front = DevHttpServer(ApiGatewayFront(), "127.0.0.1", free_port())
        front.start()
        pump = EventSourcePump(backend)
        pump.thread.start()
        url = f"http://127.0.0.1:{front.port}"
        app = SdkApp(url)
        try:
            yield url, app, backend, pump
        finally:
            pump.stop.set()
            pump.thread.join(5)
            app.stop()
            front.stop()


def test_an_event_runs_to_completion_through_both_lambdas(deployment):
    url, app, backend, _ = deployment
    status, _ = http("PUT", app.url)
    assert status == 200
    wait_for(lambda: backend.store.get_app("e2e-app"), what="the app to sync through the API Lambda")
    k = uuid.uuid4().hex[:8]
    status, body = http("POST", f"{url}/e/any-key", {"name": "test/multi", "data": {"key": k, "x": 3}})
    assert status == 200 and body["status"] == 200

    def finished():
        runs = http("GET", f"{url}/v1/events/{body['ids'][0]}/runs")[1]["data"]
        return runs and runs[0]["status"] == "Completed" and runs[0]

    run = wait_for(finished, what="the run to complete")
    assert run["output"]["c"] == {"sum": 33}
    assert [app.count("multi-step", s, k) for s in "abc"] == [1, 1, 1]


def test_a_sleeping_run_wakes_through_the_queue(deployment):
    url, app, backend, _ = deployment
    http("PUT", app.url)
    wait_for(lambda: backend.store.get_app("e2e-app"), what="the app to sync")
    k = uuid.uuid4().hex[:8]
    _, body = http("POST", f"{url}/e/any-key", {"name": "test/sleep", "data": {"key": k, "seconds": 2}})

    def finished():
        runs = http("GET", f"{url}/v1/events/{body['ids'][0]}/runs")[1]["data"]
        return runs and runs[0]["status"] == "Completed" and runs[0]

    run = wait_for(finished, what="the run to wake and complete")
    assert run["output"]["slept"] >= 1.9
    assert app.count("sleeper", "after", k) == 1


def test_a_record_that_can_never_succeed_is_dead_lettered_alone(deployment):
    _, _, backend, pump = deployment
    pump.stop.set()
    pump.thread.join(5)
    backend.queue.send({"kind": "call", "run_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "step": "step", "attempt": 0})
    [good] = backend.queue.receive(1, 60)
    event = {"Records": [record("good", good.handle, json.dumps(good.body)), record("poison", "h", "{not json")]}
    result = executor_module.handler(event, LambdaContext(aws_request_id="r1"))
    # The message for an unknown run is done (acknowledged); the unreadable one can never
    # succeed: it is on the DLQ now, so it is reported done too (the event source deletes it).
    assert result == {"batchItemFailures": []}
    [dead] = backend.dead_letters.list_dead(10)
    assert dead.body == {"invalid_body": "{not json"} and dead.reason.receive_count == 1


def test_the_api_lambda_answers_bad_input_with_4xx(deployment):
    url, *_ = deployment
    status, body = http("POST", f"{url}/e/key", raw=b"{nope")
    assert status == 400 and "invalid JSON" in body["error"]
    status, body = http("GET", f"{url}/v1/nothing-here")
    assert status == 404
