"""The official TypeScript SDK 4.x as the sender, on SQLite and on the AWS adapters (moto):
`inngest.send()` adds no trace context of its own; a Node app traced the usual way (a
NodeTracerProvider and the undici instrumentation, both among the SDK's own dependencies) sends
the current span's ``traceparent`` on the fetch that carries the event. The run that event starts
is in the app's trace: its root span is the child of, and linked to, that request's span."""

from __future__ import annotations

import json
import subprocess

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.ports import RunStatus
from stepline.settings import Settings
from stepline.telemetry import Telemetry
from stepline.telemetry.tracing import OtelRunTracer
from tests.e2e.conftest import free_port, wait_for
from tests.ts.node import APP_ID, TS_DIR, TsApp, _env, _tools, package_dir

SENDER_JS = TS_DIR / "app" / "send_traced.js"


@pytest.fixture(scope="module", params=["sqlite", "moto"])
def traced_ts(request, ts_packages, tmp_path_factory):
    backend = request.param
    tmp = tmp_path_factory.mktemp(f"trace-context-ts4-{backend}")
    port, app_port = free_port(), free_port()
    exporter = InMemorySpanExporter()
    tracer = OtelRunTracer(SimpleSpanProcessor(exporter))
    options = DevOptions(
        port=port, db_path=str(tmp / "dev.db"), backend=backend, app_urls=[f"http://127.0.0.1:{app_port}/api/inngest"]
    )
    settings = Settings(mode="dev", retry_base_ms=200, retry_cap_ms=1000)
    runtime = DevRuntime(options, settings, telemetry=Telemetry(None, tracer)).start()
    app = None
    try:
        app = TsApp(4, runtime.url, port=app_port, log_dir=tmp)
        wait_for(lambda: runtime.backend.store.get_app(APP_ID), what="the TS app to sync")
        yield runtime, exporter
    finally:
        if app is not None:
            app.stop()
        runtime.stop()
        tracer.shutdown()


def send_traced(stepline_url: str, event: dict, *flags: str) -> dict:
    tools = _tools()
    env = {k: v for k, v in _env(tools).items() if not k.startswith("INNGEST_")}
    env["INNGEST_DEV"] = stepline_url
    done = subprocess.run(
        [tools.node, str(SENDER_JS), "--sdk-dir", str(package_dir(4)), "--event", json.dumps(event), *flags],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def run_spans(runtime, exporter, event_id: str) -> list:
    def completed():
        runs = runtime.backend.store.runs_for_event(event_id)
        return runs[0] if runs and runs[0].status is RunStatus.COMPLETED else None

    run = wait_for(completed, 30, what="the run to complete")
    return [s for s in exporter.get_finished_spans() if s.attributes.get("stepline.run.id") == run.run_id]


def test_the_ts_sdk_alone_sends_no_trace_context(traced_ts):
    runtime, exporter = traced_ts
    sent = send_traced(runtime.url, {"name": "test/multi", "data": {"key": "ts-plain"}}, "--untraced-fetch")
    assert sent["request"] is None
    [root] = [s for s in run_spans(runtime, exporter, sent["ids"][0]) if s.name.startswith("run ")]
    assert root.parent is None and not root.links
    assert f"{root.context.trace_id:032x}" != sent["sender"]["trace_id"]


def test_an_event_sent_by_the_ts_sdk_from_a_traced_app_continues_its_trace(traced_ts):
    runtime, exporter = traced_ts
    sent = send_traced(runtime.url, {"name": "test/multi", "data": {"key": "ts-sender"}})
    sender, request = sent["sender"], sent["request"]
    assert request is not None and request["trace_id"] == sender["trace_id"], sent
    spans = run_spans(runtime, exporter, sent["ids"][0])
    assert len(spans) >= 3, [s.name for s in spans]  # root, calls, steps
    assert {f"{s.context.trace_id:032x}" for s in spans} == {sender["trace_id"]}
    [root] = [s for s in spans if s.name.startswith("run ")]
    assert f"{root.parent.span_id:016x}" == request["span_id"]
    assert [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in root.links] == [
        (request["trace_id"], request["span_id"])
    ]
