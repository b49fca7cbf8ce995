"""Deployed, the OTLP exporter's headers (a tracing backend's API key) come from the Secrets
Manager secret the stack names (STEPLINE_OTLP_HEADERS_SECRET_ID): both Lambdas, on moto, read it
at cold start and every export request a real OTLP/HTTP receiver gets carries them. The same
deployment shows an event's traceparent continued through the API Lambda, the queue and the
executor Lambda. A secret that cannot be read turns tracing off with a clear log line; the
Lambdas still start and runs still complete."""

from __future__ import annotations

import logging
import uuid

import boto3
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from stepline.telemetry import setup
from stepline.telemetry.otlp_headers import SECRET_ID_ENV, OtlpHeadersUnavailable, headers_from_secret, parse_headers
from tests.e2e.conftest import http, wait_for
from tests.handlers.test_lambda_entrypoints import lambda_deployment
from tests.telemetry.otlp import attr

SECRET = "tracing/otlp-headers"


@pytest.fixture
def cold_tracer(monkeypatch, receiver):
    """A new container's tracer, exporting to ``receiver``; shut down afterwards."""
    monkeypatch.setattr(setup, "_tracer", {})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=kept,api-key=replaced")
    monkeypatch.setenv(SECRET_ID_ENV, SECRET)
    yield
    tracer = setup._tracer.get("tracer")
    if tracer is not None:
        tracer.shutdown()


def run_one(url: str, app, headers: dict[str, str]) -> dict:
    status, _ = http("PUT", app.url)
    assert status == 200
    k = uuid.uuid4().hex[:8]
    status, body = http("POST", f"{url}/e/any-key", {"name": "test/multi", "data": {"key": k}}, headers=headers)
    assert status == 200, body

    def finished():
        runs = http("GET", f"{url}/v1/events/{body['ids'][0]}/runs")[1]["data"]
        return runs and runs[0]["status"] == "Completed" and runs[0]

    run = wait_for(finished, 30, what="the run to complete")
    assert [app.count("multi-step", s, k) for s in "abc"] == [1, 1, 1]
    return run


def test_the_lambdas_send_the_secrets_headers_with_every_export(monkeypatch, receiver, cold_tracer):
    sender = TracerProvider().get_tracer("sender")
    with lambda_deployment(monkeypatch) as (url, app, backend, _):
        boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString="api-key=k-123,x-team=a%20b")
        with sender.start_as_current_span("checkout") as span:
            carrier: dict[str, str] = {}
            TraceContextTextMapPropagator().inject(carrier, context=set_span_in_context(span))
        run = run_one(url, app, carrier)
        wait_for(lambda: any(s.name.startswith("run ") for _, s in receiver.of_run(run["run_id"])), 15,
                 what="the run's root span")

    assert receiver.requests >= 1
    for headers in receiver.headers:
        assert headers["api-key"] == "k-123" and headers["x-team"] == "a b"  # the secret's
        assert headers["x-from-env"] == "kept"  # OTEL_EXPORTER_OTLP_HEADERS' own still sent
    # The sender's context came through the API Lambda and the queue to the executor's spans.
    spans = [s for _, s in receiver.of_run(run["run_id"])]
    sender_ids = span.get_span_context()
    assert {s.trace_id for s in spans} == {sender_ids.trace_id.to_bytes(16, "big")}
    [root] = [s for s in spans if s.name.startswith("run ")]
    assert root.parent_span_id == sender_ids.span_id.to_bytes(8, "big")
    assert attr(root, "stepline.run.status") == "Completed"


def test_a_secret_that_cannot_be_read_turns_tracing_off_and_the_lambdas_run(monkeypatch, receiver, cold_tracer, caplog):
    caplog.set_level(logging.ERROR, logger="stepline.telemetry.setup")
    with lambda_deployment(monkeypatch) as (url, app, _, _):  # the secret was never created
        run_one(url, app, {})
    [line] = [r for r in caplog.records if "tracing is off" in r.getMessage()]
    assert SECRET in line.getMessage() and SECRET_ID_ENV in line.getMessage()
    assert setup._tracer == {"tracer": None}
    assert receiver.requests == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api-key=abc", {"api-key": "abc"}),
        (" Api-Key = a%3Db , x-other=v%20w,", {"api-key": "a=b", "x-other": "v w"}),
        ('{"api-key": "abc", "X-Other": "d"}', {"api-key": "abc", "x-other": "d"}),
    ],
)
def test_the_secret_holds_headers_as_the_otel_variable_or_as_json(text, expected):
    assert parse_headers(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "sk-live-123456", "{not json", '{"api-key": 5}', "[]", "=sk-live-123"])
def test_a_secret_without_headers_is_refused_without_showing_it(text):
    with pytest.raises(OtlpHeadersUnavailable) as refused:
        headers_from_secret({SECRET_ID_ENV: SECRET}, lambda _: text)
    assert SECRET in str(refused.value)
    assert "sk-live" not in str(refused.value) and "123" not in str(refused.value)


def test_nothing_is_read_without_a_secret():
    def fetch(_: str) -> str:
        raise AssertionError("read a secret that was not named")

    assert headers_from_secret({}, fetch) is None
    assert headers_from_secret({SECRET_ID_ENV: "  "}, fetch) is None
