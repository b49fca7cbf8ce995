"""End to end over OTLP/HTTP: `stepline dev` in its own process, configured with nothing but the
standard OTEL_* variables, runs a function of the official Python SDK that sleeps between two
steps (several executor invocations), and exports its spans to a real OTLP receiver in this
test. The receiver decodes each request with the OpenTelemetry protobufs; the spans of the run,
from however many requests, reassemble into one tree under one root."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import SdkApp, free_port, http, wait_for
from tests.e2e.started import clean_environ, stepline_command


class OtlpReceiver:
    """POST /v1/traces on a loopback port: every span received, with its service name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []  # (service.name, Span)
        self.requests = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.path == "/v1/traces", self.path
                assert self.headers["Content-Type"] == "application/x-protobuf"
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    receiver.requests += 1
                    for resource_spans in request.resource_spans:
                        attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(attrs.get("service.name", ""), s) for s in scope_spans.spans]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of_run(self, run_id: str) -> list[tuple[str, object]]:
        with self.lock:
            return [(svc, s) for svc, s in self.spans if _attr(s, "stepline.run.id") == run_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _attr(span, key: str):
    for a in span.attributes:
        if a.key == key:
            value = a.value
            return value.string_value or value.int_value or value.bool_value
    return None


@pytest.fixture
def receiver():
    r = OtlpReceiver()
    yield r
    r.stop()


@pytest.fixture
def traced_dev(tmp_path, receiver):
    port = free_port()
    env = clean_environ({
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_SERVICE_NAME": "stepline-e2e",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export each batch within 0.1 s
    })
    command = [*stepline_command(), "dev", "--port", str(port), "--db", str(tmp_path / "dev.db"), "--no-discovery",
               "--poll-interval", "0"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(url), what="stepline dev to listen")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _up(url: str) -> bool:
    try:
        return http("GET", f"{url}/health")[0] == 200
    except OSError:
        return False


def test_a_run_across_invocations_arrives_as_one_trace(traced_dev, receiver):
    app = SdkApp(traced_dev)
    try:
        status, body = http("PUT", app.url)
        assert status == 200, body
        status, body = http("POST", f"{traced_dev}/e/key", {"name": "test/sleep", "data": {"seconds": 1, "key": "otlp"}})
        assert status == 200, body
        [event_id] = body["ids"]

        def ended():
            runs = http("GET", f"{traced_dev}/v1/events/{event_id}/runs")[1]["data"]
            return runs[0] if runs and runs[0]["status"] == "Completed" else None

        run = wait_for(ended, 30, what="the sleeper's run")
        run_id = run["run_id"]
        # The root span is written when the run ends: once it is in, the run's trace is whole.
        wait_for(lambda: any(not s.parent_span_id for _, s in receiver.of_run(run_id)), 15, what="the root span")
        assert app.count("sleeper", "before", "otlp") == 1 and app.count("sleeper", "after", "otlp") == 1
    finally:
        app.stop()

    received = receiver.of_run(run_id)
    spans = [s for _, s in received]
    assert {svc for svc, _ in received} == {"stepline-e2e"}
    assert len({s.trace_id for s in spans}) == 1, "one trace"
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.name.startswith("run ") and _attr(root, "stepline.run.status") == "Completed"
    by_id = {s.span_id: s for s in spans}
    assert len(by_id) == len(spans), "no span twice"

    def path_to_root(span) -> list[str]:
        names = [span.name]
        while span.parent_span_id:
            span = by_id[span.parent_span_id]  # a KeyError: a parent that never arrived
            names.append(span.name)
        return names

    for span in spans:
        assert path_to_root(span)[-1] == root.name

    calls = [s for s in spans if s.name.startswith("call ")]
    steps = {_attr(s, "stepline.step.id") for s in spans if s.name.startswith("step ")}
    [nap] = [s for s in spans if s.name.startswith("sleep ")]
    assert len(calls) >= 3  # before the sleep, after it, and the call that completes the run
    assert all(c.parent_span_id == root.span_id for c in calls)
    assert len(steps) == 2 and nap.parent_span_id == root.span_id
    assert (nap.end_time_unix_nano - nap.start_time_unix_nano) >= 900_000_000
    # The calls before the sleep and after it came from different invocations, the root after both.
    first, last = min(calls, key=lambda c: c.start_time_unix_nano), max(calls, key=lambda c: c.start_time_unix_nano)
    assert first.end_time_unix_nano <= nap.start_time_unix_nano + 50_000_000 < last.start_time_unix_nano
    assert root.start_time_unix_nano <= first.start_time_unix_nano and root.end_time_unix_nano >= last.end_time_unix_nano
