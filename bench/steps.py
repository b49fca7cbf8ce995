"""`make bench`: sequential steps through the whole engine, side by side for every way an app can
run them, on SQLite and on the AWS adapters (moto).

The modes: Stepline's own SDK checkpointing (the default: steps run inline and each is streamed
back on the call's own connection), checkpointing through the API as it does where answers
cannot stream (each step POSTed to /v1/checkpoint), and with checkpointing off (one call per
step); the official
Python SDK (one call per step: it cannot checkpoint); the official TypeScript SDK 4.x
checkpointing (its default: each step POSTed to /v1/checkpoint) and with checkpointing off. Each
runs one function of N sequential `step.run`s returning small values.

Reported per mode:
* steps/s from sending the event to the run completing, at 10, 100 and 1,000 steps (SQLite; the
  median of several runs for the small sizes);
* calls to the app per run and bytes per step (call requests, answers and checkpoint requests);
* how soon the step after a two-branch parallel group starts once the last branch ended;
* on moto, every AWS request a step causes at the margin (a run of 50 steps against one of 100,
  counted with botocore hooks), checkpoint requests to the API, and dollars per million steps
  from AWS list prices (bench/aws_costs.py).

    python -m bench.steps [--sizes 10,100,1000] [--backends sqlite,moto] [--modes own-checkpoint,...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.aws_costs import (  # noqa: F401 - bench/ingest.py and bench/lambdas.py import these from here
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
    dollars_per_million_steps,
    free_port,
    reads,
    writes,
)
from stepline.dev.runtime import DevOptions, DevRuntime
from stepline.engine.http import HttpResponse, PooledHttpCaller
from stepline.engine.sync import sync_app
from stepline.settings import Settings
from stepline.telemetry import Telemetry

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Mode:
    key: str
    title: str
    app: str  # "own", "official" or "ts"
    event: str
    fn_id: str


MODES = [
    Mode("own-checkpoint", "own SDK, checkpointed", "own", "bench/bench-own.checkpointed", "bench-own-checkpointed"),
    Mode(
        "own-checkpoint-api",
        "own SDK, checkpointed via API",
        "own-api",
        "bench/bench-own-api.checkpointed",
        "bench-own-api-checkpointed",
    ),
    Mode("own-per-step", "own SDK, per-step", "own", "bench/bench-own.per-step", "bench-own-per-step"),
    Mode("official-per-step", "official Python SDK, per-step", "official", "bench/sequential", "bench-app-sequential"),
    Mode("ts-checkpoint", "TS 4.x, checkpointed", "ts", "bench/ts.checkpointed", "bench-ts-checkpointed"),
    Mode("ts-per-step", "TS 4.x, per-step", "ts", "bench/ts.per-step", "bench-ts-per-step"),
]
MARGINAL_SIZES = (50, 100)  # moto: the difference between these is what a step costs


class Traffic:
    """The executor's real HTTP client, counting calls and bytes both ways (streams included)."""

    def __init__(self) -> None:
        self.inner = PooledHttpCaller()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.calls = 0
        self.sent = 0
        self.received = 0

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> HttpResponse:
        resp = self.inner.post(url, body, headers, timeout_s)
        with self.lock:
            self.calls += 1
            self.sent += len(body)
            self.received += len(resp.body)
        if resp.lines is not None:
            resp.lines = _Counted(resp.lines, self)
        return resp


class _Counted:
    def __init__(self, lines: Any, traffic: Traffic) -> None:
        self.lines, self.traffic = lines, traffic

    def __iter__(self) -> Any:
        for line in self.lines:
            with self.traffic.lock:
                self.traffic.received += len(line) + 1
            yield line

    def close(self) -> None:
        self.lines.close()


