"""`make bench`, the Lambdas: cold start and per-step cost of the two handlers, each in a process of
its own as a Lambda runs it, against AWS played by a moto server in another process.

Each handler runs in ``bench/lambda_host.py`` (one execution environment: import once, then one
invocation per request) from the runtime's own install (``.bench/server-*``, built by
``bench.imports``). This process plays the rest of AWS: API Gateway in front of the API Lambda
(a local HTTP server turning requests into HTTP API v2 events), the SQS event source mapping
(receiving batches, invoking the executor, deleting what succeeded), and the app: the benchmark's
official-SDK app (``bench/bench_app.py``, one function of N sequential steps). The AWS services
are a moto server, so their time is moto's, on this machine, not DynamoDB's.

For each handler it reports CPU time, which is what a Lambda's memory size buys (a Lambda has
one full vCPU at 1,769 MB and a proportional share below), and wall time, which adds the waits
on moto and the app:

* **interpreter**: Python's own start-up; **import**: the handler module;
* **first invocation** and a **warm invocation** of the same work, the difference being what the
  first one pays beyond it (the engine built, boto3 imported, clients built);
* the executor's **per step**: a warm invocation's time over the steps it ran.

Then the same CPU figures projected onto Lambda memory sizes. Tracing is measured off and on
(on: the X-Ray SDK imported, every invocation traced and its segments sent to a local UDP port).

    python -m bench.lambdas [--steps 20] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from bench.imports import build_venvs
from bench.steps import free_port
from stepline.aws.resources import AwsNames, provision
from stepline.dev.http_server import DevHttpServer
from stepline.engine.sync import sync_app
from stepline.settings import Settings

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
LAMBDA_FULL_VCPU_MB = 1769  # AWS: a function has the equivalent of one vCPU at 1,769 MB
MEMORY_SIZES_MB = (256, 512, 1024, 1769)
EVENT = "bench/sequential"


class Host:
    """One handler in its own process (``bench/lambda_host.py``), invoked one request at a time."""

    def __init__(self, python: Path, module: str, env: dict[str, str], log: Any) -> None:
        self.module = module
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(
            [str(python), "-P", str(REPO / "bench" / "lambda_host.py"), module, str(write_fd)],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=log,
            env=env,
            pass_fds=(write_fd,),
            text=True,
        )
        os.close(write_fd)
        self.replies = os.fdopen(read_fd)
        self.lock = threading.Lock()
        self.invocations: list[dict[str, Any]] = []
        self.startup = self._read()
        self.trace = False

    def _read(self) -> dict[str, Any]:
        line = self.replies.readline()
        if not line:
            raise SystemExit(f"the Lambda host for {self.module} exited (see its log)")
        return json.loads(line)

    def invoke(self, event: dict[str, Any]) -> Any:
        trace_id = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}" if self.trace else ""
        http = event.get("requestContext", {}).get("http", {})
        with self.lock:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"event": event, "trace_id": trace_id}) + "\n")
            self.process.stdin.flush()
            reply = self._read()
            self.invocations.append({**reply, "what": f"{http.get('method', '')} {http.get('path', '')}"})
            return reply["result"]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(10)
        self.replies.close()


class ApiGateway:
    """What API Gateway does for the API Lambda: one HTTP API v2 event per request."""

    def __init__(self) -> None:
        self.host: Host | None = None

    def resolve(self, event: dict[str, Any], _context: object) -> Any:
        assert self.host is not None
        return self.host.invoke(event)


@dataclass
class Measured:
    label: str
    startup: dict[str, float]
    first: dict[str, float]
    warm: list[dict[str, float]]
    steps: int = 0  # per invocation, for the executor
    notes: list[str] = field(default_factory=list)

    def warm_median(self, key: str) -> float:
        return statistics.median(w[key] for w in self.warm)


def lambda_env(names: AwsNames, endpoint: str, tracing: bool) -> dict[str, str]:
    settings = Settings(mode="dev", **names.settings_values())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "STEPLINE_", "AWS_"))}
    env.update(settings.to_env())
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "LAMBDA_TASK_ROOT": "/var/task",
            "AWS_LAMBDA_FUNCTION_NAME": "stepline-bench",
            "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Stepline",
            # The X-Ray SDK sends its segments here; nothing listens, as nothing needs to.
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    attributes = message.get("Attributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": attributes.get("SentTimestamp", "0"),
        },
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:stepline-bench",
        "awsRegion": REGION,
    }


def pump_once(sqs: Any, queue_url: str, executor: Host) -> int:
    """One poll of the event source mapping: a batch in, the successes deleted. Returns how many
    records the batch held."""
    received = sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
    ).get("Messages", [])
    if not received:
        return 0
    result = executor.invoke({"Records": [sqs_record(m) for m in received]})
    failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
    for message in received:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(received)


def http(method: str, url: str, body: Any = None) -> Any:
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"null")


def run_one(front_url: str, sqs: Any, queue_url: str, executor: Host, steps: int) -> dict[str, float]:
    """Send one event and pump until its run completes. Returns the executor's CPU and wall ms
    over the invocations that ran it, and its peak memory."""
    before = len(executor.invocations)
    [event_id] = http("POST", f"{front_url}/e/bench", {"name": EVENT, "data": {"steps": steps}})["ids"]
    deadline = time.monotonic() + 300
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pump_once(sqs, queue_url, executor)
        runs = http("GET", f"{front_url}/v1/events/{event_id}/runs")["data"]
        if runs and runs[0]["status"] == "Completed":
            if runs[0]["output"] != sum(range(steps)):
                raise SystemExit(f"the run's output is {runs[0]['output']!r}")
            ran = executor.invocations[before:]
            return {
                "cpu_ms": sum(i["cpu_ms"] for i in ran),
                "wall_ms": sum(i["wall_ms"] for i in ran),
                "peak_rss_mb": max(i["peak_rss_mb"] for i in ran),
            }
    said = executor.invocations[before:][-3:]
    raise SystemExit(f"the run did not complete within 300 s: {runs}; the executor said {said}")


def measure(
    python: Path,
    names: AwsNames,
    endpoint: str,
    front: ApiGateway,
    front_url: str,
    *,
    tracing: bool,
    steps: int,
    runs: int,
    log: Any,
) -> list[Measured]:
    """Fresh API and executor hosts (cold), then ``runs`` events through them."""
    env = lambda_env(names, endpoint, tracing)
    api = Host(python, "stepline.handlers.api", env, log)
    executor = Host(python, "stepline.handlers.executor", env, log)
    api.trace = executor.trace = tracing
    front.host = api
    sqs = boto3.client(
        "sqs", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench"
    )
    try:
        executed = [run_one(front_url, sqs, names.queue_url, executor, steps) for _ in range(runs)]
    finally:
        api.stop()
        executor.stop()
        sqs.close()
    suffix = ", tracing on" if tracing else ""
    posts = [i for i in api.invocations if i["what"].startswith("POST /e/")]
    if api.invocations[0] is not posts[0]:
        raise SystemExit("the API host's first invocation was not the first event")
    return [
        Measured(f"api{suffix}: POST /e (one event)", api.startup, posts[0], posts[1:]),
        Measured(f"executor{suffix}: a run of {steps} steps", executor.startup, executed[0], executed[1:], steps=steps),
    ]


def report(results: list[Measured]) -> None:
    print("\nThe Lambda handlers, each in its own process, against a moto server; CPU ms (wall ms in brackets)")
    print(
        f"{'handler: invocation':<42} {'interpreter':>11} {'import':>14} {'first invocation':>18} "
        f"{'warm invocation':>17} {'first - warm':>13}"
    )
    for m in results:
        first, warm = m.first["cpu_ms"], m.warm_median("cpu_ms")
        print(
            f"{m.label:<42} {m.startup['interpreter_cpu_ms']:>11.0f} "
            f"{m.startup['import_cpu_ms']:>6.0f} ({m.startup['import_wall_ms']:>5.0f}) "
            f"{first:>8.0f} ({m.first['wall_ms']:>6.0f}) {warm:>7.0f} ({m.warm_median('wall_ms'):>6.0f}) "
            f"{first - warm:>13.0f}"
        )
    print("\nPer step (executor, warm): CPU ms, and wall ms on this machine (moto server and the app included)")
    for m in results:
        if m.steps:
            print(
                f"  {m.label:<40} {m.warm_median('cpu_ms') / m.steps:6.2f} CPU  "
                f"{m.warm_median('wall_ms') / m.steps:6.2f} wall"
            )
    print("\nPeak memory (RSS) of each process after its last invocation, MB")
    for m in results:
        print(f"  {m.label:<40} {max(w['peak_rss_mb'] for w in [m.first, *m.warm]):6.0f}")
    print(
        f"\nProjected onto Lambda (CPU time scaled by the memory's share of a vCPU, full at {LAMBDA_FULL_VCPU_MB} MB;"
        " waits on DynamoDB, SQS and the app come on top), ms"
    )
    print(f"  {'':<52}" + "".join(f"{str(mb) + ' MB':>10}" for mb in MEMORY_SIZES_MB))
    for m in results:
        cold = (
            m.startup["interpreter_cpu_ms"] + m.startup["import_cpu_ms"] + m.first["cpu_ms"] - m.warm_median("cpu_ms")
        )
        rows = [("cold start (beyond the work)", cold)]
        if m.steps:
            rows.append(("per step", m.warm_median("cpu_ms") / m.steps))
        for what, cpu_ms in rows:
            label = f"{m.label.split(':')[0]}: {what}"
            print(
                f"  {label:<52}"
                + "".join(f"{cpu_ms * max(1.0, LAMBDA_FULL_VCPU_MB / mb):>10.1f}" for mb in MEMORY_SIZES_MB)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the first one is the cold one")
    args = parser.parse_args()
    python = build_venvs()["server"]
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    session = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench", region_name=REGION)
    os.environ["AWS_ENDPOINT_URL"] = endpoint  # provisioning's clients
    names = provision(AwsNames.for_prefix(f"bench-{uuid.uuid4().hex[:6]}", REGION), session)
    front = ApiGateway()
    server = DevHttpServer(front, "127.0.0.1", free_port())
    server.start()
    front_url = f"http://127.0.0.1:{server.port}"
    app_port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "bench_app.py"), "--port", str(app_port)],
        env={**os.environ, "INNGEST_DEV": front_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: list[Measured] = []
    with tempfile.TemporaryFile("w+") as log:
        try:
            # The app syncs through an API host of its own, so the measured ones start cold.
            setup = Host(python, "stepline.handlers.api", lambda_env(names, endpoint, False), log)
            front.host = setup
            try:
                app_url = f"http://127.0.0.1:{app_port}/api/inngest"
                if not sync_app(app_url, Settings(mode="dev"), attempts=60, interval_s=0.5).ok:
                    raise SystemExit("the bench app did not sync")
            finally:
                setup.stop()
            for tracing in (False, True):
                results += measure(
                    python,
                    names,
                    endpoint,
                    front,
                    front_url,
                    tracing=tracing,
                    steps=args.steps,
                    runs=args.runs,
                    log=log,
                )
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read()[-4000:])
            raise
        finally:
            app.terminate()
            app.wait(10)
            server.stop()
            moto.stop()
    report(results)


if __name__ == "__main__":
    main()
