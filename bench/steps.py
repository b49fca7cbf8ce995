"""`make bench`: sequential steps through the whole engine, on SQLite and on the AWS adapters (moto).

For each backend it runs one function of N sequential `step.run`s on the official Python SDK and
reports:
* steps/s through Stepline (event sent -> run completed);
* the same SDK calls replayed in a bare loop (same URLs, same bodies, same HTTP client), and the
  ratio between the two: what the engine costs on top of the app itself;
* AWS requests per step by operation, counted with botocore's event hooks (moto backend);
* dollars per million steps from AWS list prices (the constants below).

    python -m bench.steps [--steps 100] [--backends sqlite,moto]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepline.aws import AwsBackend
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.http import HttpResponse, PooledHttpCaller
from stepline.engine.sync import sync_app
from stepline.settings import Settings

# AWS list prices, us-east-1, as published on 2026-11-01. Per request unless noted.
PRICES_AS_OF = "2026-11-01"
DYNAMODB_WRITE_REQUEST_UNIT = 0.625 / 1_000_000  # on-demand, per WRU (1 KB)
DYNAMODB_READ_REQUEST_UNIT = 0.125 / 1_000_000  # on-demand, per RRU (4 KB strongly consistent)
SQS_REQUEST = 0.40 / 1_000_000  # standard queue, per 64 KB chunk
SCHEDULER_INVOCATION = 1.00 / 1_000_000
LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000166667  # x86
EXECUTOR_MEMORY_GB = 0.5  # the executor Lambda's default memory size

DDB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DDB_READS = {"GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"}
SQS_OPS = {"SendMessage", "SendMessageBatch", "DeleteMessage", "ChangeMessageVisibility"}
# Calls only the local driver makes: on AWS the Lambda event source mapping receives from SQS
# (batched, long-polled) and Scheduler fires timers by itself. Reported apart, not priced per step.
DRIVER_ONLY_OPS = {"ReceiveMessage", "ListSchedules", "GetSchedule"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingCaller:
    """The executor's real HTTP client, recording each request so the bare loop can replay it."""

    def __init__(self) -> None:
        self.inner = PooledHttpCaller()
        self.requests: list[tuple[str, bytes, dict[str, str]]] = []
        self.recording = False

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        if self.recording:
            self.requests.append((url, body, dict(headers)))
        return self.inner.post(url, body, headers, timeout_s)


class AwsRequestCounter:
    """Counts AWS API calls by operation through botocore's `before-call` event on every client
    the backend holds."""

    def __init__(self, backend: Any) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        for client in _boto_clients(backend):
            client.meta.events.register("before-call.*.*", self._count)
            client.meta.events.register("before-parameter-build.dynamodb.BatchWriteItem", self._count_items)

    def _count(self, model: Any, **_: Any) -> None:
        if self.active:
            self.counts[model.name] += 1

    def _count_items(self, params: dict, **_: Any) -> None:
        # A batch write costs one write unit per item, not per request.
        if self.active:
            self.counts["BatchWriteItem.items"] += sum(len(v) for v in params.get("RequestItems", {}).values())


def _boto_clients(backend: Any) -> list[Any]:
    return list(backend.clients.values()) if isinstance(backend, AwsBackend) else []


@dataclass
class Result:
    backend: str
    steps: int
    seconds: float
    bare_seconds: float
    calls: int
    aws: Counter[str] = field(default_factory=Counter)
    marginal: dict[str, float] = field(default_factory=dict)  # requests per additional step

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def bare_steps_per_s(self) -> float:
        return self.steps / self.bare_seconds


