"""`make bench`: what tracing costs, in steps/s side by side (SQLite, Stepline's SDK app).

* no exporter: the runtime as it runs unless OTEL_* configures one (the default; run ids still
  get their trace context, for the logs, and every hook returns at its first line);
* tracing on: every run sampled (100%), each span exported with the OpenTelemetry SDK's batch
  processor over OTLP/HTTP to a receiver on loopback (a thread of this process that reads and
  drops the requests, so the exporter does all the work a real one would);
* and, timed apart, what the hooks of one step cost with no exporter (a step with a call's
  hooks and its memo's: with the call overhead of every step counted, the worst case).

Each configuration gets a fresh runtime on the same port (the apps know it) and runs the same
runs, one configuration after the other; the table gives the median and the spread (min-max) of
the rounds, so that a difference can be told from the machine's noise.

    python -m bench.tracing [--steps 100] [--rounds 5] [--modes own-checkpoint,own-per-step]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.steps import MODES, Bench, Mode, free_port, start_apps
from stepline.telemetry import Telemetry


class Receiver:
    """OTLP/HTTP on loopback: takes every export request, counts it, keeps nothing."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests += 1
                receiver.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def exporting(receiver: Receiver) -> Telemetry:
    """Tracing on, at 100%, exporting over OTLP/HTTP as the OTEL_* variables would set it up."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from stepline.telemetry.tracing import OtelRunTracer

    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=receiver.url))
    tracer = OtelRunTracer(processor, sampler=ALWAYS_ON, resource=Resource.create({"service.name": "bench"}))
    return Telemetry(None, tracer)


def hook_cost_us() -> float:
    """Microseconds the hooks of one streamed step cost with no exporter (what a step does
    besides its memo write: a call's share of ``call_began``/``ended``, ``memo_committed``)."""
    import timeit

    from stepline.engine.ports import Memo, Run, RunStatus

    telemetry = Telemetry(None)
    run = Run("r", "f", "a", RunStatus.RUNNING, [], [], 0, trace=telemetry.new_run_trace())
    memo = Memo("s", {"data": 1}, "seq", "s", {"op": "StepRun", "attempt": 0, "checkpointed": True})

    def one_step() -> None:
        call = telemetry.call_began(run, "step", 0, {})
        telemetry.memo_committed(run, memo, 0)
        call.ended(200, None)

    rounds = 200_000
    return min(timeit.repeat(one_step, number=rounds, repeat=5)) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", default="own-checkpoint,own-per-step")
    args = parser.parse_args(argv)
    modes: list[Mode] = [m for m in MODES if m.key in args.modes.split(",")]
    receiver = Receiver()
    configs = {"no exporter": None, "tracing on (100%, OTLP)": exporting(receiver)}
    port = free_port()
    procs, urls = start_apps(port, {m.app for m in modes})
    rates: dict[tuple[str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, telemetry in configs.items():
                # One runtime per configuration, in turn on the same port (the apps know it).
                workdir = Path(tmp) / name.split()[0]
                workdir.mkdir()
                bench = Bench("sqlite", port, urls, workdir, telemetry=telemetry)
                try:
                    for mode in modes:
                        bench.run(mode, 3)  # warm up
                        for _ in range(args.rounds):
                            rates.setdefault((mode.key, name), []).append(bench.run(mode, args.steps).steps_per_s)
                finally:
                    bench.stop()
                    if telemetry is not None:
                        telemetry.flush()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)
        receiver.stop()
    print(f"steps/s at {args.steps} steps, median of {args.rounds} runs (min-max):")
    print(f"| app | {' | '.join(configs)} |")
    print(f"|---|{'---|' * len(configs)}")
    for mode in modes:
        cells = []
        for name in configs:
            values = rates[(mode.key, name)]
            cells.append(f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})")
        print(f"| {mode.title} | {' | '.join(cells)} |")
    print(f"exported: {receiver.requests} OTLP requests, {receiver.bytes / 1024:.0f} KiB")
    cost = hook_cost_us()
    fastest = statistics.median(rates[(modes[0].key, "no exporter")])
    share = cost / (1e6 / fastest) * 100
    step = f"{share:.2f}% of a {modes[0].title} step at the median rate"
    print(f"no exporter, the hooks of one step: {cost:.2f} us ({step})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
