"""End to end over OTLP/HTTP: `stepline dev` in its own process, configured with nothing but the
standard OTEL_* variables, runs a function of the official Python SDK that sleeps between two
steps (several executor invocations), and exports its spans to a real OTLP receiver in this
test. The receiver decodes each request with the OpenTelemetry protobufs; the spans of the run,
from however many requests, reassemble into one tree under one root."""

from __future__ import annotations

from tests.e2e.conftest import SdkApp, http, wait_for
from tests.telemetry.otlp import attr


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
    assert root.name.startswith("run ") and attr(root, "stepline.run.status") == "Completed"
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
    steps = {attr(s, "stepline.step.id") for s in spans if s.name.startswith("step ")}
    [nap] = [s for s in spans if s.name.startswith("sleep ")]
    assert len(calls) >= 3  # before the sleep, after it, and the call that completes the run
    assert all(c.parent_span_id == root.span_id for c in calls)
    assert len(steps) == 2 and nap.parent_span_id == root.span_id
    assert (nap.end_time_unix_nano - nap.start_time_unix_nano) >= 900_000_000
    # The calls before the sleep and after it came from different invocations, the root after both.
    first, last = min(calls, key=lambda c: c.start_time_unix_nano), max(calls, key=lambda c: c.start_time_unix_nano)
    assert first.end_time_unix_nano <= nap.start_time_unix_nano + 50_000_000 < last.start_time_unix_nano
    assert root.start_time_unix_nano <= first.start_time_unix_nano and root.end_time_unix_nano >= last.end_time_unix_nano