def run_backend(backend: str, steps: int, port: int, app_url: str, workdir: Path) -> Result:
    caller = RecordingCaller()
    options = DevOptions(port=port, db_path=str(workdir / f"{backend}.db"), backend=backend, workers=2)
    runtime = DevRuntime(options, Settings(mode="dev"), caller=caller).start()
    finished = threading.Event()
    original = runtime.engine.lifecycle.run_finished

    def on_finished(run: Any) -> None:
        original(run)
        if run.fn_id == "bench-app-sequential":
            finished.set()

    runtime.engine.lifecycle.run_finished = on_finished  # type: ignore[method-assign]
    counter = AwsRequestCounter(runtime.backend)

    def measure(n: int) -> tuple[float, Counter[str], list]:
        finished.clear()
        caller.requests = []
        counter.counts = Counter()
        caller.recording = counter.active = True
        started = time.perf_counter()
        runtime.engine.ingest.accept([{"name": "bench/sequential", "data": {"steps": n}}])
        if not finished.wait(600):
            raise SystemExit(f"{backend}: the run did not finish")
        seconds = time.perf_counter() - started
        caller.recording = counter.active = False
        return seconds, counter.counts, caller.requests

    try:
        if not sync_app(app_url, runtime.settings, attempts=30, interval_s=0.5).ok:
            raise SystemExit(f"could not sync the bench app at {app_url}")
        measure(3)  # warm up connections and caches
        # A run of half the size: the difference is what each extra step costs, without the
        # per-run overhead (start, lease, completion, lifecycle events).
        _, half_counts, _ = measure(steps // 2)
        seconds, counts, requests = measure(steps)
        bare = PooledHttpCaller()
        bare_started = time.perf_counter()
        for url, body, headers in requests:
            bare.post(url, body, headers, 60)
        bare_seconds = time.perf_counter() - bare_started
        extra = steps - steps // 2
        marginal = {op: (counts[op] - half_counts.get(op, 0)) / extra for op in counts}
        return Result(backend, steps, seconds, bare_seconds, len(requests), counts, marginal)
    finally:
        runtime.stop()


def dollars_per_million_steps(result: Result) -> dict[str, float]:
    per_step = {op: n / result.steps for op, n in result.aws.items()}
    writes = sum(v for op, v in per_step.items() if op in DDB_WRITES and op != "BatchWriteItem")
    writes += per_step.get("BatchWriteItem.items", 0.0)
    reads = sum(v for op, v in per_step.items() if op in DDB_READS)
    sqs = sum(v for op, v in per_step.items() if op in SQS_OPS)
    # The executor Lambda is billed while it waits on the app: measured seconds per step.
    lambda_seconds = result.seconds / result.steps
    costs = {
        "dynamodb": writes * DYNAMODB_WRITE_REQUEST_UNIT + reads * DYNAMODB_READ_REQUEST_UNIT,
        "sqs": sqs * SQS_REQUEST,
        "scheduler": per_step.get("CreateSchedule", 0.0) * SCHEDULER_INVOCATION,
        "lambda": lambda_seconds * EXECUTOR_MEMORY_GB * LAMBDA_GB_SECOND + LAMBDA_REQUEST / result.steps,
    }
    return {k: v * 1_000_000 for k, v in costs.items()}


def report(results: list[Result]) -> None:
    print(f"\nsequential steps, official Python SDK app (Flask), {results[0].steps} steps per run")
    print(f"{'backend':<8} {'steps/s':>9} {'bare loop/s':>12} {'ratio':>6} {'SDK calls':>10}")
    for r in results:
        ratio = r.steps_per_s / r.bare_steps_per_s
        print(f"{r.backend:<8} {r.steps_per_s:>9.1f} {r.bare_steps_per_s:>12.1f} {ratio:>6.2f} {r.calls:>10}")
    for r in results:
        if not r.aws:
            continue
        print(f"\nAWS requests per step ({r.backend}), counted with botocore before-call hooks:")
        print(f"  {'operation':<24} {'run of ' + str(r.steps):>12} {'marginal':>9}")
        for op, n in sorted(r.aws.items()):
            if op not in DRIVER_ONLY_OPS:
                print(f"  {op:<24} {n / r.steps:12.3f} {r.marginal.get(op, 0.0):9.3f}")
        polling = {op: n for op, n in r.aws.items() if op in DRIVER_ONLY_OPS}
        if polling:
            print(
                "  local driver polling (not made on AWS): "
                + ", ".join(f"{op} {n}" for op, n in sorted(polling.items()))
            )
        writes = sum(n for op, n in r.aws.items() if op in DDB_WRITES and op != "BatchWriteItem")
        writes += r.aws.get("BatchWriteItem.items", 0)
        sends = r.aws.get("SendMessage", 0) + r.aws.get("SendMessageBatch", 0)
        m_writes = sum(v for op, v in r.marginal.items() if op in DDB_WRITES and op != "BatchWriteItem")
        m_writes += r.marginal.get("BatchWriteItem.items", 0.0)
        m_sends = r.marginal.get("SendMessage", 0.0) + r.marginal.get("SendMessageBatch", 0.0)
        print(f"  {'DynamoDB writes/step':<24} {writes / r.steps:12.3f} {m_writes:9.3f}")
        print(f"  {'SQS sends/step':<24} {sends / r.steps:12.3f} {m_sends:9.3f}")
        costs = dollars_per_million_steps(r)
        print(f"\nUSD per million sequential steps (AWS list prices as of {PRICES_AS_OF}):")
        for part, usd in costs.items():
            print(f"  {part:<10} ${usd:8.3f}")
        print(f"  {'total':<10} ${sum(costs.values()):8.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,moto")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port, app_port = free_port(), free_port()
    app = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "bench_app.py"), "--port", str(app_port)],
        env={**os.environ, "INNGEST_DEV": f"http://127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends.split(","):
                results.append(
                    run_backend(backend, args.steps, port, f"http://127.0.0.1:{app_port}/api/inngest", Path(tmp))
                )
    finally:
        app.terminate()
        app.wait(5)
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
