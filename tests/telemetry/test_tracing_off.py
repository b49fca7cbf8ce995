"""Off unless configured, and then free: without an OTEL_* exporter a whole run loads nothing of
OpenTelemetry or the Prometheus client; with one, the standard variables decide what is built."""

from __future__ import annotations

import textwrap

import pytest

from stepline.telemetry.setup import tracing_configured
from stepline.telemetry.trace_context import RunTrace
from tests.test_imports import loaded, modules_after

A_RUN = textwrap.dedent(
    """
    import tempfile
    from stepline.engine.core import Engine
    from stepline.engine.clock import ManualClock
    from stepline.local import local_backend
    from stepline.settings import Settings
    from tests.engine.scripted_app import ScriptedApp, pump, register

    clock = ManualClock()
    with tempfile.TemporaryDirectory() as tmp, local_backend(tmp + "/s.db", clock) as backend:
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=ScriptedApp({"fn": [("run", "a")]}))
        register(engine, ["fn"])
        [event_id] = engine.ingest.accept([{"name": "app/fn", "data": {}}])
        pump(backend, engine, clock)
        [run] = backend.store.runs_for_event(event_id)
        assert run.status.value == "Completed", run
        assert run.trace and run.trace.endswith("-00"), run.trace  # ids for the logs, unsampled
        assert engine.telemetry.tracer is None
    """
)


def test_a_run_without_an_exporter_loads_no_telemetry_library():
    modules = modules_after(A_RUN)
    assert loaded(modules, ("opentelemetry", "prometheus_client", "stepline.telemetry.tracing")) == []


def test_a_configured_exporter_loads_the_sdk():
    code = "from stepline.telemetry.setup import process_tracer\nassert process_tracer() is not None\n"
    modules = modules_after(code, {"OTEL_TRACES_EXPORTER": "console"})
    assert "opentelemetry.sdk.trace" in modules and "stepline.telemetry.tracing" in modules


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_the_standard_variables_turn_tracing_on(env, on):
    assert tracing_configured(env) is on


def test_trace_contexts_round_trip_and_bad_ones_are_none():
    trace = RunTrace.new(sampled=True)
    assert RunTrace.parse(trace.traceparent()) == trace
    for bad in (None, "", "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "01-abc", "00-xyz"):
        assert RunTrace.parse(bad) is None


@pytest.mark.parametrize("handler", ["stepline.handlers.api", "stepline.handlers.executor"])
def test_a_lambda_without_an_exporter_loads_no_opentelemetry(handler):
    """Cold start does not grow with the layer's OpenTelemetry: the handler, its engine and a
    metrics flush, with no OTEL_* set, load none of it (nor the Prometheus client)."""
    code = textwrap.dedent(
        f"""
        import {handler}
        from stepline.telemetry.metrics import EmfMetrics
        from stepline.telemetry.setup import telemetry_from_env
        telemetry_from_env(None, EmfMetrics()).flush()
        """
    )
    env = {"LAMBDA_TASK_ROOT": "/var/task", "AWS_LAMBDA_FUNCTION_NAME": "stepline-test", "AWS_REGION": "us-east-1",
           "POWERTOOLS_TRACE_DISABLED": "true"}
    modules = modules_after(code, env)
    assert loaded(modules, ("opentelemetry", "prometheus_client", "google.protobuf")) == []
