"""`make bench`, flow control: the AWS requests each rule adds, per run and per step.

One function per rule (``bench/flow_app.py``, official Python SDK), each running sequential
steps, on the AWS adapters (moto) with requests counted by the same botocore hooks as
``bench.steps``. Each rule's function runs twice, with a few steps and with more; the
difference gives the requests per step, the rest the requests per run. What a rule adds is its
function's counts minus those of the function without flow control. Nothing waits: every run
has its limits to itself, which is the cost every run pays (contention adds queue hops on top).

    python -m bench.flow [--small 2] [--large 12]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bench.aws_costs import DDB_READS, DDB_WRITES, DRIVER_ONLY_OPS, AwsRequestCounter, free_port
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.sync import sync_app
from stepline.settings import Settings

APP_ID = "bench-flow"
RULES = [
    "none",
    "concurrency",
    "concurrency-2-keys",
    "priority",
    "throttle",
    "rate-limit",
    "debounce",
    "batch",
    "idempotency",
    "singleton",
]
# What each rule's row means, beyond the function running N sequential steps.
NOTES = {
    "concurrency": "limit 10",
    "concurrency-2-keys": "limits 5 per key and 10",
    "priority": "with a limit of 10",
    "debounce": "1 s period",
    "batch": "2 events per run, the second's storage excluded",
}


def writes(counts: Counter[str]) -> float:
    total = sum(n for op, n in counts.items() if op in DDB_WRITES and op != "BatchWriteItem")
    return total + counts.get("BatchWriteItem.items", 0)


def reads(counts: Counter[str]) -> float:
    return sum(n for op, n in counts.items() if op in DDB_READS)


def sends(counts: Counter[str]) -> float:
    return counts.get("SendMessage", 0) + counts.get("SendMessageBatch", 0) + counts.get("CreateSchedule", 0)


class Bench:
    def __init__(self, runtime: DevRuntime) -> None:
        self.runtime = runtime
        self.counter = AwsRequestCounter(runtime.backend)
        self.finished = threading.Event()
        self.waiting_for = ""
        original = runtime.engine.ending.end

        def on_end(state: Any, *args: Any, **kwargs: Any) -> bool:
            written = original(state, *args, **kwargs)
            if state.run.fn_id == self.waiting_for:
                self.finished.set()
            return written

        runtime.engine.ending.end = on_end  # type: ignore[method-assign]

    def measure(self, rule: str, steps: int) -> Counter[str]:
        """AWS requests from sending the event(s) to the end of the run they start."""
        events: list[dict[str, Any]] = [
            {
                "name": f"bench/flow.{rule}",
                "data": {"steps": steps, "id": uuid.uuid4().hex, "user": "u1", "priority": 10},
            }
        ]
        if rule == "batch":
            events.append({**events[0], "data": {**events[0]["data"], "id": uuid.uuid4().hex}})
        self.waiting_for = f"{APP_ID}-{rule}"
        self.finished.clear()
        self.counter.counts = Counter()
        self.counter.active = True
        self.runtime.engine.ingest.accept(events)
        if not self.finished.wait(120):
            raise SystemExit(f"the {rule} run did not finish")
        # The run's invocation still frees its slots and acknowledges its message after the
        # run is recorded finished: those requests are the run's too.
        deadline = time.monotonic() + 10
        while self.runtime.driver.busy and time.monotonic() < deadline:
            time.sleep(0.005)
        self.counter.active = False
        return Counter({op: n for op, n in self.counter.counts.items() if op not in DRIVER_ONLY_OPS})

    def event_only(self) -> Counter[str]:
        """Storing one event that starts nothing (subtracted from the batch row's second event)."""
        self.counter.counts = Counter()
        self.counter.active = True
        self.runtime.engine.ingest.accept([{"name": "bench/flow.nothing", "data": {"id": uuid.uuid4().hex}}])
        self.counter.active = False
        return Counter(self.counter.counts)


def run(small: int, large: int, port: int, app_url: str, workdir: Path) -> dict[str, dict[str, float]]:
    options = DevOptions(port=port, db_path=str(workdir / "flow.db"), backend="moto", workers=2)
    runtime = DevRuntime(options, Settings(mode="dev")).start()
    try:
        if not sync_app(app_url, runtime.settings, attempts=30, interval_s=0.5).ok:
            raise SystemExit(f"could not sync the bench app at {app_url}")
        bench = Bench(runtime)
        bench.event_only()  # warm up the day registry
        event = bench.event_only()
        out: dict[str, dict[str, float]] = {}
        for rule in RULES:
            bench.measure(rule, small)  # warm up connections and caches
            # The cheaper of two runs: a config cache refreshing mid-run is not the rule's cost.
            few = min((bench.measure(rule, small) for _ in range(2)), key=lambda c: sum(c.values()))
            many = min((bench.measure(rule, large) for _ in range(2)), key=lambda c: sum(c.values()))
            if rule == "batch":
                few, many = few - event, many - event
            row: dict[str, float] = {}
            for name, count in (("writes", writes), ("reads", reads), ("sends", sends)):
                per_step = (count(many) - count(few)) / (large - small)
                row[f"{name}/step"] = per_step
                row[f"{name}/run"] = count(few) - small * per_step
            out[rule] = row
        return out
    finally:
        runtime.stop()


def report(rows: dict[str, dict[str, float]]) -> None:
    base = rows["none"]
    print("\nflow control: AWS requests each rule adds to a run of sequential steps (moto, botocore hooks)")
    print("(DynamoDB writes count batch items; sends are SQS messages and Scheduler schedules)")
    print(
        f"{'rule':<20} {'writes/run':>10} {'reads/run':>10} {'sends/run':>10} "
        f"{'writes/step':>12} {'reads/step':>11} {'sends/step':>11}  note"
    )
    for rule, row in rows.items():
        label = "none (baseline)" if rule == "none" else rule
        values = row if rule == "none" else {k: v - base[k] for k, v in row.items()}
        sign = "" if rule == "none" else "+"
        cells = [f"{sign}{values[k]:.2f}" for k in ("writes/run", "reads/run", "sends/run")]
        cells += [f"{sign}{values[k]:.2f}" for k in ("writes/step", "reads/step", "sends/step")]
        widths = (10, 10, 10, 12, 11, 11)
        line = " ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))
        print(f"{label:<20} {line}  {NOTES.get(rule, '')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2)
    parser.add_argument("--large", type=int, default=12)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    port, app_port = free_port(), free_port()
    app = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "flow_app.py"), "--port", str(app_port)],
        env={**os.environ, "INNGEST_DEV": f"http://127.0.0.1:{port}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(args.small, args.large, port, f"http://127.0.0.1:{app_port}/api/inngest", Path(tmp))
    finally:
        app.terminate()
        app.wait(5)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