class CheckpointApi:
    """Checkpoint requests the API served (count, bytes, seconds), counted in front of the API
    the dev server hands requests to."""

    def __init__(self, runtime: DevRuntime) -> None:
        server = runtime.server._server  # the dev server's HTTP server, holding the API
        self.inner = server.resolver
        server.resolver = self
        self.reset()

    def resolve(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not str(event.get("rawPath", "")).startswith("/v1/checkpoint/"):
            return self.inner.resolve(event, context)
        started = time.perf_counter()
        try:
            return self.inner.resolve(event, context)
        finally:
            self.requests += 1
            self.bytes += len(event.get("body") or "")
            self.seconds += time.perf_counter() - started

    def reset(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.seconds = 0.0


@dataclass
class Sample:
    steps: int
    seconds: float
    calls: int
    sent: int
    received: int
    api_requests: int = 0
    api_bytes: int = 0
    api_seconds: float = 0.0
    aws: Counter[str] = field(default_factory=Counter)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds

    @property
    def bytes_per_step(self) -> float:
        return (self.sent + self.received + self.api_bytes) / self.steps


class Bench:
    """One runtime on one backend, the apps synced to it, measuring one run at a time."""

    def __init__(
        self, backend: str, port: int, app_urls: list[str], workdir: Path, telemetry: Telemetry | None = None
    ) -> None:
        self.traffic = Traffic()
        options = DevOptions(port=port, db_path=str(workdir / f"{backend}.db"), backend=backend, workers=2)
        self.runtime = DevRuntime(options, Settings(mode="dev"), caller=self.traffic, telemetry=telemetry).start()
        self.api = CheckpointApi(self.runtime)
        self.aws = AwsRequestCounter(self.runtime.backend)
        self.finished = threading.Event()
        self.watching = ""
        self.last: Any = None
        original = self.runtime.engine.ending.end

        def on_end(state: Any, *args: Any, **kwargs: Any) -> bool:
            written = original(state, *args, **kwargs)
            if state.run.fn_id == self.watching:
                self.last = state.run
                self.finished.set()
            return written

        self.runtime.engine.ending.end = on_end  # type: ignore[method-assign]
        for url in app_urls:
            if not sync_app(url, self.runtime.settings, attempts=60, interval_s=0.5).ok:
                raise SystemExit(f"could not sync the bench app at {url}")

    def run(self, mode: Mode, steps: int) -> Sample:
        self.finished.clear()
        self.watching = mode.fn_id
        self.traffic.reset()
        self.api.reset()
        self.aws.counts = Counter()
        self.aws.active = True
        started = time.perf_counter()
        self.runtime.engine.ingest.accept([{"name": mode.event, "data": {"steps": steps}}])
        if not self.finished.wait(900):
            raise SystemExit(f"{mode.key}: the {steps}-step run did not finish")
        seconds = time.perf_counter() - started
        self.aws.active = False
        if self.last.output != sum(range(steps)):
            raise SystemExit(f"{mode.key}: the {steps}-step run ended {self.last.status}: {self.last.error}")
        t, a = self.traffic, self.api
        return Sample(steps, seconds, t.calls, t.sent, t.received, a.requests, a.bytes, a.seconds, self.aws.counts)

    def best_of(self, mode: Mode, steps: int, repeats: int) -> Sample:
        samples = sorted((self.run(mode, steps) for _ in range(repeats)), key=lambda s: s.seconds)
        return samples[len(samples) // 2]  # the median

    def stop(self) -> None:
        self.runtime.stop()


def start_apps(port: int, wanted: set[str]) -> tuple[list[subprocess.Popen], list[str]]:
    env = {**os.environ, "INNGEST_DEV": f"http://127.0.0.1:{port}"}
    procs, urls = [], []
    for app in ("official", "own", "own-api", "ts"):
        if app not in wanted:
            continue
        app_port = free_port()
        if app == "ts":
            # The SDK the TypeScript tests pin (tests/ts/v4), installed by their helper on first use.
            sys.path.insert(0, str(ROOT))
            node = importlib.import_module("tests.ts.node")
            sdk_dir = str(node.ensure_installed(4))
            cmd = ["node", str(BENCH / "ts_app.js"), "--port", str(app_port), "--sdk-dir", sdk_dir]
        else:
            script = "bench_app.py" if app == "official" else "own_app.py"
            cmd = [sys.executable, str(BENCH / script), "--port", str(app_port)]
            if app == "own-api":
                cmd.append("--no-stream")
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{app_port}/api/inngest")
    return procs, urls


def repeats_for(steps: int) -> int:
    return 7 if steps <= 10 else 3 if steps <= 100 else 1


def bench_sqlite(bench: Bench, modes: list[Mode], sizes: list[int]) -> dict[str, dict[int, Sample]]:
    out: dict[str, dict[int, Sample]] = {}
    for mode in modes:
        bench.run(mode, 3)  # warm up connections and caches
        out[mode.key] = {n: bench.best_of(mode, n, repeats_for(n)) for n in sizes}
        rates = ", ".join(f"{n}: {s.steps_per_s:.0f}/s" for n, s in out[mode.key].items())
        print(f"  {mode.key}: {rates}", flush=True)
    return out


def bench_moto(bench: Bench, modes: list[Mode]) -> dict[str, tuple[Sample, Sample]]:
    out = {}
    for mode in modes:
        bench.run(mode, 3)
        small, large = (bench.run(mode, n) for n in MARGINAL_SIZES)
        out[mode.key] = (small, large)
        print(f"  {mode.key}: {large.steps_per_s:.0f}/s", flush=True)
    return out


def bench_parallel(bench: Bench, runs: int = 10) -> list[float]:
    """How long after the last branch of a two-branch parallel group the next step starts (ms),
    per run: the discovery call between them, on the app's own clock."""
    mode = Mode("parallel", "", "own", "bench/bench-own.parallel", "bench-own-parallel")
    gaps = []
    for _ in range(runs):
        bench.finished.clear()
        bench.watching = mode.fn_id
        bench.runtime.engine.ingest.accept([{"name": mode.event, "data": {}}])
        if not bench.finished.wait(60):
            raise SystemExit("parallel: the run did not finish")
        gaps.append(float(bench.last.output["gap_ms"]))
    return gaps


def report_parallel(gaps: list[float]) -> None:
    ordered = sorted(gaps)
    print(
        f"\nThe step after a two-branch parallel group starts {ordered[len(ordered) // 2]:.0f} ms "
        f"(median; {ordered[0]:.0f} to {ordered[-1]:.0f} ms over {len(gaps)} runs) after the last branch ends"
    )


def report_sqlite(modes: list[Mode], results: dict[str, dict[int, Sample]], sizes: list[int]) -> None:
    middle = 100 if 100 in sizes else sizes[len(sizes) // 2]
    print("\nSQLite: steps/s from the event to the completed run (median of several runs at the small sizes)")
    head = "".join(f"{str(n) + ' steps':>12}" for n in sizes)
    print(f"{'mode':<32}{head}{'calls@' + str(middle):>11}{'bytes/step@' + str(middle):>16}")
    for mode in modes:
        row = results[mode.key]
        rates = "".join(f"{row[n].steps_per_s:>12.0f}" for n in sizes)
        print(f"{mode.title:<32}{rates}{row[middle].calls:>11}{row[middle].bytes_per_step:>16.0f}")
    own = results.get("own-checkpoint")
    if own and min(sizes) in own and max(sizes) in own:
        ratio = own[max(sizes)].steps_per_s / own[min(sizes)].steps_per_s
        print(f"own SDK, checkpointed: {max(sizes)} steps at {ratio:.2f}x the steps/s of {min(sizes)} steps")


def report_moto(modes: list[Mode], results: dict[str, tuple[Sample, Sample]]) -> None:
    small_n, large_n = MARGINAL_SIZES
    print(f"\nAWS adapters (moto): requests per step at the margin (a {large_n}-step run minus a {small_n}-step run)")
    columns = ("DDB writes", 11), ("DDB reads", 10), ("SQS", 7), ("API reqs", 9), ("calls/run", 10), ("USD/M steps", 13)
    print(f"{'mode':<32}" + "".join(f"{name:>{width}}" for name, width in columns))
    for mode in modes:
        small, large = results[mode.key]
        extra = large_n - small_n
        per_step = {op: (large.aws[op] - small.aws.get(op, 0)) / extra for op in large.aws if op not in DRIVER_ONLY_OPS}
        api = (large.api_requests - small.api_requests) / extra
        sqs = sum(v for op, v in per_step.items() if op.startswith(("Send", "Delete", "Change")))
        costs = marginal_costs(small, large, per_step)
        print(
            f"{mode.title:<32}{writes(per_step):>11.3f}{reads(per_step):>10.3f}{sqs:>7.3f}{api:>9.3f}"
            f"{large.calls:>10}{sum(costs.values()):>13.3f}"
        )
    print(f"(USD per million steps: AWS list prices as of {PRICES_AS_OF}, bench/aws_costs.py)")
    for mode in modes:
        small, large = results[mode.key]
        per_step = {
            op: (large.aws[op] - small.aws.get(op, 0)) / (large_n - small_n)
            for op in large.aws
            if op not in DRIVER_ONLY_OPS
        }
        costs = marginal_costs(small, large, per_step)
        ops = ", ".join(f"{op} {v:.3f}" for op, v in sorted(per_step.items()) if abs(v) >= 0.0005)
        parts = ", ".join(f"{k} ${v:.3f}" for k, v in costs.items() if v)
        print(f"  {mode.title}: {ops or 'none'}; {parts}")


def marginal_costs(small: Sample, large: Sample, per_step: dict[str, float]) -> dict[str, float]:
    extra = large.steps - small.steps
    return dollars_per_million_steps(
        per_step,
        (large.seconds - small.seconds) / extra,
        api_requests_per_step=(large.api_requests - small.api_requests) / extra,
        api_seconds_per_step=(large.api_seconds - small.api_seconds) / extra,
        executor_invocations_per_step=(large.calls - small.calls) / extra,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000", help="steps per run on SQLite")
    parser.add_argument("--backends", default="sqlite,moto")
    parser.add_argument("--modes", default=",".join(m.key for m in MODES))
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    modes = [m for m in MODES if m.key in args.modes.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    port = free_port()
    procs, urls = start_apps(port, {m.app for m in modes})
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in args.backends.split(","):
                print(f"{backend}:", flush=True)
                bench = Bench(backend, port, urls, Path(tmp))
                try:
                    if backend == "moto":
                        report_moto(modes, bench_moto(bench, modes))
                    else:
                        report_sqlite(modes, bench_sqlite(bench, modes, sizes), sizes)
                        if any(m.app == "own" for m in modes):
                            report_parallel(bench_parallel(bench))
                finally:
                    bench.stop()
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
