"""A real OTLP/HTTP receiver on a loopback port, and `stepline dev` in its own process exporting
to it, configured with nothing but the standard OTEL_* variables (the fixtures are in
conftest.py)."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import free_port, http, wait_for
from tests.e2e.started import clean_environ, stepline_command


class OtlpReceiver:
    """POST /v1/traces on a loopback port: every span received, with its service name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []  # (service.name, Span)
        self.headers: list[dict[str, str]] = []  # each export request's headers (lower-cased names)
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
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
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
            return [(svc, s) for svc, s in self.spans if attr(s, "stepline.run.id") == run_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attr(span, key: str):
    for a in span.attributes:
        if a.key == key:
            value = a.value
            return value.string_value or value.int_value or value.bool_value
    return None


def traced_dev_server(tmp_path, receiver: OtlpReceiver):
    """`stepline dev` exporting its spans to ``receiver``: yields its URL."""
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
        wait_for(lambda: up(url), what="stepline dev to listen")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def up(url: str) -> bool:
    try:
        return http("GET", f"{url}/health")[0] == 200
    except OSError:
        return False


def completed_run_spans(stepline_url: str, receiver: OtlpReceiver, event_id: str) -> tuple[dict, list]:
    """The run ``event_id`` started, once Completed, and its spans once its root is in (the
    root is written when the run ends: then the trace is whole)."""

    def ended():
        runs = http("GET", f"{stepline_url}/v1/events/{event_id}/runs")[1]["data"]
        return runs[0] if runs and runs[0]["status"] == "Completed" else None

    run = wait_for(ended, 30, what="the run to complete")

    def root_in():
        return any(s.name.startswith("run ") for _, s in receiver.of_run(run["run_id"]))

    wait_for(root_in, 15, what="the run's root span")
    return run, [s for _, s in receiver.of_run(run["run_id"])]


def assert_in_senders_trace(spans: list, trace_hex: str, request_span_hex: str) -> None:
    """Every span of the run is in the sender's trace; the root is the child of the span that
    sent the request, and links to it."""
    assert len(spans) >= 3, [s.name for s in spans]
    assert {s.trace_id.hex() for s in spans} == {trace_hex}
    [root] = [s for s in spans if s.name.startswith("run ")]
    assert root.parent_span_id.hex() == request_span_hex
    assert [(link.trace_id.hex(), link.span_id.hex()) for link in root.links] == [(trace_hex, request_span_hex)]
