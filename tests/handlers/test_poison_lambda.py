"""Poison messages through the two Lambda entry points, as deployed, on moto: the executor
Lambda dead-letters a message that fails ``max_deliveries`` times onto the SQS DLQ (the reason in
message attributes) and fails its run; the API Lambda lists the DLQ and redrives it; a body that
is not JSON goes to the DLQ at its first delivery."""

from __future__ import annotations

import uuid

import pytest

from stepline.aws.dead_letters import REASON
from stepline.engine.ports import StoreError
from stepline.handlers import wiring
from tests.e2e.conftest import http, wait_for
from tests.handlers.test_lambda_entrypoints import lambda_deployment


@pytest.fixture
def deployment(monkeypatch):
    with lambda_deployment(monkeypatch, max_deliveries=3, redelivery_base_ms=100, redelivery_cap_ms=200) as deployed:
        yield deployed


def run_of(url: str, event_id: str) -> dict | None:
    runs = http("GET", f"{url}/v1/events/{event_id}/runs")[1]["data"]
    return runs[0] if runs else None


def test_the_executor_lambda_dead_letters_and_the_api_lambda_redrives(deployment, monkeypatch):
    url, app, backend, pump = deployment
    assert http("PUT", app.url)[0] == 200
    wait_for(lambda: backend.store.get_app("e2e-app"), what="the app to sync through the API Lambda")
    # The Lambdas' engine (one per container, built from the environment): its store fails to
    # resume the sleep on every delivery.
    store = wiring.engine_from_env().backend.store
    original, fault = store.get_pending, {"on": True}

    def get_pending(run_id, step_id):
        if fault["on"]:
            raise StoreError("injected: DynamoDB is unreachable")
        return original(run_id, step_id)

    monkeypatch.setattr(store, "get_pending", get_pending)
    k = uuid.uuid4().hex[:8]
    _, sent = http("POST", f"{url}/e/any-key", {"name": "test/sleep", "data": {"key": k, "seconds": 1}})
    event_id = sent["ids"][0]

    failed = wait_for(lambda: (r := run_of(url, event_id)) and r["status"] == "Failed" and r, what="the run to fail")
    message = "wake message failed 3 deliveries: StoreError: injected: DynamoDB is unreachable"
    assert failed["error"] == {"name": "DeliveryFailed", "message": message}
    assert len(pump.failures) == 2  # two deliveries reported failed, the third dead-lettered
    # On the DLQ itself, the reason travels as a message attribute.
    names = backend.names
    sqs = backend.clients["sqs"]
    [raw] = sqs.receive_message(QueueUrl=names.dlq_url, MessageAttributeNames=["All"], VisibilityTimeout=0)["Messages"]
    assert raw["MessageAttributes"][REASON]["StringValue"] == message

    [entry] = http("GET", f"{url}/v1/dead-letters")[1]["data"]
    assert (entry["run_id"], entry["reason"], entry["receive_count"]) == (failed["run_id"], message, 3)

    fault["on"] = False
    status, reply = http("POST", f"{url}/v1/dead-letters/redrive", {"all": True})
    assert status == 200 and reply["data"] == {"redriven": 1, "runs_reopened": [failed["run_id"]], "more": False}
    done = wait_for(lambda: (r := run_of(url, event_id)) and r["status"] == "Completed" and r, what="the run to complete")
    assert done["output"]["slept"] >= 0.9
    assert app.count("sleeper", "before", k) == 1 and app.count("sleeper", "after", k) == 1
    assert http("GET", f"{url}/v1/dead-letters")[1]["data"] == []


def test_a_body_that_is_not_json_goes_to_the_dlq_at_once(deployment):
    url, _, backend, pump = deployment
    names = backend.names
    backend.clients["sqs"].send_message(QueueUrl=names.queue_url, MessageBody="<html>oops</html>")

    [entry] = wait_for(lambda: http("GET", f"{url}/v1/dead-letters")[1]["data"], what="the message to be dead-lettered")

    assert entry["body"] == {"invalid_body": "<html>oops</html>"}
    assert entry["reason"] == "unknown message is malformed: the body is not a JSON object: '<html>oops</html>'"
    assert entry["receive_count"] == 1 and entry["run_id"] is None
    assert pump.failures == []
    # Kept as the text that came: that is what the DLQ holds.
    [raw] = backend.clients["sqs"].receive_message(QueueUrl=names.dlq_url, VisibilityTimeout=0)["Messages"]
    assert raw["Body"] == "<html>oops</html>"
