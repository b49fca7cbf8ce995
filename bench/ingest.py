"""`make bench`, ingest: events per second through the Event API of `stepline dev`, and on the
AWS adapters (moto) the AWS requests and dollars per event.

Three loads, each over one kept-alive HTTP connection (Python's http.client, in a process of its
own, as an app sending events is), side by side:
* single: one event per request, to a name no function listens to;
* batch: 100 events per request, to a name no function listens to;
* start: 100 events per request, each starting a run of a registered function. The runs are
  created and queued; no worker executes them, so the figure is ingest's alone.

On AWS each request is an API Gateway request and an API Lambda invocation; those are priced per
request, the Lambda's duration from the measured seconds per request (an upper bound: moto
answers slower than DynamoDB does).

Then, on moto, a full Event API request (5,000 events, each triggering a function): the AWS
requests made before the answer (what must fit in API Gateway's 30 s) and, per event, those its
``start`` messages make afterwards in the executor; once with events that carry no id, once with
ids (each claimed for 24 h, 100 to a transaction; measured on 500 events, since moto copies the
whole table for every transaction).

    python -m bench.ingest [--backends sqlite,moto] [--scale 1.0] [--full-request 5000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_requests import Meter, Steps, drain, register
from bench.steps import (
    DDB_READS,
    DDB_WRITES,
    DRIVER_ONLY_OPS,
    DYNAMODB_READ_REQUEST_UNIT,
    DYNAMODB_WRITE_REQUEST_UNIT,
    LAMBDA_GB_SECOND,
    LAMBDA_REQUEST,
    PRICES_AS_OF,
    SQS_OPS,
    SQS_REQUEST,
    AwsRequestCounter,
    free_port,
)
from infra.config import StackConfig
from stepline.aws.moto_env import moto_backend
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine import messages
from stepline.engine.clock import ManualClock
from stepline.engine.core import Engine
from stepline.engine.ingest import START_CHUNK
from stepline.settings import Settings

# API Gateway HTTP API, us-east-1, first 300 million requests a month, per request (up to 512 KB).
API_GATEWAY_HTTP_REQUEST = 1.00 / 1_000_000
API_MEMORY_GB = StackConfig().api_memory_mb / 1024  # the API Lambda's default memory size

BATCH = 100
LOADS = ("single", "batch", "start")
TARGETS = {"single": 1_000, "batch": 10_000}  # events/s on SQLite
NO_FUNCTION = "bench/ingest.nothing"
STARTS_A_RUN = "bench/ingest.start"
APP_URL = "http://127.0.0.1:9/api/inngest"  # never called: no worker runs
FUNCTION_ID = "bench-ingest-start"
# Requests per load at --scale 1: SQLite, then moto (which serves a few hundred AWS requests/s).
REQUESTS = {"sqlite": {"single": 3_000, "batch": 150, "start": 60}, "moto": {"single": 150, "batch": 6, "start": 4}}


@dataclass
class Measured:
    backend: str
    load: str
    requests: int
    events: int
    seconds: float
    aws: Counter[str] = field(default_factory=Counter)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def per_event(self, op: str) -> float:
        return self.aws.get(op, 0) / self.events


def register_body() -> bytes:
    return json.dumps(
        {
            "url": APP_URL,
            "appName": "bench-ingest",
            "framework": "bench",
            "functions": [
                {
                    "id": FUNCTION_ID,
                    "name": "start",
                    "triggers": [{"event": STARTS_A_RUN}],
                    "steps": {
                        "step": {
                            "id": "step",
                            "name": "step",
                            "runtime": {"type": "http", "url": f"{APP_URL}?fnId={FUNCTION_ID}&stepId=step"},
                        }
                    },
                }
            ],
        }
    ).encode()


class Connection:
    """One kept-alive connection to the server, posting JSON."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, path: str, body: bytes) -> dict:
        self._conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise SystemExit(f"POST {path} answered {resp.status}: {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        self._conn.close()


def bodies(load: str, requests: int, run: str) -> list[bytes]:
    """The request bodies of a load."""
    name = STARTS_A_RUN if load == "start" else NO_FUNCTION
    size = 1 if load == "single" else BATCH
    return [
        json.dumps([{"name": name, "data": {"run": run, "request": r, "i": i}} for i in range(size)]).encode()
        for r in range(requests)
    ]


_sender: Connection | None = None  # the sender process's one connection, kept across loads


def send_load(port: int, load: str, requests: int, run: str) -> tuple[int, float]:
    """In the sender's process: post a load over its kept-alive connection. (events, seconds)"""
    global _sender
    if _sender is None:
        _sender = Connection(port)
    planned = bodies(load, requests, run)
    started = time.perf_counter()
    events = sum(len(_sender.post("/e/bench", body)["ids"]) for body in planned)
    return events, time.perf_counter() - started


def measure_backend(backend: str, scale: float, workdir: Path) -> list[Measured]:
    # No workers: the runs of the "start" load are created and queued, not executed.
    options = DevOptions(port=free_port(), db_path=str(workdir / f"ingest-{backend}.db"), backend=backend, workers=0)
    runtime = DevRuntime(options, Settings(mode="dev")).start()
    counter = AwsRequestCounter(runtime.backend)
    results = []
    try:
        register = Connection(runtime.server.port)
        register.post("/fn/register", register_body())
        register.close()
        with multiprocessing.get_context("spawn").Pool(1) as sender:
            port = runtime.server.port
            for load in LOADS:
                requests = max(2, int(REQUESTS[backend][load] * scale))
                sender.apply(send_load, (port, load, 3, f"warm-up-{load}"))
                counter.counts = Counter()
                counter.active = True
                events, seconds = sender.apply(send_load, (port, load, requests, f"measured-{load}"))
                counter.active = False
                results.append(Measured(backend, load, requests, events, seconds, counter.counts))
    finally:
        runtime.stop()
    return results


def dollars_per_million_events(m: Measured) -> dict[str, float]:
    writes = sum(m.per_event(op) for op in DDB_WRITES if op != "BatchWriteItem") + m.per_event("BatchWriteItem.items")
    reads = sum(m.per_event(op) for op in DDB_READS)
    sqs = sum(m.per_event(op) for op in SQS_OPS)
    requests_per_event = m.requests / m.events
    seconds_per_request = m.seconds / m.requests
    costs = {
        "api gateway": requests_per_event * API_GATEWAY_HTTP_REQUEST,
        "api lambda": requests_per_event * (LAMBDA_REQUEST + seconds_per_request * API_MEMORY_GB * LAMBDA_GB_SECOND),
        "dynamodb": writes * DYNAMODB_WRITE_REQUEST_UNIT + reads * DYNAMODB_READ_REQUEST_UNIT,
        "sqs": sqs * SQS_REQUEST,
    }
    return {k: v * 1_000_000 for k, v in costs.items()}


def report(results: list[Measured]) -> None:
    print(f"\ningest over one kept-alive connection: single = 1 event per request, batch and start = {BATCH}")
    print(f"{'load':<7} {'backend':<8} {'requests':>9} {'events':>8} {'events/s':>10}  target")
    for m in results:
        target = TARGETS.get(m.load) if m.backend == "sqlite" else None
        verdict = f">= {target:,} {'met' if m.events_per_s >= target else 'MISSED'}" if target else ""
        print(f"{m.load:<7} {m.backend:<8} {m.requests:>9} {m.events:>8} {m.events_per_s:>10.1f}  {verdict}")
    counted = [m for m in results if m.aws]
    if not counted:
        return
    loads = [m.load for m in counted]
    print("\nAWS requests per event (moto), counted with botocore before-call hooks:")
    print(f"  {'operation':<24}" + "".join(f"{load:>10}" for load in loads))
    ops = sorted({op for m in counted for op in m.aws} - DRIVER_ONLY_OPS)
    for op in ops:
        print(f"  {op:<24}" + "".join(f"{m.per_event(op):>10.3f}" for m in counted))
    writes = [
        sum(m.per_event(op) for op in DDB_WRITES if op != "BatchWriteItem") + m.per_event("BatchWriteItem.items")
        for m in counted
    ]
    print(f"  {'DynamoDB writes/event':<24}" + "".join(f"{w:>10.3f}" for w in writes))
    print(f"  {'HTTP requests/event':<24}" + "".join(f"{m.requests / m.events:>10.3f}" for m in counted))
    costs = [dollars_per_million_events(m) for m in counted]
    print(f"\nUSD per million events (AWS list prices as of {PRICES_AS_OF}):")
    print(f"  {'':<24}" + "".join(f"{load:>10}" for load in loads))
    for part in costs[0]:
        print(f"  {part:<24}" + "".join(f"{'$' + format(c[part], '.3f'):>10}" for c in costs))
    print(f"  {'total':<24}" + "".join(f"{'$' + format(sum(c.values()), '.3f'):>10}" for c in costs))


def measure_full_request(events: int, with_ids: bool) -> dict[str, Any]:
    clock = ManualClock()
    with moto_backend(clock) as backend:
        engine = Engine(backend, Settings(mode="dev"), clock=clock, caller=Steps(0))
        register(engine, "bench-ingest", "bench/event")
        meter = Meter(backend.clients)
        batch = [{"name": "bench/event", "data": {"i": i}} for i in range(events)]
        if with_ids:
            for i, event in enumerate(batch):
                event["id"] = f"order-{i}"
        meter.active = True
        started = time.perf_counter()
        engine.ingest.accept(batch)
        seconds = time.perf_counter() - started
        answered = Counter(meter.requests)
        meter.reset()
        # One start message (100 events) stands for the rest: each starts its events' runs.
        handled = drain(engine, backend, only_kind=messages.START, most=1)
        meter.active = False
        per_event = sum(meter.requests.values()) / (START_CHUNK if handled and events > START_CHUNK else 1)
        return {"before_answer": answered, "moto_seconds": seconds, "after_per_event": per_event}


def report_full_request(label: str, result: dict[str, Any]) -> None:
    before = result["before_answer"]
    print(f"\nEvent API request, {label}: {sum(before.values())} AWS requests before the 200")
    for op, n in sorted(before.items()):
        print(f"  {op:<22} {n:>6}")
    print(f"  then, in the executor, {result['after_per_event']:.1f} requests per event to start its run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,moto")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of requests per load")
    parser.add_argument("--full-request", type=int, default=5_000, help="events of the full request (0: skip)")
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    results: list[Measured] = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            results += measure_backend(backend, args.scale, Path(tmp))
    report(results)
    if args.full_request and "moto" in args.backends.split(","):
        n = args.full_request
        report_full_request(f"{n} events without ids", measure_full_request(n, with_ids=False))
        with_ids = min(n, 500)
        report_full_request(f"{with_ids} events with ids", measure_full_request(with_ids, with_ids=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
