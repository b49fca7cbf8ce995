"""The handlers build powertools' tracer only where powertools would trace (stepline.handlers.tracing)."""

from __future__ import annotations

import itertools

import aws_lambda_powertools
import pytest
from aws_lambda_powertools import Tracer

from stepline.handlers import tracing

VARIABLES = {
    "LAMBDA_TASK_ROOT": [None, "/var/task"],
    "POWERTOOLS_TRACE_DISABLED": [None, "true", "false", "1", "0", "TRUE"],
    "AWS_SAM_LOCAL": [None, "true"],
    "AWS_CHALICE_CLI_MODE": [None, "true"],
}


def environments():
    for values in itertools.product(*VARIABLES.values()):
        yield {name: value for name, value in zip(VARIABLES, values, strict=True) if value is not None}


@pytest.mark.parametrize("env", list(environments()), ids=lambda env: ",".join(f"{k}={v}" for k, v in env.items()))
def test_the_rule_is_powertools_own(env, monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert tracing.tracing_enabled() is (not Tracer._is_tracer_disabled())


def test_with_tracing_off_the_handler_is_left_as_it_is(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def handler(event, context):
        return {"ok": event}

    assert tracing.traced("svc")(handler) is handler


def test_with_tracing_on_the_handler_runs_inside_the_tracer(monkeypatch):
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    subsegments = []

    class Provider:
        """Stands in for the X-Ray recorder: records the subsegment the tracer opens."""

        __module__ = "tests.handlers.test_tracing"

        def in_subsegment(self, name):
            subsegments.append(name)
            return _Subsegment()

    captured = {}

    def fake_tracer(service):
        captured["service"] = service
        return Tracer(service=service, provider=Provider(), auto_patch=False)

    monkeypatch.setattr(aws_lambda_powertools, "Tracer", fake_tracer)
    try:

        def handler(event, context):
            return {"ok": event}

        wrapped = tracing.traced("svc")(handler)
        assert wrapped(1, None) == {"ok": 1}
    finally:
        Tracer._reset_config()
    assert captured == {"service": "svc"} and subsegments == ["## handler"]


class _Subsegment:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def put_annotation(self, key, value):
        pass

    def put_metadata(self, key, value, namespace=None):
        pass
